/// What PodTap keeps of a DNS message (RFC 1035): a small value, no strings.
///
/// The query name stays in the frame; ``nameOffset`` locates it (from the start of the
/// frame) and ``nameHash`` identifies it case-insensitively, so a flow tracker interns the
/// text once per distinct name with ``DNSMessage/queryName(in:at:)``.
public struct DNSInfo: Hashable, Sendable {
    public var id: UInt16 = 0
    public var isResponse = false
    public var opcode: UInt8 = 0
    /// RCODE (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN …).
    public var responseCode: UInt8 = 0
    public var questionCount: UInt16 = 0
    public var answerCount: UInt16 = 0
    /// QTYPE of the first question (1 A, 28 AAAA, 33 SRV …), 0 without a question.
    public var queryType: UInt16 = 0
    /// Offset of the first question's name from the start of the DNS message's frame; -1 without one.
    public var nameOffset: Int32 = -1
    /// Offset of the DNS header from the start of the frame (for compression pointers).
    public var messageOffset: Int32 = 0
    /// FNV-1a of the lower-cased dotted name; 0 without a name.
    public var nameHash: UInt64 = 0
    /// Length of the dotted name text (without trailing dot).
    public var nameLength: UInt8 = 0
    @inlinable public init() {}
}

/// Parsing of DNS messages over UDP (and the first message of a TCP segment).
public enum DNSMessage {
    @inlinable public static var headerLength: Int { 12 }

    /// Parses the header and the first question of the message at `offset..<end` of `frame`.
    /// - Throws: ``DecodeError`` at layer `.dns` when the header or question runs past the data.
    @inlinable
    public static func parse(_ frame: RawSpan, from offset: Int, to end: Int) throws(DecodeError) -> DNSInfo {
        guard end &- offset >= headerLength else { throw DecodeError(.truncated, .dns) }
        var d = DNSInfo()
        d.messageOffset = Int32(truncatingIfNeeded: offset)
        d.id = frame.bigEndianUInt16(at: offset)
        let flags = frame.bigEndianUInt16(at: offset &+ 2)
        d.isResponse = flags & 0x8000 != 0
        d.opcode = UInt8((flags >> 11) & 0xF)
        d.responseCode = UInt8(flags & 0xF)
        d.questionCount = frame.bigEndianUInt16(at: offset &+ 4)
        d.answerCount = frame.bigEndianUInt16(at: offset &+ 6)
        guard d.questionCount > 0 else { return d }
        let nameStart = offset &+ headerLength
        let (afterName, hash, length) = try walkName(frame, message: offset, at: nameStart, end: end)
        guard afterName &+ 4 <= end else { throw DecodeError(.truncated, .dns) }
        d.nameOffset = Int32(truncatingIfNeeded: nameStart)
        d.nameHash = hash
        d.nameLength = length
        d.queryType = frame.bigEndianUInt16(at: afterName)
        return d
    }

    /// Walks a (possibly compressed) name; returns the offset after it in the original position,
    /// its case-insensitive hash and its dotted length. At most 255 bytes and 64 pointer hops.
    @inlinable
    static func walkName(_ frame: RawSpan, message: Int, at start: Int, end: Int) throws(DecodeError) -> (Int, UInt64, UInt8) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var textLength = 0
        var i = start
        var resume = -1
        var hops = 0
        while true {
            guard i < end else { throw DecodeError(.truncated, .dns) }
            let len = Int(frame.uint8(at: i))
            if len == 0 {
                if resume < 0 { resume = i &+ 1 }
                break
            }
            if len & 0xC0 == 0xC0 {
                guard i &+ 1 < end else { throw DecodeError(.truncated, .dns) }
                let target = message &+ Int(frame.bigEndianUInt16(at: i) & 0x3FFF)
                if resume < 0 { resume = i &+ 2 }
                hops &+= 1
                guard hops <= 64, target < end, target >= message else { throw DecodeError(.malformed, .dns) }
                i = target
                continue
            }
            guard len & 0xC0 == 0 else { throw DecodeError(.malformed, .dns) }
            guard i &+ 1 &+ len <= end else { throw DecodeError(.truncated, .dns) }
            if textLength > 0 {
                hash = (hash ^ 0x2E) &* 0x100_0000_01B3
                textLength &+= 1
            }
            for k in 0..<len {
                var c = frame.uint8(at: i &+ 1 &+ k)
                if c >= 0x41 && c <= 0x5A { c |= 0x20 }
                hash = (hash ^ UInt64(c)) &* 0x100_0000_01B3
            }
            textLength &+= len
            guard textLength <= 255 else { throw DecodeError(.malformed, .dns) }
            i &+= 1 &+ len
        }
        return (resume, textLength == 0 ? 0 : hash, UInt8(textLength))
    }

    /// The dotted, lower-cased text of the name at `info.nameOffset` (allocates; call once per new name).
    public static func queryName(in frame: RawSpan, info: DNSInfo) -> String? {
        guard info.nameOffset >= 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(Int(info.nameLength))
        var i = Int(info.nameOffset)
        let message = Int(info.messageOffset)
        let end = frame.byteCount
        var hops = 0
        while i < end {
            let len = Int(frame.uint8(at: i))
            if len == 0 { break }
            if len & 0xC0 == 0xC0 {
                guard i + 1 < end, hops < 64 else { return nil }
                hops += 1
                i = message + Int(frame.bigEndianUInt16(at: i) & 0x3FFF)
                continue
            }
            guard len & 0xC0 == 0, i + 1 + len <= end else { return nil }
            if !out.isEmpty { out.append(0x2E) }
            for k in 0..<len {
                var c = frame.uint8(at: i + 1 + k)
                if c >= 0x41 && c <= 0x5A { c |= 0x20 }
                out.append(c)
            }
            i += 1 + len
            if out.count > 255 { return nil }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
