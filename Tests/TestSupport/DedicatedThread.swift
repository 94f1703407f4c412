// Blocking work for tests on a Thread of its own: polls, processes and setns(2) must never
// run on (or change the namespace of) a Swift concurrency pool thread.
import Foundation

/// setns(2); Glibc does not declare it.
@_silgen_name("setns") private func setns(_ fd: Int32, _ nstype: Int32) -> Int32
private let cloneNewNet: Int32 = 0x4000_0000

/// A thread that could not enter the network namespace at `path`.
public struct NamespaceEntryError: Error, CustomStringConvertible {
    public let path: String
    public let errno: Int32
    public var description: String { "cannot enter the network namespace \(path) (errno \(errno))" }
}

/// Runs `body` on a new Thread and waits for it. With `path`, the thread first enters that
/// network namespace (and ends there; no other thread moves).
public func onDedicatedThread<T: Sendable>(
    inNamespace path: String? = nil, _ body: @escaping @Sendable () throws -> T
) throws -> T {
    let outcome = Outcome<T>()
    let done = DispatchSemaphore(value: 0)
    startThread(inNamespace: path, body) { result in
        outcome.set(result)
        done.signal()
    }
    done.wait()
    return try outcome.get()!.get()
}

/// Runs `body` on a new Thread and awaits it, blocking no thread of the Swift concurrency pool.
public func onDedicatedThread<T: Sendable>(
    inNamespace path: String? = nil, _ body: @escaping @Sendable () throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        startThread(inNamespace: path, body) { continuation.resume(with: $0) }
    }
}

private func startThread<T>(
    inNamespace path: String?, _ body: @escaping @Sendable () throws -> T,
    then finish: @escaping @Sendable (Result<T, any Error>) -> Void
) {
    Thread {
        finish(Result {
            if let path {
                let fd = unsafe open(path, O_RDONLY | O_CLOEXEC)
                defer { if fd >= 0 { close(fd) } }
                guard fd >= 0, setns(fd, cloneNewNet) == 0 else { throw NamespaceEntryError(path: path, errno: errno) }
            }
            return try body()
        })
    }.start()
}

private final class Outcome<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, any Error>?
    func set(_ r: Result<T, any Error>) { lock.withLock { result = r } }
    func get() -> Result<T, any Error>? { lock.withLock { result } }
}

extension Result {
    /// The error, nil on success.
    public var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
