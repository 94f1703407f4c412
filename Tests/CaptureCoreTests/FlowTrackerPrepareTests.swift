import CaptureCore
import Foundation
import Testing

/// `FlowTracker.prepare` decodes frames ahead and loads the table memory they will touch. Under
/// every calling pattern — each frame prepared a few packets ahead, some frames never
/// prepared, prepared out of order, prepared too far ahead, prepared with another identity —
/// the tracker must count exactly what plain `process(frame:…)` counts, packet by packet.
@Suite("FlowTracker.prepare (decode ahead)")
struct FlowTrackerPrepareTests {
    /// Every packet of a capture file, copied into one buffer so that frames stay at fixed
    /// addresses (as in a ring block) while others are processed.
    final class Frames {
        struct Frame {
            var offset: Int
            var length: Int
            var linkType: LinkType
            var timestamp: Timestamp
            var wireLength: Int
            var interface: Int
        }
        let arena: UnsafeMutableRawBufferPointer
        var frames: [Frame] = []

        init(path: String) {
            var bytes: [UInt8] = []
            if var reader = try? CaptureFileReader(path: path) {
                while (try? reader.advance()) == true {
                    let record = reader.packet
                    frames.append(Frame(offset: bytes.count, length: record.bytes.byteCount, linkType: record.linkType,
                                        timestamp: record.timestamp, wireLength: record.originalLength,
                                        interface: record.interfaceIndex))
                    record.bytes.withUnsafeBytes { bytes.append(contentsOf: $0) }
                    bytes.append(0)  // every frame at its own address, empty ones too (as in a ring)
                }
            }
            arena = .allocate(byteCount: max(bytes.count, 1), alignment: 16)
            arena.copyBytes(from: bytes)
        }

        deinit { arena.deallocate() }

        func withFrame<R>(_ i: Int, _ body: (RawSpan) -> R) -> R {
            let f = frames[i]
            let buffer = UnsafeRawBufferPointer(rebasing: arena[f.offset..<(f.offset + f.length)])
            return body(buffer.bytes)
        }
    }

    enum Step: Equatable {
        case prepare(Int, timestampShift: UInt64 = 0)
        case process(Int)
    }

    /// What the tracker reported after each packet, and the flows it closed.
    struct Outcome {
        var perPacket: [String] = []
        var flows: [String] = []
        var statistics = FlowTrackerStatistics()
    }

