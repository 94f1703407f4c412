import Backends
import CaptureCore
import Foundation
import PodTapTestSupport
import Testing

/// One delivered packet, copied out for comparison.
struct CopiedPacket: Equatable, CustomStringConvertible {
    var bytes: [UInt8]
    var originalLength: Int
    var timestamp: Timestamp
    var linkType: LinkType

    init(_ packet: borrowing PacketRecord) {
        bytes = unsafe packet.bytes.withUnsafeBytes { unsafe Array($0) }
        originalLength = packet.originalLength
        timestamp = packet.timestamp
        linkType = packet.linkType
    }

    var description: String { "\(timestamp) \(linkType) \(bytes.count)/\(originalLength)" }
}

/// Every packet of a source, through the CaptureSource protocol.
func collect<S: CaptureSource & ~Copyable>(_ source: inout S) throws -> [CopiedPacket] {
    var packets: [CopiedPacket] = []
    while try source.poll(timeoutMilliseconds: 0, { packets.append(CopiedPacket($0)) }) > 0 {}
    return packets
}

@Suite("libpcap offline reading")
@MainActor struct PcapFileSourceTests {
    nonisolated static let files = [
        "tcpdump__tcp-handshake-nano.pcap",        // nanosecond magic, LINUX_SLL
        "zeek__http_get-to-ssh-server.pcap",       // nanosecond, Ethernet
        "tcpdump__pptp.pcap",                      // big-endian
        "tcpdump__LINKTYPE_RAW_ipv4.pcap",         // LINKTYPE_RAW: libpcap's DLT_RAW is 12
        "zeek__linux_dlt_sll2.pcap",               // LINUX_SLL2
        "tcpdump__quic_handshake.pcap",            // NULL
        "zeek__ftp_bruteforce.pcap",               // 606 packets: several batches
        "pcapng-test-generator__output_le_basic_test001.pcapng",  // libpcap reads simple pcapng too
    ]

    @Test("PcapFileSource and CaptureFileReader deliver identical packets", arguments: files)
    func sameAsCaptureFileReader(_ name: String) throws {
        let path = Repository.shared.appendingPathComponent("corpus/wellformed/\(name)").path
        var viaLibpcap = try PcapFileSource(path: path)
        var viaSwift = try CaptureFileReader(path: path)
        let a = try collect(&viaLibpcap), b = try collect(&viaSwift)
        #expect(a.count == b.count)
        #expect(a.count > 0)
        for (i, (x, y)) in zip(a, b).enumerated() where x != y {
            Issue.record("\(name) packet \(i): libpcap \(x), CaptureFileReader \(y)")
            break
        }
        #expect(viaLibpcap.statistics.delivered == UInt64(a.count))
        #expect(viaSwift.statistics.delivered == UInt64(b.count) && viaSwift.statistics.received == UInt64(b.count))
        #expect(viaLibpcap.linkType == a.first?.linkType)
    }

    @Test("Missing or non-capture files fail with libpcap's reason")
    func openFailures() throws {
        let missing = #expect(throws: CaptureSourceError.self) { _ = try PcapFileSource(path: "/nonexistent/x.pcap") }
        #expect(missing?.code == .file)
        #expect(missing?.message.contains("No such file") == true, "\(String(describing: missing))")
        let notCapture = #expect(throws: CaptureSourceError.self) {
            _ = try PcapFileSource(path: Repository.root.appendingPathComponent("Package.swift").path)
        }
        #expect(notCapture?.code == .file)
    }
}
