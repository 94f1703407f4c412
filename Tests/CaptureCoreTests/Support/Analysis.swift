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

    /// How packets reach the tracker.
    enum EntryPoint {
        /// Decoded into a packet of our own, lent with `process(_:…)` (borrowing).
        case borrowed
        /// Decoded into a packet of our own, passed as `process(&packet, …)`.
        case byReference
        /// Decoded into the tracker's scratch packet (`process(frame:linkType:decoder:…)`).
        case inPlace
    }

    init(path: String, configuration: FlowTrackerConfiguration = FlowTrackerConfiguration(), entry: EntryPoint = .borrowed) {
        var tracker = FlowTracker(configuration: configuration, sink: CollectingFlowSink())
        let decoder = PacketDecoder()
        var packet = DecodedPacket()
        do {
            var reader = try CaptureFileReader(path: path)
            do {
                while try reader.advance() {
                    let record = reader.packet
                    if entry == .inPlace {
                        let stop = tracker.process(
                            frame: record.bytes, linkType: record.linkType, decoder: decoder,
                            timestamp: record.timestamp, wireLength: record.originalLength,
                            interface: record.interfaceIndex)
                        if let stop { decodeStops.record(stop) }
                    } else {
                        decoder.decode(record.bytes, linkType: record.linkType, into: &packet)
                        if let stop = packet.stop { decodeStops.record(stop) }
                        if entry == .byReference {
                            tracker.process(&packet, frame: record.bytes, timestamp: record.timestamp,
                                            wireLength: record.originalLength, interface: record.interfaceIndex)
                        } else {
                            tracker.process(packet, frame: record.bytes, timestamp: record.timestamp,
                                            wireLength: record.originalLength, interface: record.interfaceIndex)
                        }
                    }
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
