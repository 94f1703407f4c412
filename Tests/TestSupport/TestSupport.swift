// Helpers shared by every test target: running real tools, temporary directories, and the
// locations of the repository and of ../shared beside it.
public import Foundation

public enum Repository {
    /// The repository root (this file is Tests/TestSupport/TestSupport.swift).
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// `../shared` beside the repository (corpus, fixtures, bench tools).
    public static let shared = root.deletingLastPathComponent().appendingPathComponent("shared")
}

/// Starts `process` with SIGINT and SIGTERM deliverable, as a shell would start it. A child
/// inherits the signal mask of the thread that spawns it, and the test runner's worker
/// threads block both: without this, `interrupt()` and `terminate()` would not reach it.
public func runWithShellSignals(_ process: Process) throws {
    var open = sigset_t(), old = sigset_t()
    unsafe sigemptyset(&open)
    unsafe sigaddset(&open, SIGINT)
    unsafe sigaddset(&open, SIGTERM)
    unsafe pthread_sigmask(SIG_UNBLOCK, &open, &old)
    defer { unsafe pthread_sigmask(SIG_SETMASK, &old, nil) }
    try process.run()
}

/// Runs a tool to completion. stderr goes to a file so neither pipe can fill up and block it.
public func runProcess(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("podtap-stderr-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errURL) }
    let errHandle = try FileHandle(forWritingTo: errURL)
    let out = Pipe()
    process.standardOutput = out
    process.standardError = errHandle
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try? errHandle.close()
    let err = (try? Data(contentsOf: errURL)) ?? Data()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self), String(decoding: err, as: UTF8.self))
}

/// Runs a tool to completion; stdout and stderr together.
public func runTool(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let r = try runProcess(executable, arguments)
    return (r.status, r.stdout + r.stderr)
}

/// Finds an executable on PATH.
public func which(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}

/// A fresh directory under the system temp dir, removed by `cleanup()`.
public struct TemporaryDirectory: Sendable {
    public let url: URL
    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("podtap-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    public func cleanup() { try? FileManager.default.removeItem(at: url) }
}

/// Checks `condition` every 20 ms until it holds or `seconds` have passed.
/// - Returns: whether it held.
public func eventually(within seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}
