/// TCP flag bits as they appear in byte 13 of the header (plus NS from byte 12 in bit 8).
public struct TCPFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x01) }
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x02) }
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x04) }
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x08) }
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x10) }
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x20) }
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x40) }
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x80) }
    @inlinable public static var ns: TCPFlags { TCPFlags(rawValue: 0x100) }

    /// tcpdump-style letters: `S`, `S.`, `F.`, `R`, `P.` …
    public var description: String {
        var s = ""
        if contains(.syn) { s += "S" }
        if contains(.fin) { s += "F" }
        if contains(.rst) { s += "R" }
        if contains(.psh) { s += "P" }
        if contains(.urg) { s += "U" }
        if contains(.ece) { s += "E" }
        if contains(.cwr) { s += "W" }
        if contains(.ack) { s += "." }
        return s.isEmpty ? "none" : s
    }
}

/// The TCP options PodTap reads (RFC 9293, 7323, 2018): a small value, filled without allocation.
public struct TCPOptions: Hashable, Sendable {
    /// Maximum segment size (SYN only), 0 when absent.
    public var maximumSegmentSize: UInt16 = 0
    /// Window scale shift (SYN only), nil when absent.
    public var windowScale: UInt8? = nil
    public var sackPermitted = false
    /// Number of SACK blocks carried, 0 when none.
    public var sackBlocks: UInt8 = 0
    public var hasTimestamps = false
    public var timestampValue: UInt32 = 0
    public var timestampEcho: UInt32 = 0
    /// True when the option list ran past the header (counted, fields before it kept).
    public var malformed = false
    @inlinable public init() {}
}

/// A borrowed TCP header (RFC 9293).
///
/// ```
/// | source port | destination port |
/// |        sequence number         |
/// |     acknowledgment number      |
/// |off|rsv|flags|     window       |
/// |  checksum   |  urgent pointer  |
/// |   options (data offset > 5)    |
/// ```
public struct TCPHeader: ~Escapable {
    @inlinable public static var minimumLength: Int { 20 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.minimumLength else { throw DecodeError(.truncated, .tcp) }
        self.bytes = bytes
        guard headerLength >= Self.minimumLength else { throw DecodeError(.malformed, .tcp) }
        guard headerLength <= bytes.byteCount else { throw DecodeError(.truncated, .tcp) }
    }

    @inlinable public var sourcePort: UInt16 { bytes.bigEndianUInt16(at: 0) }
    @inlinable public var destinationPort: UInt16 { bytes.bigEndianUInt16(at: 2) }
    @inlinable public var sequenceNumber: UInt32 { bytes.bigEndianUInt32(at: 4) }
    @inlinable public var acknowledgmentNumber: UInt32 { bytes.bigEndianUInt32(at: 8) }
    /// Data offset in bytes (20–60).
    @inlinable public var headerLength: Int { Int(bytes.uint8(at: 12) >> 4) &* 4 }
    @inlinable public var flags: TCPFlags {
        TCPFlags(rawValue: UInt16(bytes.uint8(at: 13)) | UInt16(bytes.uint8(at: 12) & 1) << 8)
    }
    /// The advertised window, unscaled.
    @inlinable public var window: UInt16 { bytes.bigEndianUInt16(at: 14) }
    @inlinable public var checksum: UInt16 { bytes.bigEndianUInt16(at: 16) }
    @inlinable public var urgentPointer: UInt16 { bytes.bigEndianUInt16(at: 18) }
    @inlinable public var payload: RawSpan {
        @_lifetime(copy self) get { bytes.extracting(droppingFirst: headerLength) }
    }

