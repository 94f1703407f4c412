/// What PodTap keeps of a TLS ClientHello (RFC 8446 §4.1.2): versions, SNI and the first ALPN
/// protocol as offsets into the frame plus hashes, so nothing is copied per packet.
public struct TLSClientHelloInfo: Hashable, Sendable {
    /// The record layer's version (0x0301 for most clients).
    public var recordVersion: UInt16 = 0
    /// `legacy_version` of the ClientHello (0x0303 for TLS 1.2 and 1.3).
    public var legacyVersion: UInt16 = 0
    /// The highest non-GREASE entry of `supported_versions`, 0 without that extension.
    public var maximumSupportedVersion: UInt16 = 0
    /// Offset of the first host name of `server_name` from the start of the frame; -1 without one.
    public var serverNameOffset: Int32 = -1
    public var serverNameLength: UInt16 = 0
    public var serverNameHash: UInt64 = 0
    /// Offset and length of the first ALPN protocol name; -1 without ALPN.
    public var alpnOffset: Int32 = -1
    public var alpnLength: UInt8 = 0
    public var alpnHash: UInt64 = 0
    /// True when the ClientHello continues past this segment (fields after the cut are unknown).
    public var truncated = false
    @inlinable public init() {}

    /// The version a client offers at most: `supported_versions` if present, else `legacy_version`.
    @inlinable public var offeredVersion: UInt16 { maximumSupportedVersion != 0 ? maximumSupportedVersion : legacyVersion }
}

/// Recognises a TLS ClientHello at the start of a TCP payload.
public enum TLSClientHello {
    /// Parses the record at `offset..<end` of `frame`.
    /// - Returns: nil when the payload is not a TLS handshake record starting a ClientHello.
    /// - Throws: ``DecodeError`` at layer `.tls` for a ClientHello whose lengths contradict each other.
    @inlinable
    public static func parse(_ frame: RawSpan, from offset: Int, to end: Int) throws(DecodeError) -> TLSClientHelloInfo? {
        // record: type 22, version 3.x, length; handshake: type 1, 24-bit length
        guard end &- offset >= 9, frame.uint8(at: offset) == 22, frame.uint8(at: offset &+ 1) == 3,
            frame.uint8(at: offset &+ 5) == 1
        else { return nil }
        var t = TLSClientHelloInfo()
        t.recordVersion = frame.bigEndianUInt16(at: offset &+ 1)
        let recordLength = Int(frame.bigEndianUInt16(at: offset &+ 3))
        let helloLength = Int(frame.bigEndianUInt32(at: offset &+ 5) & 0x00FF_FFFF)
        guard helloLength &+ 4 <= recordLength || recordLength == 16384 || helloLength > 16380 else {
            throw DecodeError(.malformed, .tls)
        }
        let helloEnd = offset &+ 9 &+ helloLength
        let limit = min(end, helloEnd)
        t.truncated = helloEnd > end
        var i = offset &+ 9
        guard i &+ 2 <= limit else { t.truncated = true; return t }
        t.legacyVersion = frame.bigEndianUInt16(at: i)
        i &+= 2 &+ 32  // version, random
        guard i < limit else { t.truncated = true; return t }
        i &+= 1 &+ Int(frame.uint8(at: i))  // session id
        guard i &+ 2 <= limit else { t.truncated = true; return t }
        i &+= 2 &+ Int(frame.bigEndianUInt16(at: i))  // cipher suites
        guard i < limit else { t.truncated = true; return t }
        i &+= 1 &+ Int(frame.uint8(at: i))  // compression methods
        guard i &+ 2 <= limit else {
            if i != helloEnd { t.truncated = true }
            return t
        }
        let extensionsEnd = i &+ 2 &+ Int(frame.bigEndianUInt16(at: i))
        guard extensionsEnd <= helloEnd else { throw DecodeError(.malformed, .tls) }
        i &+= 2
        let stop = min(extensionsEnd, limit)
        while i &+ 4 <= stop {
            let type = frame.bigEndianUInt16(at: i)
            let length = Int(frame.bigEndianUInt16(at: i &+ 2))
            let body = i &+ 4
            i = body &+ length
            guard i <= stop else { break }  // extension cut by the segment end
            switch type {
            case 0:  // server_name: list length, type 0 host_name, 2-byte length, name
                guard length >= 5, frame.uint8(at: body &+ 2) == 0 else { continue }
                let nameLength = Int(frame.bigEndianUInt16(at: body &+ 3))
                guard body &+ 5 &+ nameLength <= i, nameLength > 0 else { throw DecodeError(.malformed, .tls) }
                t.serverNameOffset = Int32(truncatingIfNeeded: body &+ 5)
                t.serverNameLength = UInt16(nameLength)
                t.serverNameHash = hash(frame, body &+ 5, nameLength)
            case 16:  // ALPN: list length, then 1-byte-length names
                guard length >= 3 else { continue }
                let first = Int(frame.uint8(at: body &+ 2))
                guard first > 0, body &+ 3 &+ first <= i else { throw DecodeError(.malformed, .tls) }
                t.alpnOffset = Int32(truncatingIfNeeded: body &+ 3)
                t.alpnLength = UInt8(first)
                t.alpnHash = hash(frame, body &+ 3, first)
            case 43:  // supported_versions: 1-byte list length, 2-byte versions
                guard length >= 1 else { continue }
                let listEnd = min(i, body &+ 1 &+ Int(frame.uint8(at: body)))
                var v = body &+ 1
                while v &+ 2 <= listEnd {
                    let version = frame.bigEndianUInt16(at: v)
                    let grease = version & 0x0F0F == 0x0A0A
                    if !grease && version > t.maximumSupportedVersion { t.maximumSupportedVersion = version }
                    v &+= 2
                }
            default: break
            }
        }
        if extensionsEnd > limit { t.truncated = true }
        return t
    }

    @inlinable static func hash(_ frame: RawSpan, _ start: Int, _ count: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for k in 0..<count {
            var c = frame.uint8(at: start &+ k)
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            h = (h ^ UInt64(c)) &* 0x100_0000_01B3
        }
        return h == 0 ? 1 : h
    }

    /// The text at `offset` of length `count` in `frame`, lower-cased (allocates; once per new name).
    public static func text(in frame: RawSpan, offset: Int32, length: Int) -> String? {
        let start = Int(offset)
        guard start >= 0, length > 0, start + length <= frame.byteCount else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(length)
        for k in 0..<length {
            var c = frame.uint8(at: start + k)
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            out.append(c)
        }
        return String(decoding: out, as: UTF8.self)
    }
}
