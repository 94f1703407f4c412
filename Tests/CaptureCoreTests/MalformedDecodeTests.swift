import CaptureCore
import Testing

@Suite("Malformed captures: decoded and tracked without a crash, every packet accounted for")
struct MalformedDecodeTests {
    @Test(arguments: Corpus.malformed)
    func decodeAndTrack(file: String) {
        var configuration = FlowTrackerConfiguration(capacity: 256)
        configuration.timeouts.active = 1_000_000_000
        let a = FileAnalysis(path: Corpus.path(file), configuration: configuration)
        // Every packet read was counted: each IP layer updated a flow, or the packet was non-IP.
        #expect(a.statistics.packets == UInt64(a.packets))
        #expect(a.statistics.flowUpdates + a.statistics.nonIPPackets >= UInt64(a.packets))
        // Flows were all emitted and the packets they hold add up to the flow updates.
        #expect(a.statistics.flowsOpened == a.statistics.flowsClosed)
        #expect(a.flows.reduce(0) { $0 + $1.packets } == a.statistics.flowUpdates)
        if let row = Corpus.rows[file], row.status == "file-error" {
            // A file tshark cannot read is either rejected or read with the link type we don't decode.
            #expect(a.openError != nil || a.error != nil || a.statistics.nonIPPackets > 0 || a.packets == 0 || a.decodeStops.total > 0)
        }
    }

    @Test("Every prefix of the first packets of every well-formed capture decodes without trapping")
    func prefixes() throws {
        let decoder = PacketDecoder()
        var packet = DecodedPacket()
        var frames = 0
        for file in Corpus.wellformed {
            var reader = try CaptureFileReader(path: Corpus.path(file))
            var n = 0
            while n < 8, try reader.advance() {
                let record = reader.packet
                let bytes = record.bytes
                for cut in 0...bytes.byteCount {
                    decoder.decode(bytes.extracting(0..<cut), linkType: record.linkType, into: &packet)
                    #expect(packet.layerCount <= PacketDecoder.maximumNetworkLayers)
                }
                n += 1
                frames += 1
            }
        }
        #expect(frames > 300)
    }
}
