import CaptureCore
import Foundation
import Testing
import PodTapTestSupport

/// The shared packet corpus (`../shared/corpus` next to the repository) and its MANIFEST.tsv.
enum Corpus {
    /// `<repo>/Tests/CaptureCoreTests/Support/<this file>` → `<repo>/../shared/corpus`.
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // CaptureCoreTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository
        .deletingLastPathComponent()
        .appendingPathComponent("shared/corpus")

    struct Row: Sendable {
        var file: String          // "wellformed/zeek__dns53.pcap"
        var set: String
        var format: String        // "pcap v2.4 LE", "pcapng sections=3 BE/LE blocks=..."
        var linkTypes: Set<UInt32>
        var resolutions: Set<String>
        var interfaces: Int?
        var packets: Int?
        var status: String
    }

    static let rows: [String: Row] = {
        guard let text = try? String(contentsOf: root.appendingPathComponent("MANIFEST.tsv"), encoding: .utf8) else {
            return [:]
        }
        var rows: [String: Row] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 14 else { continue }
            // "1(EN10MB),0(NULL)" or "0(NULL) [header value 0x00300000: ...]"
            let linkTypes = Set(f[8].split(separator: " ").first.map {
                $0.split(separator: ",").compactMap { UInt32($0.prefix { $0.isNumber }) }
            } ?? [])
            let resolutions = Set(f[9].split(separator: ",").map(String.init))
            rows[f[0]] = Row(file: f[0], set: f[1], format: f[7], linkTypes: linkTypes, resolutions: resolutions,
                             interfaces: Int(f[10]), packets: Int(f[11]), status: f[13])
        }
        return rows
    }()

    static let wellformed: [String] = rows.keys.filter { $0.hasPrefix("wellformed/") }.sorted()
    static let malformed: [String] = rows.keys.filter { $0.hasPrefix("malformed/") }.sorted()

    static func path(_ file: String) -> String { root.appendingPathComponent(file).path }
    static func bytes(_ file: String) throws -> [UInt8] { try [UInt8](Data(contentsOf: root.appendingPathComponent(file))) }
}

/// A packet copied out of a reader, for comparisons.
struct CopiedPacket: Equatable, CustomStringConvertible {
    var bytes: [UInt8]
    var originalLength: Int
    var timestamp: UInt64
    var linkType: UInt32
    var interface: Int
    var direction: PacketDirection
    var comments: [String]
    /// `bytesRead` after the packet: the end of its record or block.
    var end: Int

    var description: String {
        "\(bytes.count)/\(originalLength) bytes ts \(timestamp) lt \(linkType) if \(interface) \(direction) end \(end)"
    }
}

/// Everything a full read produced, including the error that ended it (if any).
struct ReadResult {
    var packets: [CopiedPacket] = []
    var error: CaptureFileError?
    var openFailed = false
    var interfaces: [CaptureInterface] = []
    var sections: [CaptureSection] = []
    var format: CaptureFileFormat?
    var bytesRead = 0
}

extension CopiedPacket {
    /// `p` with what its reader says of it (either reader type).
    init(_ p: borrowing PacketRecord, comments: [String], end: Int) {
        self.init(bytes: unsafe p.bytes.withUnsafeBytes { unsafe Array($0) }, originalLength: p.originalLength,
                  timestamp: p.timestamp.nanoseconds, linkType: p.linkType.rawValue, interface: p.interfaceIndex,
                  direction: p.direction, comments: comments, end: end)
    }
}

func copyOut(_ reader: borrowing CaptureFileReader) -> CopiedPacket {
    CopiedPacket(reader.packet, comments: reader.packetComments, end: reader.bytesRead)
}

func readAll(_ reader: inout CaptureFileReader, into result: inout ReadResult) {
    do {
        while try reader.advance() {
            result.packets.append(copyOut(reader))
        }
    } catch {
        result.error = error
        // Errors are sticky: a second call must throw the same error again, not hang or resume.
        #expect(throws: CaptureFileError.self) { _ = try reader.advance() }
    }
    result.interfaces = reader.interfaces
    result.sections = reader.sections
    result.format = reader.format
    result.bytesRead = reader.bytesRead
}

func readAll(path: String) -> ReadResult {
    var result = ReadResult()
    do {
        var reader = try CaptureFileReader(path: path)
        readAll(&reader, into: &result)
    } catch {
        result.error = error
        result.openFailed = true
    }
    return result
}

func readAll(bytes: [UInt8], name: String = "memory.pcap") -> ReadResult {
    var result = ReadResult()
    do {
        var reader = try CaptureFileReader(bytes: bytes, name: name)
        readAll(&reader, into: &result)
    } catch {
        result.error = error
        result.openFailed = true
    }
    return result
}

