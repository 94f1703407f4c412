import CaptureCore
import Foundation
import Testing
import PodTapTestSupport

/// Every wellformed corpus file: read → write (pcapng; classic pcap when it has one link
/// type) → read gives the same packets, and capinfos/tshark accept what was written.
@Suite @MainActor struct CaptureFileRoundTripTests {
    static let capinfos = "/usr/bin/capinfos"
    static let tshark = "/usr/bin/tshark"

    @Test(arguments: Corpus.wellformed)
    func pcapngRoundTrip(file: String) throws {
        let original = readAll(path: Corpus.path(file))
        try #require(original.error == nil)
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path("out.pcapng")

        var writer = try PcapNGWriter(path: path, comment: "round trip of \(file)")
        for interface in original.interfaces {
            try writer.addInterface(interface)
        }
        var reader = try CaptureFileReader(path: Corpus.path(file))
        while try reader.advance() {
            let comments = reader.packetComments
            try writer.write(reader.packet, comment: comments.first)
        }
        try writer.close()

        let copy = readAll(path: path)
        #expect(copy.error == nil, "\(copy.error.map(String.init(describing:)) ?? "")")
        #expect(copy.sections.first?.userApplication == "PodTap")
        #expect(copy.sections.first?.comments == ["round trip of \(file)"])
        #expect(copy.interfaces.count == original.interfaces.count)
        for (a, b) in zip(original.interfaces, copy.interfaces) {
            #expect(a.linkType == b.linkType)
            #expect(a.snapLength == b.snapLength)
            #expect(a.name == b.name)
            #expect(a.description == b.description)
            #expect(a.comments == b.comments)
            #expect(a.timestampResolution == b.timestampResolution)
        }
        #expect(copy.packets.count == original.packets.count)
        for (index, (a, b)) in zip(original.packets, copy.packets).enumerated() {
            var expected = a
            expected.end = b.end
            expected.comments = Array(a.comments.prefix(1))
            // Timestamps are written in the interface's resolution.
            let resolution = original.interfaces[a.interface].timestampResolution
            expected.timestamp = resolution.nanoseconds(fromUnits: resolution.units(fromNanoseconds: a.timestamp))
            #expect(b == expected, "packet \(index)")
        }
        try checkWithWireshark(path, packets: original.packets.count)
    }

    @Test(arguments: Corpus.wellformed.filter { (Corpus.rows[$0]?.linkTypes.count ?? 0) == 1 })
    func classicPcapRoundTrip(file: String) throws {
        let original = readAll(path: Corpus.path(file))
        try #require(original.error == nil)
        let linkType = try #require(original.interfaces.first?.linkType)
        let nanoseconds = original.interfaces.contains { $0.timestampResolution.unitsPerSecond > 1_000_000 }
        let resolution: TimestampResolution = nanoseconds ? .nanoseconds : .microseconds
        let snapLength = original.interfaces.map { $0.snapLength == 0 ? 262_144 : $0.snapLength }.max() ?? 262_144
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path("out.pcap")

        var writer = try PcapWriter(path: path, linkType: linkType, snapLength: snapLength, resolution: resolution)
        var reader = try CaptureFileReader(path: Corpus.path(file))
        while try reader.advance() {
            try writer.write(reader.packet)
        }
        try writer.close()

        let copy = readAll(path: path)
        #expect(copy.error == nil)
        #expect(copy.format == .pcap(byteOrder: .littleEndian, resolution: resolution))
        #expect(copy.interfaces.map(\.linkType) == [linkType])
        #expect(copy.packets.count == original.packets.count)
        let unit: UInt64 = nanoseconds ? 1 : 1000
        for (index, (a, b)) in zip(original.packets, copy.packets).enumerated() {
            var expected = a
            expected.end = b.end
            expected.interface = 0
            expected.direction = .unknown
            expected.comments = []
            expected.timestamp = a.timestamp / unit * unit
            #expect(b == expected, "packet \(index)")
        }
        try checkWithWireshark(path, packets: original.packets.count)
    }

    /// capinfos and tshark read the file without complaint, and count the same packets.
    func checkWithWireshark(_ path: String, packets: Int) throws {
        let complaints = ["appears to be damaged", "cut short", "isn't a capture file", "doesn't support",
                          "unknown", "corrupt"]
        let info = try runTool(Self.capinfos, ["-c", path])
        #expect(info.status == 0, "capinfos: \(info.output)")
        for phrase in complaints { #expect(!info.output.contains(phrase), "capinfos: \(info.output)") }
        let countLine = info.output.split(separator: "\n").first { $0.hasPrefix("Number of packets") }
        let count = countLine.flatMap { Int($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) }
        #expect(count == packets, "capinfos: \(info.output)")

        let dump = try runTool(Self.tshark, ["-n", "-r", path, "-q"])
        #expect(dump.status == 0, "tshark: \(dump.output)")
        for phrase in complaints { #expect(!dump.output.contains(phrase), "tshark: \(dump.output)") }
    }
}
