import CaptureCore
import Foundation
import Testing
import PodTapTestSupport

/// A conversation as `tshark -q -z conv,tcp -z conv,udp` prints it, oriented a < b.
struct Conversation: Hashable, CustomStringConvertible {
    struct End: Hashable, Comparable {
        var ip: IPAddress
        var port: UInt16
        static func < (x: End, y: End) -> Bool { x.ip != y.ip ? x.ip < y.ip : x.port < y.port }
    }
    var proto: UInt8
    var a: End
    var b: End
    var description: String { "\(FlowKey.protocolName(proto)) \(a.ip):\(a.port) <-> \(b.ip):\(b.port)" }
}

/// Per-direction counts: frames, and bytes as tshark shows them (exact below 10 000, else rounded with a unit).
struct TsharkCounts {
    var framesAB = 0, framesBA = 0
    var bytesAB = "", bytesBA = ""
}

enum Tshark {
    static let path = which("tshark")

    /// Parses the TCP and UDP conversation tables.
    static func conversations(_ file: String, reassemble: Bool = true) throws -> [Conversation: TsharkCounts] {
        var args = ["-r", file, "-q", "-z", "conv,tcp", "-z", "conv,udp"]
        if !reassemble { args = ["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"] + args }
        let r = try runProcess(path!, args)
        var proto: UInt8 = 0
        var out: [Conversation: TsharkCounts] = [:]
        for line in r.stdout.split(separator: "\n") {
            if line.contains("TCP Conversations") { proto = 6 }
            if line.contains("UDP Conversations") { proto = 17 }
            guard line.contains(" <-> ") else { continue }
            // "A:pa   <-> B:pb   framesBA n unit   framesAB n unit   total ..."
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 9, let a = end(parts[0]), let b = end(parts[2]) else { continue }
            var counts = TsharkCounts()
            counts.framesBA = Int(parts[3]) ?? -1
            counts.bytesBA = "\(parts[4]) \(parts[5])"
            counts.framesAB = Int(parts[6]) ?? -1
            counts.bytesAB = "\(parts[7]) \(parts[8])"
            var key = Conversation(proto: proto, a: a, b: b)
            if b < a {
                key = Conversation(proto: proto, a: b, b: a)
                swap(&counts.framesAB, &counts.framesBA)
                swap(&counts.bytesAB, &counts.bytesBA)
            }
            out[key] = counts
        }
        return out
    }

