// Network namespaces and the threads that enter them: the one place Backends calls setns(2)
// and pthread_create(3). setns(CLONE_NEWNET) switches only the calling thread; a socket keeps
// the namespace it was created in after the thread has moved back.
internal import CaptureCore
internal import CPodTapPacket
#if canImport(Glibc)
internal import Glibc
#endif

/// Network namespace files: naming, opening, and entering one for the length of a call.
///
/// Every configuration field that names a network namespace
/// (``AFPacketConfiguration/namespacePath``, ``PcapLiveConfiguration/networkNamespace``,
/// ``ConntrackConfiguration/networkNamespacePath``, ``InterfaceWatcher/namespacePath``) takes
/// the same forms, resolved by ``path(_:)``:
/// - an `ip netns` name such as `pod-a`, meaning `/run/netns/pod-a`;
/// - a path (anything containing `/`): `/run/netns/NAME`, `/proc/PID/ns/net` of a process
///   running in the namespace, or another bind mount of a namespace file.
///
/// Errors are ``CaptureSourceError``s with ``CaptureSourceError/Code/namespace`` (missing, or
/// not a network namespace) or ``CaptureSourceError/Code/permissionDenied`` (no
/// `CAP_SYS_ADMIN`), naming the path.
enum NetworkNamespace {
    /// The calling thread's own network namespace file.
    static let currentThreadPath = "/proc/thread-self/ns/net"

    /// The file a namespace name or path refers to: `/run/netns/NAME` for a bare `ip netns`
    /// name, the argument itself when it contains a `/`.
    static func path(_ nameOrPath: String) -> String {
        nameOrPath.contains("/") ? nameOrPath : "/run/netns/\(nameOrPath)"
    }

