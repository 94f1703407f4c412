import CaptureCore
import Foundation

/// Reads a capture with the library, decodes and tracks every packet, returns every closed flow.
struct FileAnalysis {
    var flows: [FlowRecord] = []
    var packets = 0
    var decodeStops = DecodeStatistics()
    var statistics = FlowTrackerStatistics()
    var error: CaptureFileError?
    var openError: CaptureFileError?

    init(path: String, configuration: FlowTrackerConfiguration = FlowTrackerConfiguration()) {
        var tracker = FlowTracker(configuration: configuration, sink: CollectingFlowSink())
        let decoder = PacketDecoder()
        var packet = DecodedPacket()
        do {
            var reader = try CaptureFileReader(path: path)
            do {
                while try reader.advance() {
                    let record = reader.packet
                    decoder.decode(record.bytes, linkType: record.linkType, into: &packet)
                    if let stop = packet.stop { decodeStops.record(stop) }
                    tracker.process(packet, frame: record.bytes, timestamp: record.timestamp,
                                    wireLength: record.originalLength, interface: record.interfaceIndex)
                    packets += 1
                }
            } catch {
                self.error = error
            }
        } catch {
            openError = error
        }
        tracker.finish()
        flows = tracker.sink.closed
        statistics = tracker.currentStatistics
    }
}

/// Runs a tool; stdout and stderr apart.
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil)
    throws -> (status: Int32, stdout: String, stderr: String)
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    // stderr goes to a file so that neither pipe can fill up and block the child.
    let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("podtap-stderr-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errURL) }
    let errHandle = try FileHandle(forWritingTo: errURL)
    let out = Pipe()
    process.standardOutput = out
    process.standardError = errHandle
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try? errHandle.close()
    let errData = (try? Data(contentsOf: errURL)) ?? Data()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// Finds an executable on PATH.
func which(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}
