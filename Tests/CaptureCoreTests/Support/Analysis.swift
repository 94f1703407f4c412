import CaptureCore
import Foundation
import PodTapTestSupport

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
