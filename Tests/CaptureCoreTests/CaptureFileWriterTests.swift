import CaptureCore
import Foundation
import Glibc
import Testing
import PodTapTestSupport

@Suite struct CaptureFileWriterTests {
    func frame(_ count: Int, seed: UInt8 = 0) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &+ Int(seed)) } }

    @Test(arguments: [TimestampResolution.microseconds, .nanoseconds])
    func pcapWriterCutsAtSnapLengthAndKeepsOriginalLength(resolution: TimestampResolution) throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path("snap.pcap")
        var writer = try PcapWriter(path: path, linkType: .ethernet, snapLength: 64, resolution: resolution)
        let long = frame(1514)
        let short = frame(42)
        try unsafe writer.write(bytes: long.span.bytes, timestamp: Timestamp(nanoseconds: 1_700_000_000_123_456_789))
        try unsafe writer.write(bytes: short.span.bytes, originalLength: 100, timestamp: Timestamp(nanoseconds: 5))
        try unsafe writer.write(bytes: short.span.bytes, originalLength: 10, timestamp: .zero)  // never below caplen
        #expect(writer.packetCount == 3)
        try writer.close()

        let result = readAll(path: path)
        #expect(result.error == nil)
        #expect(result.interfaces.first?.snapLength == 64)
        #expect(result.format == .pcap(byteOrder: .littleEndian, resolution: resolution))
        try #require(result.packets.count == 3)
        #expect(result.packets[0].bytes == Array(long.prefix(64)))
        #expect(result.packets[0].originalLength == 1514)
        #expect(result.packets[0].timestamp == (resolution == .nanoseconds ? 1_700_000_000_123_456_789 : 1_700_000_000_123_456_000))
        #expect(result.packets[1].bytes == short)
        #expect(result.packets[1].originalLength == 100)
        #expect(result.packets[2].originalLength == 42)
    }

    @Test func pcapngWriterOptionsDirectionStatisticsAndSnapLength() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path("options.pcapng")
        var writer = try PcapNGWriter(path: path, comment: "made by a test", operatingSystem: "Linux")
        let eth = try writer.addInterface(linkType: .ethernet, name: "eth0", description: "uplink", snapLength: 128)
        let sll = try writer.addInterface(CaptureInterface(linkType: .linuxSLL2, name: "any", comments: ["c1", "c2"],
                                                           timestampResolution: .microseconds, fcsLength: 4))
        #expect((eth, sll) == (0, 1))
        let big = frame(2000)
        try unsafe writer.write(interface: eth, bytes: big.span.bytes, timestamp: Timestamp(nanoseconds: 1_234_567_891),
                                comment: "first", direction: .inbound)
        try unsafe writer.write(interface: sll, bytes: big.span.bytes, originalLength: 9000,
                                timestamp: Timestamp(nanoseconds: 1_234_567_891), direction: .outbound)
        try unsafe writer.write(interface: eth, bytes: frame(3).span.bytes, timestamp: .zero, comment: "")
        try writer.writeInterfaceStatistics(interface: eth, timestamp: Timestamp(nanoseconds: 2_000_000_000),
                                            received: 1000, dropped: 7, osDropped: 2)
        try writer.writeInterfaceStatistics(interface: sll)
        try writer.close()

        var reader = try CaptureFileReader(path: path)
        #expect(reader.sections.first?.userApplication == "PodTap")
        #expect(reader.sections.first?.comments == ["made by a test"])
        #expect(reader.sections.first?.operatingSystem == "Linux")
        var packets: [CopiedPacket] = []
        while try reader.advance() { packets.append(copyOut(reader)) }
        let interfaces = reader.interfaces
        try #require(interfaces.count == 2 && packets.count == 3)
        #expect(interfaces[0].name == "eth0")
        #expect(interfaces[0].description == "uplink")
        #expect(interfaces[0].snapLength == 128)
        #expect(interfaces[0].timestampResolution == .nanoseconds)
        #expect(interfaces[1].comments == ["c1", "c2"])
        #expect(interfaces[1].fcsLength == 4)
        #expect(interfaces[1].timestampResolution == .microseconds)
        #expect(interfaces[0].statistics == InterfaceStatistics(timestamp: Timestamp(nanoseconds: 2_000_000_000),
                                                                received: 1000, interfaceDropped: 7, osDropped: 2))
        #expect(interfaces[1].statistics == InterfaceStatistics())

        #expect(packets[0].bytes == Array(big.prefix(128)))
        #expect(packets[0].originalLength == 2000)
        #expect(packets[0].direction == .inbound)
        #expect(packets[0].comments == ["first"])
        #expect(packets[0].timestamp == 1_234_567_891)
        #expect(packets[1].bytes == big)                 // snap length 0: unlimited
        #expect(packets[1].originalLength == 9000)
        #expect(packets[1].direction == .outbound)
        #expect(packets[1].timestamp == 1_234_567_000)   // microsecond interface
        #expect(packets[1].linkType == LinkType.linuxSLL2.rawValue)
        #expect(packets[2].comments == [""])
        #expect(packets[2].direction == .unknown)

        let info = try runTool("/usr/bin/capinfos", ["-c", path])
        #expect(info.status == 0 && info.output.contains("Number of packets:   3"), "\(info.output)")
    }

    /// Many packets (well past the 128 KiB buffer) and one larger than the buffer.
    @Test func bufferBoundariesAndLargePackets() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path("many.pcapng")
        var writer = try PcapNGWriter(path: path)
        try writer.addInterface(linkType: .raw)
        var expected: [[UInt8]] = []
        for i in 0..<3000 {
            let bytes = i == 1234 ? frame(300_000, seed: 9) : frame(i % 97, seed: UInt8(i & 0xFF))
            expected.append(bytes)
            try unsafe writer.write(interface: 0, bytes: bytes.span.bytes, timestamp: Timestamp(nanoseconds: UInt64(i)))
        }
        try writer.close()
        let result = readAll(path: path)
        #expect(result.error == nil)
        #expect(result.packets.map(\.bytes) == expected)
        #expect(result.packets.map(\.timestamp) == (0..<3000).map(UInt64.init))
    }

    /// Streaming to a descriptor, as `podtap … | wireshark -k -i -` would: the reader on the
    /// other end of a pipe sees the file header as soon as the writer flushes.
    @Test func streamsToAFileDescriptor() throws {
        var fds: [Int32] = [0, 0]
        try #require(unsafe pipe(&fds) == 0)
        defer { close(fds[0]) }
        var writer = try PcapWriter(fileDescriptor: fds[1], closeWhenDone: true, linkType: .ethernet)
        try writer.flush()
        var header = [UInt8](repeating: 0, count: 24)
        #expect(unsafe read(fds[0], &header, 24) == 24)
        #expect(header.prefix(4) == [0xD4, 0xC3, 0xB2, 0xA1])
        try unsafe writer.write(bytes: frame(60).span.bytes, timestamp: Timestamp(nanoseconds: 1_000_000_000))
        try writer.close()  // closes the write end: the reader sees EOF
        var rest: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = unsafe read(fds[0], &chunk, chunk.count)
            if n <= 0 { break }
            rest += chunk.prefix(n)
        }
        let result = readAll(bytes: header + rest, name: "pipe")
        #expect(result.error == nil)
        #expect(result.packets.map(\.bytes) == [frame(60)])
    }

    @Test func openAndWriteErrorsCarryErrno() throws {
        do {
            _ = try PcapNGWriter(path: "/nonexistent-dir/x.pcapng")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .cannotOpen(errno: ENOENT))
            #expect(error.description == "/nonexistent-dir/x.pcapng: cannot create: No such file or directory (errno 2)")
        }
        // Writing into a pipe whose reader is gone fails with EPIPE (SIGPIPE ignored here).
        var fds: [Int32] = [0, 0]
        try #require(unsafe pipe(&fds) == 0)
        close(fds[0])
        let previous = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previous) }
        var writer = try PcapWriter(fileDescriptor: fds[1], name: "stdout", closeWhenDone: true, linkType: .ethernet)
        #expect(throws: CaptureFileError(.cannotWrite(errno: EPIPE), fileName: "stdout", message: "write failed")) {
            try writer.flush()
        }
        try? writer.close()

        do {
            _ = try CaptureFileReader(path: "/nonexistent-dir/in.pcap")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .cannotOpen(errno: ENOENT))
            #expect(error.offset == nil)
        }
    }
}
