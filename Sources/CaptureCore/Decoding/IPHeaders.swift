/// IP protocol numbers (IANA). The corresponding C constants are `IPPROTO_*`.
public enum IPProtocol {
    @inlinable public static var hopByHop: UInt8 { 0 }
    @inlinable public static var icmp: UInt8 { 1 }
    @inlinable public static var ipip: UInt8 { 4 }
    @inlinable public static var tcp: UInt8 { 6 }
    @inlinable public static var udp: UInt8 { 17 }
    @inlinable public static var ipv6: UInt8 { 41 }
    @inlinable public static var routing: UInt8 { 43 }
    @inlinable public static var fragment: UInt8 { 44 }
    @inlinable public static var gre: UInt8 { 47 }
    @inlinable public static var esp: UInt8 { 50 }
    @inlinable public static var authentication: UInt8 { 51 }
    @inlinable public static var icmpv6: UInt8 { 58 }
    @inlinable public static var noNextHeader: UInt8 { 59 }
    @inlinable public static var destinationOptions: UInt8 { 60 }
    @inlinable public static var sctp: UInt8 { 132 }
    @inlinable public static var mobility: UInt8 { 135 }
    @inlinable public static var hip: UInt8 { 139 }
    @inlinable public static var shim6: UInt8 { 140 }
}

/// A borrowed IPv4 header (RFC 791). Valid only while the frame's bytes are.
///
/// ```
///  0       4       8              16      19             31
/// |version| IHL   |   DSCP/ECN   |        total length    |
/// |        identification        |flags|  fragment offset |
/// |   TTL         |   protocol   |     header checksum    |
/// |                    source address                     |
/// |                  destination address                  |
/// |                options (IHL > 5)                      |
/// ```
public struct IPv4Header: ~Escapable {
    @inlinable public static var minimumLength: Int { 20 }
    @usableFromInline let bytes: RawSpan

    /// Checks every length the accessors use; never traps on hostile input.
    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.minimumLength else { throw DecodeError(.truncated, .ipv4) }
        self.bytes = bytes
        guard version == 4 else { throw DecodeError(.malformed, .ipv4) }
        guard headerLength >= Self.minimumLength else { throw DecodeError(.malformed, .ipv4) }
        guard headerLength <= bytes.byteCount else { throw DecodeError(.truncated, .ipv4) }
        guard Int(totalLength) >= headerLength else { throw DecodeError(.malformed, .ipv4) }
    }

    @inlinable public var version: UInt8 { bytes.uint8(at: 0) >> 4 }
    /// Header length in bytes (IHL × 4), 20–60.
    @inlinable public var headerLength: Int { Int(bytes.uint8(at: 0) & 0x0F) &* 4 }
    @inlinable public var differentiatedServices: UInt8 { bytes.uint8(at: 1) }
    /// Total length of the datagram (header + payload) in bytes, as the header says.
    @inlinable public var totalLength: UInt16 { bytes.bigEndianUInt16(at: 2) }
    @inlinable public var identification: UInt16 { bytes.bigEndianUInt16(at: 4) }
    @inlinable public var dontFragment: Bool { bytes.uint8(at: 6) & 0x40 != 0 }
    @inlinable public var moreFragments: Bool { bytes.uint8(at: 6) & 0x20 != 0 }
    /// Fragment offset in bytes.
    @inlinable public var fragmentOffset: Int { Int(bytes.bigEndianUInt16(at: 6) & 0x1FFF) &* 8 }
    @inlinable public var timeToLive: UInt8 { bytes.uint8(at: 8) }
    @inlinable public var protocolNumber: UInt8 { bytes.uint8(at: 9) }
    @inlinable public var headerChecksum: UInt16 { bytes.bigEndianUInt16(at: 10) }
    /// Source address, host-order value of the network-order bytes.
    @inlinable public var sourceAddress: UInt32 { bytes.bigEndianUInt32(at: 12) }
    @inlinable public var destinationAddress: UInt32 { bytes.bigEndianUInt32(at: 16) }
    /// Options bytes (empty when IHL is 5).
    @inlinable public var options: RawSpan {
        @_lifetime(copy self) get { bytes.extracting(Self.minimumLength..<headerLength) }
    }
    /// The payload as captured, cut to the total length (Ethernet padding removed).
    @inlinable public var payload: RawSpan {
        @_lifetime(copy self) get {
            let end = min(bytes.byteCount, max(Int(totalLength), headerLength))
            return bytes.extracting(headerLength..<end)
        }
    }
}