    static func run(_ frames: Frames, _ steps: [Step]) -> Outcome {
        var tracker = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 1024), sink: CollectingFlowSink())
        let decoder = PacketDecoder()
        var outcome = Outcome()
        for step in steps {
            switch step {
            case .prepare(let i, let shift):
                let f = frames.frames[i]
                frames.withFrame(i) {
                    tracker.prepare(frame: $0, linkType: f.linkType, decoder: decoder,
                                    timestamp: Timestamp(nanoseconds: f.timestamp.nanoseconds &+ shift),
                                    wireLength: f.wireLength)
                }
            case .process(let i):
                let f = frames.frames[i]
                let stop = frames.withFrame(i) {
                    tracker.process(frame: $0, linkType: f.linkType, decoder: decoder, timestamp: f.timestamp,
                                    wireLength: f.wireLength, interface: f.interface)
                }
                let p = tracker.lastPacket
                var line = "\(i) \(String(describing: stop)) layers \(p.layerCount)"
                for l in 0..<p.layerCount {
                    line += " [\(p.layers[l].source) \(p.layers[l].sourcePort) \(p.layers[l].destination) \(p.layers[l].destinationPort) \(p.layers[l].protocolNumber)]"
                }
                line += " dns \(String(describing: p.dns)) tls \(String(describing: p.tls))"
                outcome.perPacket.append(line)
            }
        }
        tracker.finish()
        outcome.flows = tracker.sink.closed.map { String(describing: $0) }
        outcome.statistics = tracker.currentStatistics
        return outcome
    }

    /// Each frame prepared `distance` packets before it is processed (all of them when
    /// `skipping` is nil, else all but those it picks).
    static func ahead(_ count: Int, distance: Int, skipping: ((Int) -> Bool)? = nil, shift: UInt64 = 0) -> [Step] {
        var steps: [Step] = []
        func prepare(_ i: Int) {
            if i < count && !(skipping?(i) ?? false) { steps.append(.prepare(i, timestampShift: shift)) }
        }
        for i in 0..<min(distance, count) { prepare(i) }
        for n in 0..<count {
            prepare(n + distance)
            steps.append(.process(n))
        }
        return steps
    }

    static func prepared(_ steps: [Step]) -> Int {
        steps.filter { if case .prepare = $0 { true } else { false } }.count
    }

    @Test(arguments: Corpus.wellformed + Corpus.malformed.prefix(40))
    func everyPatternCountsWhatPlainProcessingCounts(file: String) {
        let frames = Frames(path: Corpus.root.appendingPathComponent(file).path)
        let count = frames.frames.count
        let plain = Self.run(frames, (0..<count).map { .process($0) })
        #expect(plain.statistics.preparedPackets == 0 && plain.statistics.preparedDiscarded == 0)

        func expectSameAsPlain(_ o: Outcome, _ pattern: String) {
            #expect(o.perPacket == plain.perPacket, "\(pattern): per-packet decode differs")
            #expect(o.flows == plain.flows, "\(pattern): flows differ")
            var a = o.statistics, b = plain.statistics
            a.preparedPackets = 0; a.preparedDiscarded = 0; b.preparedPackets = 0; b.preparedDiscarded = 0
            #expect(a == b, "\(pattern): statistics differ")
        }

        // Prepared 1 to lookaheadSlots − 1 packets ahead: every decode is reused.
        for distance in [1, 2, 4, FlowTracker<CollectingFlowSink>.lookaheadSlots - 1] {
            let o = Self.run(frames, Self.ahead(count, distance: distance))
            expectSameAsPlain(o, "distance \(distance)")
            #expect(o.statistics.preparedPackets == UInt64(count) && o.statistics.preparedDiscarded == 0)
        }
        // Every third frame not prepared (a VLAN-restored frame in the ring): the others still
        // reuse their decode.
        let skipping = Self.ahead(count, distance: 4, skipping: { $0 % 3 == 1 })
        let s = Self.run(frames, skipping)
        expectSameAsPlain(s, "skipping")
        #expect(s.statistics.preparedPackets == UInt64(Self.prepared(skipping)) && s.statistics.preparedDiscarded == 0)
        // Prepared in swapped pairs: a frame found after a later one was used is given up.
        var swapped: [Step] = []
        var n = 0
        while n < count {
            if n + 1 < count { swapped += [.prepare(n + 1), .prepare(n), .process(n), .process(n + 1)] }
            else { swapped += [.prepare(n), .process(n)] }
            n += 2
        }
        let w = Self.run(frames, swapped)
        expectSameAsPlain(w, "swapped")
        #expect(w.statistics.preparedPackets + w.statistics.preparedDiscarded == UInt64(count))
        #expect(count < 2 || w.statistics.preparedDiscarded > 0)
        // Prepared further ahead than the tracker holds: the oldest are given up, decoded again.
        let far = Self.run(frames, Self.ahead(count, distance: 12))
        expectSameAsPlain(far, "distance 12")
        #expect(far.statistics.preparedPackets + far.statistics.preparedDiscarded == UInt64(count))
        #expect(count <= FlowTracker<CollectingFlowSink>.lookaheadSlots || far.statistics.preparedDiscarded > 0)
        // Same bytes at the same address but another timestamp: not the same packet, never used.
        let other = Self.run(frames, Self.ahead(count, distance: 3, shift: 1))
        expectSameAsPlain(other, "other timestamp")
        #expect(other.statistics.preparedPackets == 0 && other.statistics.preparedDiscarded == UInt64(count))
    }
}