    /// Parses the options this header carries. Never traps: a length running past the
    /// header stops the walk and sets ``TCPOptions/malformed``.
    @inlinable public var options: TCPOptions {
        var o = TCPOptions()
        var i = Self.minimumLength
        let end = headerLength
        while i < end {
            let kind = bytes.uint8(at: i)
            if kind == 0 { break }  // end of option list
            if kind == 1 { i &+= 1; continue }  // no-op
            guard i &+ 1 < end else { o.malformed = true; break }
            let len = Int(bytes.uint8(at: i &+ 1))
            guard len >= 2, i &+ len <= end else { o.malformed = true; break }
            switch (kind, len) {
            case (2, 4): o.maximumSegmentSize = bytes.bigEndianUInt16(at: i &+ 2)
            case (3, 3): o.windowScale = min(bytes.uint8(at: i &+ 2), 14)
            case (4, 2): o.sackPermitted = true
            case (5, _): o.sackBlocks = UInt8(truncatingIfNeeded: (len &- 2) / 8)
            case (8, 10):
                o.hasTimestamps = true
                o.timestampValue = bytes.bigEndianUInt32(at: i &+ 2)
                o.timestampEcho = bytes.bigEndianUInt32(at: i &+ 6)
            default: break
            }
            i &+= len
        }
        return o
    }
}

/// A borrowed UDP header (RFC 768).
public struct UDPHeader: ~Escapable {
    @inlinable public static var length: Int { 8 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.length else { throw DecodeError(.truncated, .udp) }
        self.bytes = bytes
    }
    @inlinable public var sourcePort: UInt16 { bytes.bigEndianUInt16(at: 0) }
    @inlinable public var destinationPort: UInt16 { bytes.bigEndianUInt16(at: 2) }
    /// Header + payload length in bytes, as the header says (0 in IPv6 jumbograms).
    @inlinable public var length: UInt16 { bytes.bigEndianUInt16(at: 4) }
    @inlinable public var checksum: UInt16 { bytes.bigEndianUInt16(at: 6) }
    /// The payload as captured, cut to the header's length when that is plausible.
    @inlinable public var payload: RawSpan {
        @_lifetime(copy self) get {
            let declared = Int(length)
            let end = declared >= Self.length ? min(declared, bytes.byteCount) : bytes.byteCount
            return bytes.extracting(Self.length..<end)
        }
    }
}

/// A borrowed ICMP (RFC 792) or ICMPv6 (RFC 4443) header: type, code, checksum, 4 bytes of rest.
public struct ICMPHeader: ~Escapable {
    @inlinable public static var length: Int { 8 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan, layer: DecodeError.Layer = .icmp) throws(DecodeError) {
        guard bytes.byteCount >= Self.length else { throw DecodeError(.truncated, layer) }
        self.bytes = bytes
    }
    @inlinable public var type: UInt8 { bytes.uint8(at: 0) }
    @inlinable public var code: UInt8 { bytes.uint8(at: 1) }
    @inlinable public var checksum: UInt16 { bytes.bigEndianUInt16(at: 2) }
    /// Echo identifier (echo request/reply only).
    @inlinable public var identifier: UInt16 { bytes.bigEndianUInt16(at: 4) }
    @inlinable public var sequence: UInt16 { bytes.bigEndianUInt16(at: 6) }
    /// Bytes after the 8-byte header: for error messages, the quoted original datagram.
    @inlinable public var payload: RawSpan {
        @_lifetime(copy self) get { bytes.extracting(droppingFirst: Self.length) }
    }

    /// ICMPv4 error types that quote the offending datagram: unreachable 3, source quench 4,
    /// redirect 5, time exceeded 11, parameter problem 12.
    @inlinable public static func isIPv4Error(_ type: UInt8) -> Bool {
        type == 3 || type == 4 || type == 5 || type == 11 || type == 12
    }
    /// ICMPv6 error types (1–4) quote the offending packet.
    @inlinable public static func isIPv6Error(_ type: UInt8) -> Bool { type >= 1 && type <= 4 }
    /// Echo request/reply: 8/0 for ICMP, 128/129 for ICMPv6.
    @inlinable public static func isEcho(_ type: UInt8, v6: Bool) -> Bool {
        v6 ? (type == 128 || type == 129) : (type == 8 || type == 0)
    }
}

/// A borrowed SCTP common header (RFC 9260): ports and verification tag.
public struct SCTPHeader: ~Escapable {
    @inlinable public static var length: Int { 12 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.length else { throw DecodeError(.truncated, .sctp) }
        self.bytes = bytes
    }
    @inlinable public var sourcePort: UInt16 { bytes.bigEndianUInt16(at: 0) }
    @inlinable public var destinationPort: UInt16 { bytes.bigEndianUInt16(at: 2) }
    @inlinable public var verificationTag: UInt32 { bytes.bigEndianUInt32(at: 4) }
}
