import CaptureCore
import Foundation
import Testing

/// Hand-built pcap/pcapng files: header variants, pcapng features and hostile inputs.
@Suite struct CaptureFileReaderTests {
    let frame: [UInt8] = Array(0..<60)

    // MARK: Classic pcap

    @Test(arguments: [false, true], [false, true])
    func classicPcapByteOrderAndResolution(bigEndian: Bool, nanoseconds: Bool) throws {
        let bytes = classicPcap(bigEndian: bigEndian, nanoseconds: nanoseconds,
                                records: [(1_700_000_000, 123_456, frame, 1514), (1_700_000_001, 7, [], 0)])
        let result = readAll(bytes: bytes)
        #expect(result.error == nil)
        let resolution: TimestampResolution = nanoseconds ? .nanoseconds : .microseconds
        #expect(result.format == .pcap(byteOrder: bigEndian ? .bigEndian : .littleEndian, resolution: resolution))
        #expect(result.interfaces.count == 1)
        #expect(result.interfaces.first?.snapLength == 65535)
        try #require(result.packets.count == 2)
        #expect(result.packets[0].bytes == frame)
        #expect(result.packets[0].originalLength == 1514)
        #expect(result.packets[0].timestamp == 1_700_000_000 * 1_000_000_000 + 123_456 * (nanoseconds ? 1 : 1000))
        #expect(result.packets[0].linkType == 1)
        #expect(result.packets[0].direction == .unknown)
        #expect(result.packets[1].bytes.isEmpty)
        #expect(result.packets[1].end == bytes.count)
    }

    @Test func classicPcapMasksFCSBitsAndRejectsReservedBits() throws {
        let fcs = readAll(bytes: classicPcap(linkTypeField: 0x3000_0001, records: [(0, 0, frame, 60)]))
        #expect(fcs.error == nil)
        #expect(fcs.packets.first?.linkType == 1)
        let fcsPresent = readAll(bytes: classicPcap(linkTypeField: 0x0400_00E5, records: [(0, 0, frame, 60)]))
        #expect(fcsPresent.packets.first?.linkType == 229)

        let reserved = readAll(bytes: classicPcap(linkTypeField: 0x0030_0000, records: []), name: "r.pcap")
        #expect(reserved.error?.code == .corrupt)
        #expect(reserved.error?.description == "r.pcap: byte offset 0: network type reserved field not zero (0x300000)")
    }

    @Test func headerErrors() {
        #expect(readAll(bytes: []).error?.code == .notACaptureFile)
        #expect(readAll(bytes: [0xA1]).error?.code == .notACaptureFile)
        #expect(readAll(bytes: Array("GET / HTTP/1.1\r\n\r\n".utf8)).error?.code == .notACaptureFile)
        #expect(readAll(bytes: Array(classicPcap(records: []).prefix(20))).error?.code == .truncated)
        #expect(readAll(bytes: classicPcap(version: (1, 4), records: [])).error?.code == .unsupportedVersion)
        #expect(readAll(bytes: classicPcap(version: (2, 5), records: [])).error == nil)  // libpcap accepts 2.x
        var ng = PcapNGBuilder()
        ng.shb(version: (2, 0))
        #expect(readAll(bytes: ng.bytes).error?.code == .unsupportedVersion)
        var noMagic = PcapNGBuilder()
        noMagic.shb()
        noMagic.bytes[8] = 0
        #expect(readAll(bytes: noMagic.bytes).error?.code == .notACaptureFile)
    }

    @Test func hugeCapturedLengthIsTruncatedNotAllocated() {
        var bytes = classicPcap(records: [(0, 0, frame, 60), (0, 0, frame, 60)])
        bytes.replaceSubrange(24 + 76 + 8 ..< 24 + 76 + 12, with: [0xFF, 0xFF, 0xFF, 0xFF])
        let result = readAll(bytes: bytes, name: "x.pcap")
        #expect(result.packets.count == 1)
        #expect(result.error?.code == .truncated)
        #expect(result.error?.offset == 100)
        #expect(result.error?.message == "truncated packet record (header says 4294967295 bytes, 60 remain)")
    }

    // MARK: pcapng features