/// A borrowed IPv6 fixed header (RFC 8200), 40 bytes.
///
/// ```
/// |version| traffic class |           flow label              |
/// |        payload length        | next header |  hop limit   |
/// |                source address (16 bytes)                  |
/// |              destination address (16 bytes)               |
/// ```
public struct IPv6Header: ~Escapable {
    @inlinable public static var length: Int { 40 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.length else { throw DecodeError(.truncated, .ipv6) }
        self.bytes = bytes
        guard version == 6 else { throw DecodeError(.malformed, .ipv6) }
    }

    @inlinable public var version: UInt8 { bytes.uint8(at: 0) >> 4 }
    @inlinable public var trafficClass: UInt8 { UInt8(truncatingIfNeeded: bytes.bigEndianUInt16(at: 0) >> 4) }
    @inlinable public var flowLabel: UInt32 { bytes.bigEndianUInt32(at: 0) & 0x000F_FFFF }
    /// Bytes after the fixed header, extension headers included (0 with a jumbogram).
    @inlinable public var payloadLength: UInt16 { bytes.bigEndianUInt16(at: 4) }
    @inlinable public var nextHeader: UInt8 { bytes.uint8(at: 6) }
    @inlinable public var hopLimit: UInt8 { bytes.uint8(at: 7) }
    @inlinable public var sourceAddress: IPAddress {
        IPAddress(high: bytes.bigEndianUInt64(at: 8), low: bytes.bigEndianUInt64(at: 16))
    }
    @inlinable public var destinationAddress: IPAddress {
        IPAddress(high: bytes.bigEndianUInt64(at: 24), low: bytes.bigEndianUInt64(at: 32))
    }
    /// Everything after the fixed header as captured, cut to the payload length.
    @inlinable public var payload: RawSpan {
        @_lifetime(copy self) get {
            let end = payloadLength == 0 ? bytes.byteCount : min(bytes.byteCount, Self.length &+ Int(payloadLength))
            return bytes.extracting(Self.length..<end)
        }
    }
}

/// A borrowed IPv6 extension header: Hop-by-Hop, Routing, Destination Options (RFC 8200 §4),
/// Fragment (8 bytes), Authentication (RFC 4302, length in 4-byte units), Mobility, HIP, Shim6.
public struct IPv6ExtensionHeader: ~Escapable {
    @usableFromInline let bytes: RawSpan
    public let headerType: UInt8

    /// True for the next-header values that are extension headers PodTap walks over.
    @inlinable public static func isExtension(_ next: UInt8) -> Bool {
        switch next {
        case IPProtocol.hopByHop, IPProtocol.routing, IPProtocol.fragment, IPProtocol.destinationOptions,
            IPProtocol.authentication, IPProtocol.mobility, IPProtocol.hip, IPProtocol.shim6:
            true
        default: false
        }
    }

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan, type: UInt8) throws(DecodeError) {
        guard bytes.byteCount >= 8 else { throw DecodeError(.truncated, .ipv6Extension) }
        self.bytes = bytes
        self.headerType = type
        guard length <= bytes.byteCount else { throw DecodeError(.truncated, .ipv6Extension) }
    }

    @inlinable public var nextHeader: UInt8 { bytes.uint8(at: 0) }
    /// Length of this header in bytes.
    @inlinable public var length: Int {
        switch headerType {
        case IPProtocol.fragment: 8
        case IPProtocol.authentication: (Int(bytes.uint8(at: 1)) &+ 2) &* 4
        default: (Int(bytes.uint8(at: 1)) &+ 1) &* 8
        }
    }
    /// Fragment header: offset in bytes.
    @inlinable public var fragmentOffset: Int { Int(bytes.bigEndianUInt16(at: 2) & 0xFFF8) }
    /// Fragment header: more fragments follow.
    @inlinable public var moreFragments: Bool { bytes.uint8(at: 3) & 1 != 0 }
    /// Fragment header: identification.
    @inlinable public var fragmentIdentification: UInt32 { bytes.bigEndianUInt32(at: 4) }
    /// Routing header: routing type (4 = segment routing) and segments left.
    @inlinable public var routingType: UInt8 { bytes.uint8(at: 2) }
    @inlinable public var segmentsLeft: UInt8 { bytes.uint8(at: 3) }

    /// Routing header: the packet's final destination, for type 0 (RFC 2460, last address),
    /// type 2 (RFC 6275, home address) and type 4 (RFC 8754 segment routing, segment 0).
    /// Nil for other types or when no address is present.
    @inlinable public var finalDestination: IPAddress? {
        guard headerType == IPProtocol.routing else { return nil }
        let addresses = (length &- 8) / 16
        guard addresses > 0 else { return nil }
        let at: Int
        switch routingType {
        case 0, 2: at = 8 &+ (addresses &- 1) &* 16
        case 4: at = 8
        default: return nil
        }
        return IPAddress(high: bytes.bigEndianUInt64(at: at), low: bytes.bigEndianUInt64(at: at &+ 8))
    }
}
