import CaptureCore
import Foundation
import Testing
import PodTapTestSupport

/// Reads every file of the shared corpus and checks it against MANIFEST.tsv (values from
/// capinfos/tshark 4.0.17).
@Suite @MainActor struct CaptureFileCorpusTests {
    @Test func corpusIsPresent() {
        #expect(Corpus.wellformed.count == 80, "corpus not found at \(Corpus.root.path)")
        #expect(Corpus.malformed.count == 190)
    }

    @Test(arguments: Corpus.wellformed)
    func wellformedFileMatchesManifest(file: String) throws {
        let row = try #require(Corpus.rows[file])
        let result = readAll(path: Corpus.path(file))
        #expect(result.error == nil, "\(result.error.map(String.init(describing:)) ?? "")")
        #expect(result.packets.count == row.packets)
        #expect(result.bytesRead == (try FileManager.default.attributesOfItem(atPath: Corpus.path(file))[.size] as? Int))
        #expect(Set(result.interfaces.map(\.linkType.rawValue)) == row.linkTypes)
        #expect(Set(result.interfaces.map(\.timestampResolution.description)) == row.resolutions)
        #expect(result.interfaces.count == row.interfaces)
        // Every packet's link type is its interface's.
        for packet in result.packets {
            #expect(packet.interface < result.interfaces.count)
            #expect(packet.linkType == result.interfaces[packet.interface].linkType.rawValue)
            #expect(packet.bytes.count <= packet.originalLength || row.status != "clean")
        }
        // Format: "pcap v2.4 LE" or "pcapng sections=3 BE/LE blocks=...".
        let words = row.format.split(separator: " ").map(String.init)
        if words[0] == "pcap" {
            guard case .pcap(let order, _)? = result.format else { Issue.record("not read as pcap"); return }
            #expect(order.description == words[2])
        } else {
            guard case .pcapng? = result.format else { Issue.record("not read as pcapng"); return }
            #expect("sections=\(result.sections.count)" == words[1])
            // The manifest lists the distinct byte orders in order of first appearance.
            var orders: [String] = []
            for order in result.sections.map(\.byteOrder.description) where !orders.contains(order) { orders.append(order) }
            #expect(orders.joined(separator: "/") == words[2])
            if row.format.contains("ISB:") {
                #expect(result.interfaces.contains { $0.statistics != nil }, "ISBs were not attached to interfaces")
            }
        }
    }

    /// The five "file-error" rows that tshark rejects only because it has no dissector for
    /// their link type (MFR 182, DSA 284, JUNIPER_ES 132 with FCS bits). The reader delivers
    /// unknown link types; decoders decide.
    static let unknownLinkTypeRows: Set<String> = [
        "malformed/tcpdump__dsa.pcap", "malformed/tcpdump__frf16_magic_ie-oobr.pcap",
        "malformed/tcpdump__juniper_es_oobr.pcap", "malformed/tcpdump__kday6.pcap", "malformed/tcpdump__vtp_asan.pcap",
    ]