    /// Opens a namespace file read-only (close-on-exec); the caller closes the descriptor.
    static func open(_ nameOrPath: String) throws(CaptureSourceError) -> Int32 {
        let path = path(nameOrPath)
        var fd: Int32
        repeat { fd = unsafe Glibc.open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else {
            let e = errno
            switch e {
            case EACCES, EPERM:
                throw CaptureSourceError(.permissionDenied, operation: "open(\(path))", errno: e,
                                         message: "no permission to open the network namespace \(path); run as root or with CAP_SYS_ADMIN")
            case ENOENT:
                throw CaptureSourceError(.namespace, operation: "open(\(path))", errno: e,
                                         message: "no network namespace at \(path); give a name from `ip netns list`, /run/netns/NAME, or /proc/PID/ns/net of a process running in it")
            default:
                throw CaptureSourceError(.namespace, operation: "open(\(path))", errno: e,
                                         message: "cannot open the network namespace \(path): \(errorText(e))")
            }
        }
        return fd
    }

    /// Opens `nameOrPath`, or the calling thread's own namespace when nil.
    static func open(orCurrent nameOrPath: String?) throws(CaptureSourceError) -> Int32 {
        try open(nameOrPath ?? currentThreadPath)
    }

    /// Calls `body` with the calling thread inside the namespace `nameOrPath` names, then moves
    /// the thread back; with nil, just calls `body`. Never spans a suspension point, but a
    /// caller that may run on a Swift concurrency pool thread should prefer
    /// ``onDedicatedThread(in:name:_:)``.
    static func onCallingThread<R: ~Copyable>(
        in nameOrPath: String?, _ body: () throws(CaptureSourceError) -> R
    ) throws(CaptureSourceError) -> R {
        guard let nameOrPath else { return try body() }
        let target = try open(nameOrPath)
        defer { _ = close(target) }
        return try onCallingThread(in: target, path: path(nameOrPath), body)
    }

    /// Calls `body` with the calling thread inside the namespace `fd` refers to, then moves the
    /// thread back to the namespace it was in. `path` names `fd` in error messages.
    ///
    /// Traps when the thread cannot move back: a thread left in the wrong namespace would
    /// silently open every later socket there.
    static func onCallingThread<R: ~Copyable>(
        in fd: Int32, path: String, _ body: () throws(CaptureSourceError) -> R
    ) throws(CaptureSourceError) -> R {
        let home = try open(currentThreadPath)
        defer { _ = close(home) }
        try enter(fd, path: path)
        defer {
            if cpk_setns(home, Int32(CLONE_NEWNET)) != 0 {
                fatalError("setns back to the thread's own network namespace failed (errno \(errno))")
            }
        }
        return try body()
    }

    /// Runs `body` on a new thread (named `name`) inside the namespace `nameOrPath` names, waits
    /// for it and returns its result. Sockets `body` creates stay in that namespace. For
    /// callers on any thread, Swift concurrency pool threads included.
    static func onDedicatedThread<R>(
        in nameOrPath: String, name: String, _ body: () throws(CaptureSourceError) -> R
    ) throws(CaptureSourceError) -> R {
        let result = try BackendThread.run(name: name) { () -> Result<R, CaptureSourceError> in
            do throws(CaptureSourceError) {
                return .success(try onCallingThread(in: nameOrPath, body))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func enter(_ fd: Int32, path: String) throws(CaptureSourceError) {
        guard cpk_setns(fd, Int32(CLONE_NEWNET)) != 0 else { return }
        let e = errno
        let operation = "setns(\(path), CLONE_NEWNET)"
        switch e {
        case EPERM:
            throw CaptureSourceError(.permissionDenied, operation: operation, errno: e,
                                     message: "entering the network namespace \(path) needs CAP_SYS_ADMIN; run as root or grant it")
        case EINVAL:
            throw CaptureSourceError(.namespace, operation: operation, errno: e,
                                     message: "\(path) is not a network namespace; give a name from `ip netns list`, /run/netns/NAME, or /proc/PID/ns/net")
        default:
            throw CaptureSourceError(.namespace, operation: operation, errno: e,
                                     message: "cannot enter the network namespace \(path): \(errorText(e))")
        }
    }
}

/// The threads Backends starts (capture loops, watchers, namespace work): joinable pthreads,
/// never Swift concurrency pool threads, so they may block and call setns(2).
enum BackendThread {
    /// Starts a joinable pthread running `body`; the caller joins it. `name` (as `top -H` and
    /// `/proc/PID/task/TID/comm` show it) is cut to 15 bytes, the kernel's limit.
    ///
    /// `body` is not `@Sendable`: the caller hands over what it captures and touches it again
    /// only after `pthread_join` (or through its own synchronisation).
    /// - Throws: ``CaptureSourceError`` with ``CaptureSourceError/Code/system`` when the
    ///   process is at its thread limit.
    static func start(name: String, _ body: @escaping () -> Void) throws(CaptureSourceError) -> pthread_t {
        let context = unsafe Unmanaged.passRetained(Call(name: name, body)).toOpaque()
        var thread = pthread_t()
        let rc = unsafe pthread_create(&thread, nil, { context in
            let call = unsafe Unmanaged<Call>.fromOpaque(context!).takeRetainedValue()
            _ = unsafe cpk_set_thread_name(call.name)
            call.body()
            return nil
        }, context)
        guard rc == 0 else {
            unsafe Unmanaged<Call>.fromOpaque(context).release()
            throw CaptureSourceError(.system, operation: "pthread_create(\(name))", errno: rc,
                                     message: "cannot start a thread: \(errorText(rc)); the process may be at its thread or memory limit")
        }
        return thread
    }

    /// Runs `body` on a new thread named `name` and waits for it.
    static func run<R>(name: String, _ body: () -> R) throws(CaptureSourceError) -> R {
        try withoutActuallyEscaping(body) { (escapable) throws(CaptureSourceError) -> R in
            var result: R? = nil
            let thread = try start(name: name) { result = escapable() }
            pthread_join(thread, nil)
            return result!
        }
    }

    private final class Call {
        let name: String
        let body: () -> Void
        init(name: String, _ body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }
}