    @Test func pcapngSectionsInterfacesOptionsAndStatistics() throws {
        var ng = PcapNGBuilder()
        ng.shb(options: [ng.option(1, "first section"), ng.option(2, "hw"), ng.option(3, "Linux"), ng.option(4, "test\0")])
        ng.idb(linkType: 1, snapLength: 96, options: [ng.option(2, "eth0"), ng.option(3, "uplink"), ng.option(1, "idb comment"),
                                                      ng.option(9, [3])])  // milliseconds
        ng.idb(linkType: 113, snapLength: 0, options: [ng.option(9, [0x8A]), ng.option(14, ng.u64(10))])  // 2^-10 s, +10 s
        ng.epb(interface: 0, timestamp: 1_500, data: frame, originalLength: 1000,
               options: [ng.option(1, "hello"), ng.option(1, "again"), ng.option(2, ng.u32(2))])
        ng.epb(interface: 1, timestamp: 1024 * 3 + 512, data: frame, options: [ng.option(2, ng.u32(1))])
        ng.spb(originalLength: 200, data: Array(repeating: 7, count: 120))  // snaplen 96 → 96 bytes
        ng.opb(interface: 1, timestamp: 2048, data: [1, 2, 3], options: [ng.option(2, ng.u32(3))])
        ng.isb(interface: 0, timestamp: 9_000, options: [ng.option(4, ng.u64(100)), ng.option(5, ng.u64(3)),
                                                       ng.option(7, ng.u64(4))])
        ng.block(0x0000_0BAD, [1, 2, 3, 4, 5, 6, 7, 8])  // custom block: skipped
        ng.block(4, [0, 0, 0, 0])                         // empty NRB: skipped
        // Second section, other byte order: interface numbering continues.
        var be = PcapNGBuilder(bigEndian: true)
        be.shb(options: [be.option(1, "second section")])
        be.idb(linkType: 101, options: [be.option(9, [9])])
        be.epb(interface: 0, timestamp: 5_000_000_123, data: [0x45, 0, 0, 20])
        let bytes = ng.bytes + be.bytes

        var reader = try CaptureFileReader(bytes: bytes, name: "features.pcapng")
        #expect(reader.interfaces.count == 2)  // read by init, before the first packet
        #expect(reader.sections.first?.comments == ["first section"])
        #expect(reader.sections.first?.hardware == "hw")
        #expect(reader.sections.first?.operatingSystem == "Linux")
        #expect(reader.sections.first?.userApplication == "test")
        var packets: [CopiedPacket] = []
        var comments: [[String]] = []
        while try reader.advance() {
            packets.append(copyOut(reader))
            comments.append(reader.packetComments)
        }
        #expect(reader.bytesRead == bytes.count)
        #expect(reader.format == .pcapng(byteOrder: .littleEndian))
        #expect(reader.sections.map(\.byteOrder) == [.littleEndian, .bigEndian])
        #expect(reader.sections.map(\.firstInterface) == [0, 2])
        #expect(reader.sections.last?.comments == ["second section"])

        let interfaces = reader.interfaces
        try #require(interfaces.count == 3)
        #expect(interfaces[0].name == "eth0")
        #expect(interfaces[0].description == "uplink")
        #expect(interfaces[0].comments == ["idb comment"])
        #expect(interfaces[0].snapLength == 96)
        #expect(interfaces[0].timestampResolution == TimestampResolution(decimalExponent: 3))
        #expect(interfaces[1].timestampResolution == TimestampResolution(binaryExponent: 10))
        #expect(interfaces[1].timestampOffsetSeconds == 10)
        #expect(interfaces[2].linkType == .raw)
        #expect(interfaces[2].section == 1)
        #expect(interfaces[0].statistics == InterfaceStatistics(timestamp: Timestamp(nanoseconds: 9_000_000_000),
                                                                received: 100, interfaceDropped: 3, osDropped: 4))
        #expect(interfaces[1].statistics == nil)

        try #require(packets.count == 5)
        #expect(packets[0].timestamp == 1_500_000_000)
        #expect(packets[0].originalLength == 1000)
        #expect(packets[0].direction == .outbound)
        #expect(comments[0] == ["hello", "again"])
        #expect(packets[1].timestamp == 13_500_000_000)  // 3.5 s + if_tsoffset 10 s
        #expect(packets[1].direction == .inbound)
        #expect(packets[1].linkType == 113)
        #expect(packets[2].bytes.count == 96)              // SPB: min(200, body 120, snaplen 96)
        #expect(packets[2].originalLength == 200)
        #expect(packets[2].interface == 0)
        #expect(packets[2].timestamp == 0)
        #expect(packets[3].bytes == [1, 2, 3])             // obsolete packet block
        #expect(packets[3].timestamp == 12_000_000_000)
        #expect(packets[3].direction == .unknown)          // invalid direction value 3
        #expect(packets[4].interface == 2)
        #expect(packets[4].linkType == 101)
        #expect(packets[4].timestamp == 5_000_000_123)
        #expect(comments[4].isEmpty)
    }

    @Test func simplePacketLengthRules() throws {
        var ng = PcapNGBuilder()
        ng.shb()
        ng.idb(snapLength: 0)
        ng.spb(originalLength: 10, data: Array(repeating: 1, count: 10))  // body padded to 12: caplen 10
        ng.spb(originalLength: 1000, data: Array(repeating: 2, count: 16)) // cut by the block: 16
        let result = readAll(bytes: ng.bytes)
        #expect(result.error == nil)
        #expect(result.packets.map(\.bytes.count) == [10, 16])
        #expect(result.packets.map(\.originalLength) == [10, 1000])
    }

    @Test func extremeTimestampResolutions() throws {
        var ng = PcapNGBuilder()
        ng.shb()
        ng.idb(options: [ng.option(9, [0])])     // whole seconds
        ng.idb(options: [ng.option(9, [19])])    // 10^-19 s
        ng.idb(options: [ng.option(9, [0xBF])])  // 2^-63 s
        ng.epb(interface: 0, timestamp: 3, data: [])
        ng.epb(interface: 1, timestamp: .max, data: [])
        ng.epb(interface: 2, timestamp: 1 << 63, data: [])
        ng.epb(interface: 0, timestamp: .max, data: [])  // saturates instead of wrapping
        let result = readAll(bytes: ng.bytes)
        #expect(result.error == nil)
        #expect(result.packets.map(\.timestamp) == [3_000_000_000, 1_844_674_407, 1_000_000_000, .max])
    }

    // MARK: Hostile pcapng

    /// A valid prefix (SHB, IDB, one EPB) followed by `tail`: the good packet is delivered,
    /// then the error, at the tail's offset.
    func expectError(_ code: CaptureFileError.Code, _ message: String, packets: Int = 1, afterTail skip: Int = 0,
                     tail: (inout PcapNGBuilder) -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        var ng = PcapNGBuilder()
        ng.shb()
        ng.idb(linkType: 1, snapLength: 0)
        ng.epb(data: frame)
        let offset = ng.bytes.count
        tail(&ng)
        let result = readAll(bytes: ng.bytes, name: "bad.pcapng")
        #expect(result.packets.count == packets, sourceLocation: sourceLocation)
        #expect(result.error?.code == code, sourceLocation: sourceLocation)
        #expect(result.error?.offset == offset + skip, sourceLocation: sourceLocation)
        #expect(result.error?.message == message, sourceLocation: sourceLocation)
    }

    @Test func hostileBlocks() {
        expectError(.corrupt, "enhanced packet block length 0 is smaller than 12") { $0.bytes += $0.u32(6) + $0.u32(0) + $0.u32(0) }
        expectError(.corrupt, "block (type 0x00000099) length 8 is smaller than 12") { $0.bytes += $0.u32(0x99) + $0.u32(8) + $0.u32(8) }
        expectError(.corrupt, "enhanced packet block length 13 is not a multiple of 4") { $0.block(6, Array(repeating: 0, count: 20), length: 13) }
        expectError(.truncated, "truncated enhanced packet block (length 4294967292, 32 bytes remain)") {
            $0.block(6, Array(repeating: 0, count: 20), length: 0xFFFF_FFFC)
        }
        expectError(.corrupt, "enhanced packet block trailing length 36 does not match leading length 32") {
            $0.block(6, Array(repeating: 0, count: 20), trailer: 36)
        }
        expectError(.truncated, "truncated block header (12 bytes needed, 7 remain)") { $0.bytes += [1, 2, 3, 4, 5, 6, 7] }
        expectError(.corrupt, "enhanced packet block captured length 61 exceeds the block body (60 bytes)") {
            $0.epb(data: Array(repeating: 0, count: 60), capturedLength: 61)
        }
        expectError(.corrupt, "enhanced packet block length 28 is smaller than 32") { $0.block(6, Array(repeating: 0, count: 16)) }
        expectError(.corrupt, "enhanced packet block references interface 1 but the section has 1 interface") {
            $0.epb(interface: 1, data: [])
        }
        expectError(.corrupt, "enhanced packet block option 1 (length 100) overruns the block (4 bytes left)") {
            $0.epb(data: [], options: [$0.u16(1) + $0.u16(100)])
        }
        expectError(.corrupt, "interface description block option 2 (length 65535) overruns the block (0 bytes left)") {
            $0.block(1, $0.u16(1) + $0.u16(0) + $0.u32(0) + $0.u16(2) + $0.u16(0xFFFF))
        }
        expectError(.corrupt, "if_tsresol 0x7f is out of range") { $0.idb(options: [$0.option(9, [0x7F])]) }
        expectError(.corrupt, "if_tsresol 0xc0 is out of range") { $0.idb(options: [$0.option(9, [0xC0])]) }
        expectError(.corrupt, "section header block without byte-order magic") {
            $0.bytes += $0.u32(0x0A0D_0D0A) + $0.u32(28) + $0.u32(0x12345678) + Array(repeating: 0, count: 16)
        }
        expectError(.corrupt, "simple packet block references interface 0 but the section has 0 interfaces", afterTail: 28) {
            $0.shb()
            $0.spb(originalLength: 4, data: [1, 2, 3, 4])
        }
    }

    /// Only a bad first section header fails `init`; later faults come from `advance()`, so
    /// a caller can still see the interfaces that were read.
    @Test func faultsAfterTheFirstSectionHeaderAreDeferredToAdvance() throws {
        var ng = PcapNGBuilder()
        ng.shb()
        ng.idb(linkType: 113, options: [ng.option(2, "any")])
        ng.epb(data: frame)
        var reader = try CaptureFileReader(bytes: Array(ng.bytes.dropLast(8)), name: "cut.pcapng")
        #expect(reader.interfaces.map(\.name) == ["any"])
        #expect(throws: CaptureFileError(.truncated, fileName: "cut.pcapng", offset: 60,
                                         message: "truncated enhanced packet block (length 92, 84 bytes remain)")) {
            _ = try reader.advance()
        }
        #expect(reader.packetCount == 0)

        var badSHB = PcapNGBuilder()
        badSHB.shb(options: [badSHB.u16(1) + badSHB.u16(0x3030)])
        #expect(throws: CaptureFileError(.corrupt, fileName: "s.pcapng", offset: 0,
                                         message: "section header block option 1 (length 12336) overruns the block (4 bytes left)")) {
            _ = try CaptureFileReader(bytes: badSHB.bytes, name: "s.pcapng")
        }
    }

    @Test func optionsEndAtEndOfOptAndToleratePadding() throws {
        var ng = PcapNGBuilder()
        ng.shb()
        ng.idb()
        // opt_endofopt followed by garbage, and 2 stray bytes of padding: both ignored.
        ng.block(6, ng.u32(0) + ng.u32(0) + ng.u32(0) + ng.u32(0) + ng.u32(0) + ng.u32(0) + [0xFF, 0xFF, 0xFF, 0xFF])
        ng.block(6, ng.u32(0) + ng.u32(0) + ng.u32(0) + ng.u32(0) + ng.u32(0) + ng.option(2, ng.u32(1)) + [0, 0, 0, 0])
        let result = readAll(bytes: ng.bytes)
        #expect(result.error == nil)
        #expect(result.packets.map(\.direction) == [.unknown, .inbound])
    }

    /// Seeded random mutations of real files: the reader must end cleanly or with an error,
    /// never trap, and never report more packets than the file could hold.
    @Test(arguments: ["wellformed/pcapng-test-generator__output_le_advanced_test102.pcapng",
                      "wellformed/pcapng-test-generator__output_be_difficult_test202.pcapng",
                      "wellformed/zeek__ldap_modify-request.pcapng", "wellformed/tcpdump__pptp.pcap"])
    func randomMutationsNeverTrap(file: String) throws {
        let original = try Corpus.bytes(file)
        var generator = SplitMix64(seed: UInt64(original.count))
        for _ in 0..<400 {
            var bytes = original
            for _ in 0..<Int(generator.next() % 8 + 1) {
                let at = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 4 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: generator.next())
                case 1: bytes[at] ^= 0x80
                case 2: bytes[at] = 0xFF
                default: bytes[at] = 0
                }
            }
            if generator.next() % 4 == 0 { bytes.removeLast(Int(generator.next() % UInt64(bytes.count))) }
            let result = readAll(bytes: bytes)
            #expect(result.packets.count <= bytes.count / 12)
            #expect(result.bytesRead <= bytes.count)
            if let offset = result.error?.offset { #expect(offset >= 0 && offset <= bytes.count) }
        }
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
