/// A borrowed GRE header (RFC 2784, RFC 2890 key and sequence; version 1 is PPTP's enhanced GRE, RFC 2637).
///
/// ```
/// |C| |K|S| reserved0 | ver |   protocol type   |
/// | checksum (C) | reserved1 | key (K) | sequence (S) | ack (ver 1, A bit) |
/// ```
public struct GREHeader: ~Escapable {
    @inlinable public static var minimumLength: Int { 4 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.minimumLength else { throw DecodeError(.truncated, .gre) }
        self.bytes = bytes
        guard version <= 1 else { throw DecodeError(.unsupported, .gre) }
        guard headerLength <= bytes.byteCount else { throw DecodeError(.truncated, .gre) }
    }
    @inlinable var flagWord: UInt16 { bytes.bigEndianUInt16(at: 0) }
    @inlinable public var hasChecksum: Bool { flagWord & 0x8000 != 0 }
    @inlinable public var hasKey: Bool { flagWord & 0x2000 != 0 }
    @inlinable public var hasSequence: Bool { flagWord & 0x1000 != 0 }
    /// Version 1 (PPTP) only: an acknowledgment number follows.
    @inlinable public var hasAcknowledgment: Bool { flagWord & 0x0080 != 0 }
    @inlinable public var version: UInt8 { UInt8(flagWord & 0x7) }
    @inlinable public var protocolType: UInt16 { bytes.bigEndianUInt16(at: 2) }
    @inlinable public var headerLength: Int {
        var n = 4
        if hasChecksum { n &+= 4 }
        if hasKey { n &+= 4 }
        if hasSequence { n &+= 4 }
        if version == 1 && hasAcknowledgment { n &+= 4 }
        return n
    }
    /// The key (RFC 2890), or for version 1 the payload length and call ID; 0 when absent.
    @inlinable public var key: UInt32 { hasKey ? bytes.bigEndianUInt32(at: hasChecksum ? 8 : 4) : 0 }
    @inlinable public var payload: RawSpan {
        @_lifetime(copy self) get { bytes.extracting(droppingFirst: headerLength) }
    }
}

/// A borrowed VXLAN header (RFC 7348), 8 bytes: flags (I bit), 24-bit VNI.
public struct VXLANHeader: ~Escapable {
    @inlinable public static var length: Int { 8 }
    /// IANA's port, and the port flannel and the Linux kernel use by default.
    @inlinable public static var ianaPort: UInt16 { 4789 }
    @inlinable public static var linuxDefaultPort: UInt16 { 8472 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.length else { throw DecodeError(.truncated, .vxlan) }
        self.bytes = bytes
        guard bytes.uint8(at: 0) & 0x08 != 0 else { throw DecodeError(.malformed, .vxlan) }
    }
    @inlinable public var networkIdentifier: UInt32 { bytes.bigEndianUInt32(at: 4) >> 8 }
    @inlinable public var payload: RawSpan {
        @_lifetime(copy self) get { bytes.extracting(droppingFirst: Self.length) }
    }
}

/// A borrowed Geneve header (RFC 8926): 8 bytes plus variable options, protocol type, 24-bit VNI.
public struct GeneveHeader: ~Escapable {
    @inlinable public static var minimumLength: Int { 8 }
    @inlinable public static var port: UInt16 { 6081 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.minimumLength else { throw DecodeError(.truncated, .geneve) }
        self.bytes = bytes
        guard version == 0 else { throw DecodeError(.unsupported, .geneve) }
        guard headerLength <= bytes.byteCount else { throw DecodeError(.truncated, .geneve) }
    }
    @inlinable public var version: UInt8 { bytes.uint8(at: 0) >> 6 }
    /// Options length in bytes.
    @inlinable public var optionsLength: Int { Int(bytes.uint8(at: 0) & 0x3F) &* 4 }
    @inlinable public var headerLength: Int { Self.minimumLength &+ optionsLength }
    @inlinable public var isControl: Bool { bytes.uint8(at: 1) & 0x80 != 0 }
    @inlinable public var protocolType: UInt16 { bytes.bigEndianUInt16(at: 2) }
    @inlinable public var networkIdentifier: UInt32 { bytes.bigEndianUInt32(at: 4) >> 8 }
    @inlinable public var payload: RawSpan {
        @_lifetime(copy self) get { bytes.extracting(droppingFirst: headerLength) }
    }
}
