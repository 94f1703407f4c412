// Entering a network namespace on the calling thread for the duration of one call.
internal import CaptureCore
internal import CPodTapPacket
#if canImport(Glibc)
internal import Glibc
#endif

/// Runs code with the calling thread inside another network namespace, then moves it back.
///
/// setns(2) with `CLONE_NEWNET` changes only the calling thread. Sockets keep the namespace
/// they were created in, so a capture socket opened inside keeps capturing there after the
/// thread has returned to its own namespace. The switch never spans a suspension point, so it
/// is safe on any thread; code that *stays* in a namespace belongs on a dedicated `Thread`.
enum ThreadNetworkNamespace {
    /// `/run/netns/NAME` for a bare `ip netns` name; anything with a `/` is a path already
    /// (`/proc/PID/ns/net`, a bind mount).
    static func path(_ nameOrPath: String) -> String {
        nameOrPath.contains("/") ? nameOrPath : "/run/netns/\(nameOrPath)"
    }

    /// Calls `body` with the thread in the network namespace at `path`.
    /// - Throws: ``CaptureSourceError`` with ``CaptureSourceError/Code/namespace`` when the
    ///   path is missing or not a network namespace, ``CaptureSourceError/Code/permissionDenied``
    ///   without CAP_SYS_ADMIN; whatever `body` throws.
    static func run<R>(in path: String, _ body: () throws(CaptureSourceError) -> R) throws(CaptureSourceError) -> R {
        let target = try openNamespace(path)
        defer { _ = close(target) }
        let original = try openNamespace("/proc/thread-self/ns/net")
        defer { _ = close(original) }
        guard cpk_setns(target, CLONE_NEWNET) == 0 else {
            let error = errno
            let code: CaptureSourceError.Code = error == EPERM ? .permissionDenied : .namespace
            let message = error == EPERM
                ? "entering network namespace \(path) needs CAP_SYS_ADMIN"
                : "\(path) is not a network namespace (expected /run/netns/NAME or /proc/PID/ns/net)"
            throw CaptureSourceError(code, operation: "setns(\(path), CLONE_NEWNET)", errno: error, message: message)
        }
        defer {
            // A thread left in the wrong namespace would open every later socket there.
            if cpk_setns(original, CLONE_NEWNET) != 0 {
                fatalError("setns back to the thread's own network namespace failed (errno \(errno))")
            }
        }
        return try body()
    }

    private static func openNamespace(_ path: String) throws(CaptureSourceError) -> Int32 {
        var fd: Int32
        repeat { fd = unsafe open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else {
            let error = errno
            switch error {
            case EACCES, EPERM:
                throw CaptureSourceError(.permissionDenied, operation: "open(\(path))", errno: error,
                                         message: "no permission to open network namespace \(path); run as root or with CAP_SYS_ADMIN")
            default:
                throw CaptureSourceError(.namespace, operation: "open(\(path))", errno: error,
                                         message: "no network namespace at \(path) (see `ip netns list`, or /proc/PID/ns/net of a running process)")
            }
        }
        return fd
    }
}
