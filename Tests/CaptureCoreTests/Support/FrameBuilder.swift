import CaptureCore

/// Builds frames byte by byte for decoder and tracker tests: each layer is written the way
/// the RFC lays it out, lengths and checksums filled in, so a test states the fields it
/// expects and the decoder has to find them.
struct FrameBuilder {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(v & 0xFF)] }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(v & 0xFFFF)) }
    mutating func put16(_ v: UInt16, at i: Int) { bytes[i] = UInt8(v >> 8); bytes[i + 1] = UInt8(v & 0xFF) }

    static func ipv4(_ s: String) -> UInt32 { IPAddress(s)!.ipv4Value }

    mutating func ethernet(type: UInt16, vlans: [UInt16] = [], qinq: Bool = false) {
        bytes += [0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x02, 0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x03]
        for (i, v) in vlans.enumerated() {
            u16(i == 0 && qinq ? 0x88A8 : 0x8100)
            u16(v)
        }
        u16(type)
    }

    /// An IPv4 header; returns its offset so `finishIPv4` can fill the lengths.
    mutating func ipv4(_ src: String, _ dst: String, proto: UInt8, id: UInt16 = 1, fragmentOffset: Int = 0,
                       moreFragments: Bool = false, options: [UInt8] = []) -> Int {
        let start = bytes.count
        u8(0x40 | UInt8(5 + options.count / 4))
        u8(0)
        u16(0)  // total length, filled later
        u16(id)
        u16((moreFragments ? 0x2000 : 0) | UInt16(fragmentOffset / 8))
        u8(64)
        u8(proto)
        u16(0)
        u32(Self.ipv4(src))
        u32(Self.ipv4(dst))
        bytes += options
        return start
    }

    mutating func finishIPv4(at start: Int, totalLength: Int? = nil) {
        put16(UInt16(totalLength ?? (bytes.count - start)), at: start + 2)
        var sum: UInt32 = 0
        let ihl = Int(bytes[start] & 0x0F) * 4
        for i in stride(from: start, to: start + ihl, by: 2) where i != start + 10 {
            sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        put16(~UInt16(sum), at: start + 10)
    }

    mutating func ipv6(_ src: String, _ dst: String, next: UInt8) -> Int {
        let start = bytes.count
        u32(0x6000_0000)
        u16(0)
        u8(next)
        u8(64)
        for a in [IPAddress(src)!, IPAddress(dst)!] {
            for shift in stride(from: 56, through: 0, by: -8) { u8(UInt8(truncatingIfNeeded: a.high >> UInt64(shift))) }
            for shift in stride(from: 56, through: 0, by: -8) { u8(UInt8(truncatingIfNeeded: a.low >> UInt64(shift))) }
        }
        return start
    }

    mutating func finishIPv6(at start: Int) { put16(UInt16(bytes.count - start - 40), at: start + 4) }

    mutating func tcp(_ sport: UInt16, _ dport: UInt16, seq: UInt32, ack: UInt32 = 0, flags: TCPFlags,
                      window: UInt16 = 65535, options: [UInt8] = [], payload: [UInt8] = []) {
        u16(sport)
        u16(dport)
        u32(seq)
        u32(ack)
        u8(UInt8((20 + options.count) / 4) << 4)
        u8(UInt8(flags.rawValue & 0xFF))
        u16(window)
        u16(0)
        u16(0)
        bytes += options
        bytes += payload
    }

    mutating func udp(_ sport: UInt16, _ dport: UInt16, payload: [UInt8]) {
        u16(sport)
        u16(dport)
        u16(UInt16(8 + payload.count))
        u16(0)
        bytes += payload
    }

    /// A whole Ethernet/IPv4/TCP frame.
    static func tcp4(_ src: String, _ sport: UInt16, _ dst: String, _ dport: UInt16, seq: UInt32, ack: UInt32 = 0,
                     flags: TCPFlags, window: UInt16 = 65535, options: [UInt8] = [], payload: [UInt8] = [],
                     vlans: [UInt16] = []) -> [UInt8] {
        var b = FrameBuilder()
        b.ethernet(type: 0x0800, vlans: vlans)
        let ip = b.ipv4(src, dst, proto: 6)
        b.tcp(sport, dport, seq: seq, ack: ack, flags: flags, window: window, options: options, payload: payload)
        b.finishIPv4(at: ip)
        return b.bytes
    }

    static func udp4(_ src: String, _ sport: UInt16, _ dst: String, _ dport: UInt16, payload: [UInt8]) -> [UInt8] {
        var b = FrameBuilder()
        b.ethernet(type: 0x0800)
        let ip = b.ipv4(src, dst, proto: 17)
        b.udp(sport, dport, payload: payload)
        b.finishIPv4(at: ip)
        return b.bytes
    }

    /// A DNS message with one question.
    static func dns(id: UInt16, response: Bool, name: String, type: UInt16, rcode: UInt8 = 0, answers: UInt16 = 0) -> [UInt8] {
        var b = FrameBuilder()
        b.u16(id)
        b.u16((response ? 0x8180 : 0x0100) | UInt16(rcode))
        b.u16(1)
        b.u16(answers)
        b.u16(0)
        b.u16(0)
        for label in name.split(separator: ".") {
            b.u8(UInt8(label.utf8.count))
            b.bytes += Array(label.utf8)
        }
        b.u8(0)
        b.u16(type)
        b.u16(1)
        return b.bytes
    }

    /// A TLS record holding a ClientHello with SNI, ALPN and supported_versions.
    static func clientHello(sni: String, alpn: String, versions: [UInt16]) -> [UInt8] {
        var ext = FrameBuilder()
        // server_name
        let name = Array(sni.utf8)
        ext.u16(0); ext.u16(UInt16(name.count + 5)); ext.u16(UInt16(name.count + 3)); ext.u8(0)
        ext.u16(UInt16(name.count)); ext.bytes += name
        // ALPN
        let proto = Array(alpn.utf8)
        ext.u16(16); ext.u16(UInt16(proto.count + 3)); ext.u16(UInt16(proto.count + 1)); ext.u8(UInt8(proto.count))
        ext.bytes += proto
        // supported_versions
        ext.u16(43); ext.u16(UInt16(1 + versions.count * 2)); ext.u8(UInt8(versions.count * 2))
        for v in versions { ext.u16(v) }
        var hello = FrameBuilder()
        hello.u16(0x0303)
        hello.bytes += [UInt8](repeating: 7, count: 32)  // random
        hello.u8(0)  // session id
        hello.u16(2); hello.u16(0x1301)  // cipher suites
        hello.u8(1); hello.u8(0)  // compression
        hello.u16(UInt16(ext.bytes.count)); hello.bytes += ext.bytes
        var record = FrameBuilder()
        record.u8(22); record.u16(0x0301); record.u16(UInt16(hello.bytes.count + 4))
        record.u8(1); record.u8(0); record.u16(UInt16(hello.bytes.count))
        record.bytes += hello.bytes
        return record.bytes
    }
}

extension DecodedPacket {
    /// Decodes `frame` with a default decoder.
    static func decoding(_ frame: [UInt8], linkType: LinkType = .ethernet, decoder: PacketDecoder = PacketDecoder()) -> DecodedPacket {
        var p = DecodedPacket()
        unsafe decoder.decode(frame.span.bytes, linkType: linkType, into: &p)
        return p
    }
}