/// Builds pcapng blocks for hostile-input tests, in either byte order.
struct PcapNGBuilder {
    var bigEndian = false
    var bytes: [UInt8] = []

    func u16(_ v: UInt16) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
    func u32(_ v: UInt32) -> [UInt8] {
        let le = [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)]
        return bigEndian ? le.reversed() : le
    }
    func u64(_ v: UInt64) -> [UInt8] {
        bigEndian ? u32(UInt32(v >> 32)) + u32(UInt32(v & 0xFFFF_FFFF)) : u32(UInt32(v & 0xFFFF_FFFF)) + u32(UInt32(v >> 32))
    }
    static func pad(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (4 - b.count % 4) % 4) }

    func option(_ code: UInt16, _ value: [UInt8]) -> [UInt8] { u16(code) + u16(UInt16(value.count)) + Self.pad(value) }
    func option(_ code: UInt16, _ text: String) -> [UInt8] { option(code, Array(text.utf8)) }
    func options(_ list: [[UInt8]]) -> [UInt8] { list.isEmpty ? [] : list.flatMap { $0 } + u32(0) }

    /// Appends a block; `length`/`trailer` override the computed total length for hostile cases.
    mutating func block(_ type: UInt32, _ body: [UInt8], length: UInt32? = nil, trailer: UInt32? = nil) {
        let total = UInt32(12 + body.count)
        bytes += u32(type) + u32(length ?? total) + body + u32(trailer ?? length ?? total)
    }
    mutating func shb(options: [[UInt8]] = [], version: (UInt16, UInt16) = (1, 0)) {
        block(0x0A0D_0D0A, u32(0x1A2B_3C4D) + u16(version.0) + u16(version.1) + u64(.max) + self.options(options))
    }
    mutating func idb(linkType: UInt16 = 1, snapLength: UInt32 = 0, options: [[UInt8]] = []) {
        block(1, u16(linkType) + u16(0) + u32(snapLength) + self.options(options))
    }
    mutating func epb(interface: UInt32 = 0, timestamp: UInt64 = 0, data: [UInt8], originalLength: UInt32? = nil,
                      capturedLength: UInt32? = nil, options: [[UInt8]] = []) {
        block(6, u32(interface) + u32(UInt32(timestamp >> 32)) + u32(UInt32(timestamp & 0xFFFF_FFFF))
              + u32(capturedLength ?? UInt32(data.count)) + u32(originalLength ?? UInt32(data.count))
              + Self.pad(data) + self.options(options))
    }
    mutating func spb(originalLength: UInt32, data: [UInt8]) {
        block(3, u32(originalLength) + Self.pad(data))
    }
    mutating func opb(interface: UInt16, timestamp: UInt64, data: [UInt8], options: [[UInt8]] = []) {
        block(2, u16(interface) + u16(0) + u32(UInt32(timestamp >> 32)) + u32(UInt32(timestamp & 0xFFFF_FFFF))
              + u32(UInt32(data.count)) + u32(UInt32(data.count)) + Self.pad(data) + self.options(options))
    }
    mutating func isb(interface: UInt32, timestamp: UInt64 = 0, options: [[UInt8]]) {
        block(5, u32(interface) + u32(UInt32(timestamp >> 32)) + u32(UInt32(timestamp & 0xFFFF_FFFF)) + self.options(options))
    }
}

/// One little-endian classic pcap record: `data` whole, at `seconds`.
func pcapRecord(_ data: [UInt8], seconds: UInt32 = 0) -> [UInt8] {
    Array(classicPcap(records: [(seconds, 0, data, UInt32(data.count))]).dropFirst(24))
}

/// A classic pcap file in memory.
func classicPcap(bigEndian: Bool = false, nanoseconds: Bool = false, version: (UInt16, UInt16) = (2, 4),
                 snapLength: UInt32 = 65535, linkTypeField: UInt32 = 1,
                 records: [(UInt32, UInt32, [UInt8], UInt32)]) -> [UInt8] {
    let b = PcapNGBuilder(bigEndian: bigEndian)
    var bytes = b.u32(nanoseconds ? 0xA1B2_3C4D : 0xA1B2_C3D4) + b.u16(version.0) + b.u16(version.1)
        + b.u32(0) + b.u32(0) + b.u32(snapLength) + b.u32(linkTypeField)
    for (seconds, fraction, data, original) in records {
        bytes += b.u32(seconds) + b.u32(fraction) + b.u32(UInt32(data.count)) + b.u32(original) + data
    }
    return bytes
}