    @Test(arguments: Corpus.malformed)
    func malformedFileIsReadOrRejected(file: String) throws {
        let row = try #require(Corpus.rows[file])
        let result = readAll(path: Corpus.path(file))
        if row.status == "file-error" && !Self.unknownLinkTypeRows.contains(file) {
            // Bad header: reserved link-type bits, pcap 1.x, pcapng 0.1/1.1, SHB option overrun.
            let error = try #require(result.error, "expected a CaptureFileError")
            #expect(result.packets.isEmpty)
            #expect(error.offset == 0)
            #expect(error.description.contains(file.split(separator: "/").last!))
        } else {
            #expect(result.error == nil, "\(result.error.map(String.init(describing:)) ?? "")")
            if let packets = row.packets { #expect(result.packets.count == packets) }
            if Self.unknownLinkTypeRows.contains(file) {
                #expect(!result.packets.isEmpty)
                #expect(result.interfaces.first.map { row.linkTypes.contains($0.linkType.rawValue) } == true)
            } else {
                #expect(Set(result.interfaces.map(\.linkType.rawValue)) == row.linkTypes)
            }
        }
    }

    nonisolated static let truncationFiles = [
        "wellformed/tcpdump__pptp.pcap",                                            // pcap BE
        "wellformed/tcpdump__dns_tcp.pcap",                                         // pcap LE
        "wellformed/tcpdump__tcp-handshake-nano.pcap",                              // pcap LE ns
        "wellformed/pcapng-test-generator__output_be_difficult_test202.pcapng",     // 3 sections BE/LE/BE
        "wellformed/pcapng-test-generator__output_le_difficult_test202.pcapng",     // 3 sections LE/BE/LE
        "wellformed/pcapng-test-generator__output_le_advanced_test102.pcapng",      // SPB, ISB, NRB, custom
        "wellformed/zeek__pcapng-multi-interface.pcapng",                           // us + ns interfaces
    ]

    /// Every prefix of the file: the packets complete before the cut, then either a clean
    /// end exactly at a record/block boundary or a `truncated` error at an offset in range.
    @Test(arguments: truncationFiles)
    func everyPrefixDeliversCompletePacketsThenStops(file: String) throws {
        let bytes = try Corpus.bytes(file)
        let full = readAll(bytes: bytes, name: file)
        try #require(full.error == nil)
        let boundaries = Self.recordBoundaries(bytes)
        #expect(boundaries.contains(bytes.count))
        var failures = 0
        for cut in 0..<bytes.count {
            let result = readAll(bytes: Array(bytes[..<cut]), name: file)
            let expected = full.packets.filter { $0.end <= cut }
            let ok1 = result.packets == expected
            var ok2 = true
            if let error = result.error {
                let lastEnd = expected.last?.end ?? 0
                ok2 = (error.code == .truncated || (cut < 4 && error.code == .notACaptureFile))
                    && error.offset.map { $0 >= lastEnd && $0 <= cut } == true
                    && !boundaries.contains(cut)
            } else {
                ok2 = boundaries.contains(cut) && result.bytesRead == cut
            }
            if !(ok1 && ok2) {
                failures += 1
                if failures <= 5 {
                    Issue.record("cut at \(cut): \(result.packets.count) packets (expected \(expected.count)), error \(result.error.map(String.init(describing:)) ?? "none")")
                }
            }
        }
        #expect(failures == 0)
    }

    /// Ends of the file header and every record (pcap) or block (pcapng), walked independently.
    static func recordBoundaries(_ b: [UInt8]) -> Set<Int> {
        func u32(_ at: Int, _ be: Bool) -> Int {
            let v = [b[at], b[at + 1], b[at + 2], b[at + 3]].map(Int.init)
            return be ? v[0] << 24 | v[1] << 16 | v[2] << 8 | v[3] : v[3] << 24 | v[2] << 16 | v[1] << 8 | v[0]
        }
        var ends: Set<Int> = []
        if b[0] == 0x0A && b[1] == 0x0D {
            var offset = 0
            var be = false
            while offset < b.count {
                if u32(offset, false) == 0x0A0D_0D0A { be = b[offset + 8] == 0x1A }
                offset += u32(offset + 4, be)
                ends.insert(offset)
            }
        } else {
            let be = b[0] == 0xA1
            var offset = 24
            ends.insert(offset)
            while offset < b.count {
                offset += 16 + u32(offset + 8, be)
                ends.insert(offset)
            }
        }
        return ends
    }

    @Test func truncatedFileErrorNamesFileAndOffset() throws {
        let file = "wellformed/zeek__dns_long-connection.pcap"
        let bytes = try Corpus.bytes(file)
        let full = readAll(bytes: bytes)
        let last = try #require(full.packets.last)
        let lastRecord = full.packets[full.packets.count - 2].end  // where the last record starts
        let result = readAll(bytes: Array(bytes.dropLast(10)), name: "capture.pcap")
        #expect(result.packets.count == full.packets.count - 1)
        let error = try #require(result.error)
        #expect(error.code == .truncated)
        #expect(error.fileName == "capture.pcap")
        #expect(error.offset == lastRecord)
        #expect(error.description == "capture.pcap: byte offset \(lastRecord): truncated packet record (header says \(last.bytes.count) bytes, \(last.bytes.count - 10) remain)")

        // Same through a real path.
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path("cut.pcap")
        try Data(bytes.prefix(30)).write(to: URL(fileURLWithPath: path))
        let cut = readAll(path: path)
        #expect(cut.error?.description == "\(path): byte offset 24: truncated packet record header (16 bytes needed, 6 remain)")
    }
}