    static func end(_ s: Substring) -> Conversation.End? {
        guard let colon = s.lastIndex(of: ":"), let port = UInt16(s[s.index(after: colon)...]) else { return nil }
        let ip = String(s[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard let address = IPAddress(ip) else { return nil }
        return Conversation.End(ip: address, port: port)
    }

    /// True when `bytes` is what tshark's text shows: exact for "N bytes", else within the
    /// rounding of "N kB" / "N MB".
    static func matches(_ bytes: UInt64, _ shown: String) -> Bool {
        let parts = shown.split(separator: " ")
        guard parts.count == 2, let n = UInt64(parts[0].replacingOccurrences(of: ",", with: "")) else { return false }
        let unit: UInt64
        switch parts[1] {
        case "bytes": return bytes == n
        case "kB": unit = 1000
        case "MB": unit = 1_000_000
        case "GB": unit = 1_000_000_000
        default: return false
        }
        return bytes + unit > n * unit && bytes < (n + 1) * unit
    }
}

/// Our TCP and UDP flows summed by conversation (tshark does not split by VLAN or tunnel).
struct OurConversations {
    struct Counts { var framesAB = 0, framesBA = 0; var bytesAB: UInt64 = 0, bytesBA: UInt64 = 0 }
    var byConversation: [Conversation: Counts] = [:]

    init(_ flows: [FlowRecord]) {
        for f in flows where f.key.protocolNumber == 6 || f.key.protocolNumber == 17 {
            let a = Conversation.End(ip: f.key.a, port: f.key.portA), b = Conversation.End(ip: f.key.b, port: f.key.portB)
            var d0 = f.directions[0], d1 = f.directions[1]
            var key = Conversation(proto: f.key.protocolNumber, a: a, b: b)
            if b < a {
                key = Conversation(proto: f.key.protocolNumber, a: b, b: a)
                swap(&d0, &d1)
            }
            var c = byConversation[key] ?? Counts()
            c.framesAB += Int(d0.packets); c.framesBA += Int(d1.packets)
            c.bytesAB += d0.wireBytes; c.bytesBA += d1.wireBytes
            byConversation[key] = c
        }
    }
}

@Suite("TCP and UDP conversations match tshark on the well-formed corpus", .enabled(if: Tshark.path != nil, "needs tshark"))
@MainActor struct ConversationTests {
    /// Captures with IP fragments. PodTap counts every fragment in its flow (a later fragment
    /// gets the ports of the first one seen, or lands in a port-less flow of the same hosts),
    /// while tshark counts one frame per reassembled datagram. Asserted separately below.
    nonisolated static let fragmented: Set<String> = [
        "wellformed/zeek__ipv4_fragmented-2.pcap", "wellformed/zeek__ipv4_fragmented-3.pcap",
        "wellformed/zeek__ipv4_fragmented-4.pcap", "wellformed/zeek__ipv4_fragmented-syn.pcap",
        "wellformed/zeek__ipv6-fragmented-dns.pcap",
    ]

    @Test("Conversation counts, frames and bytes per direction equal tshark's", arguments: Corpus.wellformed.filter { !fragmented.contains($0) })
    func sameAsTshark(file: String) throws {
        let path = Corpus.path(file)
        let theirs = try Tshark.conversations(path)
        let analysis = FileAnalysis(path: path)
        #expect(analysis.error == nil && analysis.openError == nil)
        let ours = OurConversations(analysis.flows).byConversation
        #expect(Set(ours.keys) == Set(theirs.keys), "conversations differ: only ours \(Set(ours.keys).subtracting(theirs.keys)), only tshark \(Set(theirs.keys).subtracting(ours.keys))")
        for (key, t) in theirs {
            guard let o = ours[key] else { continue }
            #expect(o.framesAB == t.framesAB && o.framesBA == t.framesBA, "\(key): frames \(o.framesAB)/\(o.framesBA), tshark \(t.framesAB)/\(t.framesBA)")
            #expect(Tshark.matches(o.bytesAB, t.bytesAB) && Tshark.matches(o.bytesBA, t.bytesBA),
                    "\(key): bytes \(o.bytesAB)/\(o.bytesBA), tshark \(t.bytesAB)/\(t.bytesBA)")
        }
    }

    @Test("Fragments: every tshark conversation (reassembly off) is ours, with its later fragments added", arguments: Array(fragmented).sorted())
    func fragments(file: String) throws {
        let path = Corpus.path(file)
        let theirs = try Tshark.conversations(path, reassemble: false)
        let analysis = FileAnalysis(path: path)
        let ours = OurConversations(analysis.flows).byConversation
        for (key, t) in theirs {
            let o = try #require(ours[key], "\(key) missing")
            #expect(o.framesAB >= t.framesAB && o.framesBA >= t.framesBA)
        }
        // Every frame whose IP protocol is TCP or UDP is counted exactly once in a TCP/UDP flow.
        let r = try runProcess(Tshark.path!, ["-r", path, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
                                              "-T", "fields", "-e", "frame.len", "-Y",
                                              "ip.proto == 6 || ip.proto == 17 || ipv6.fraghdr.nxt == 6 || ipv6.fraghdr.nxt == 17 || tcp || udp"])
        #expect(r.status == 0, "\(r.stderr)")
        let lengths = r.stdout.split(separator: "\n").compactMap { UInt64($0) }
        let ourFrames = ours.values.reduce(0) { $0 + $1.framesAB + $1.framesBA }
        let ourBytes = ours.values.reduce(UInt64(0)) { $0 + $1.bytesAB + $1.bytesBA }
        #expect(ourFrames == lengths.count)
        #expect(ourBytes == lengths.reduce(0, +))
        #expect(ourFrames > theirs.values.reduce(0) { $0 + $1.framesAB + $1.framesBA }, "later fragments are added")
    }
}
