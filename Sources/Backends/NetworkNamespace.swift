// Running a piece of setup inside another network namespace. setns(2) switches only the
// calling thread, so the work runs on a new, short-lived pthread: never on the caller's thread,
// which may be a Swift concurrency pool thread shared with unrelated tasks.
internal import CaptureCore
internal import CPodTapPacket
#if canImport(Glibc)
internal import Glibc
#endif

enum NetworkNamespace {
    /// Runs `body` on a dedicated thread that entered the network namespace at `path`
    /// (`/run/netns/NAME`, `/proc/PID/ns/net`), and returns its result. The thread goes back
    /// to its original namespace before it ends. Sockets created by `body` stay in `path`'s
    /// namespace: a socket belongs to the namespace it was created in.
    static func run<T>(
        inNamespaceAt path: String, _ body: () throws(CaptureSourceError) -> T
    ) throws(CaptureSourceError) -> T {
        let result: Result<T, CaptureSourceError> = runOnDedicatedThread {
            do throws(CaptureSourceError) {
                let original = try openNamespace("/proc/thread-self/ns/net")
                defer { _ = close(original) }
                let target = try openNamespace(path)
                defer { _ = close(target) }
                try enter(target, path: path)
                defer {
                    // Hygiene: the thread ends right after, so a failure here cannot leak.
                    _ = cpk_setns(original, Int32(CLONE_NEWNET))
                }
                return .success(try body())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func openNamespace(_ path: String) throws(CaptureSourceError) -> Int32 {
        let fd = unsafe open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw CaptureSourceError(
                e == EACCES || e == EPERM ? .permissionDenied : .namespace, operation: "open(\(path))", errno: e,
                message: e == ENOENT
                    ? "no network namespace at \(path); give /run/netns/NAME or /proc/PID/ns/net of a running process"
                    : "cannot open the network namespace \(path): \(errorText(e))")
        }
        return fd
    }

    private static func enter(_ fd: Int32, path: String) throws(CaptureSourceError) {
        guard cpk_setns(fd, Int32(CLONE_NEWNET)) == 0 else {
            let e = errno
            switch e {
            case EPERM:
                throw CaptureSourceError(.permissionDenied, operation: "setns(\(path), CLONE_NEWNET)", errno: e,
                                         message: "entering a network namespace needs CAP_SYS_ADMIN; run as root or grant it")
            case EINVAL:
                throw CaptureSourceError(.namespace, operation: "setns(\(path), CLONE_NEWNET)", errno: e,
                                         message: "\(path) is not a network namespace")
            default:
                throw CaptureSourceError(.namespace, operation: "setns(\(path), CLONE_NEWNET)", errno: e,
                                         message: "cannot enter the network namespace \(path): \(errorText(e))")
            }
        }
    }
}

/// The closure a dedicated thread runs.
private final class DedicatedThreadCall {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Runs `body` on a new pthread and waits for it to finish.
func runOnDedicatedThread<T>(_ body: () -> T) -> T {
    withoutActuallyEscaping(body) { escapable -> T in
        var result: T? = nil
        let call = DedicatedThreadCall { result = escapable() }
        let context = unsafe Unmanaged.passRetained(call).toOpaque()
        var thread = pthread_t()
        let rc = unsafe pthread_create(&thread, nil, { context in
            unsafe Unmanaged<DedicatedThreadCall>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed (\(rc)): cannot start a thread")
        pthread_join(thread, nil)
        return result!
    }
}

/// Starts a joinable pthread running `body`; the caller joins it.
func startThread(_ body: @escaping () -> Void) -> pthread_t {
    let context = unsafe Unmanaged.passRetained(DedicatedThreadCall(body)).toOpaque()
    var thread = pthread_t()
    let rc = unsafe pthread_create(&thread, nil, { context in
        unsafe Unmanaged<DedicatedThreadCall>.fromOpaque(context!).takeRetainedValue().run()
        return nil
    }, context)
    precondition(rc == 0, "pthread_create failed (\(rc)): cannot start a capture thread")
    return thread
}
