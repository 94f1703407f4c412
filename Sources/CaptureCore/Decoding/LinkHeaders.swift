/// EtherType values the decoder dispatches on. The corresponding C constants are `ETH_P_*`.
public enum EtherType {
    @inlinable public static var ipv4: UInt16 { 0x0800 }
    @inlinable public static var arp: UInt16 { 0x0806 }
    @inlinable public static var vlan: UInt16 { 0x8100 }      // 802.1Q
    @inlinable public static var qinq: UInt16 { 0x88A8 }      // 802.1ad
    @inlinable public static var qinqLegacy: UInt16 { 0x9100 }
    @inlinable public static var ipv6: UInt16 { 0x86DD }
    @inlinable public static var mplsUnicast: UInt16 { 0x8847 }
    @inlinable public static var mplsMulticast: UInt16 { 0x8848 }
    @inlinable public static var transparentEthernetBridging: UInt16 { 0x6558 }  // Ethernet inside GRE / Geneve
}

/// A borrowed Ethernet II header (IEEE 802.3), without tags.
///
/// ```
///  0                   6                  12     14
/// +-------------------+-------------------+------+
/// | destination MAC   | source MAC        | type |
/// +-------------------+-------------------+------+
/// ```
public struct EthernetHeader: ~Escapable {
    @inlinable public static var length: Int { 14 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.length else { throw DecodeError(.truncated, .ethernet) }
        self.bytes = bytes
    }

    /// Destination MAC in the low 48 bits.
    @inlinable public var destination: UInt64 {
        UInt64(bytes.bigEndianUInt32(at: 0)) << 16 | UInt64(bytes.bigEndianUInt16(at: 4))
    }
    /// Source MAC in the low 48 bits.
    @inlinable public var source: UInt64 {
        UInt64(bytes.bigEndianUInt32(at: 6)) << 16 | UInt64(bytes.bigEndianUInt16(at: 10))
    }
    @inlinable public var etherType: UInt16 { bytes.bigEndianUInt16(at: 12) }
    @inlinable public var payload: RawSpan {
        @_lifetime(copy self) get { bytes.extracting(droppingFirst: Self.length) }
    }
}

/// A borrowed 802.1Q / 802.1ad tag: TCI then the next EtherType.
public struct VLANTag: ~Escapable {
    @inlinable public static var length: Int { 4 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.length else { throw DecodeError(.truncated, .vlan) }
        self.bytes = bytes
    }
    @inlinable public var tagControl: UInt16 { bytes.bigEndianUInt16(at: 0) }
    /// The 12-bit VLAN identifier (0 = priority tag only).
    @inlinable public var vlanID: UInt16 { tagControl & 0x0FFF }
    @inlinable public var priority: UInt8 { UInt8(tagControl >> 13) }
    @inlinable public var dropEligible: Bool { tagControl & 0x1000 != 0 }
    @inlinable public var etherType: UInt16 { bytes.bigEndianUInt16(at: 2) }
}

/// A borrowed Linux cooked-capture v1 header (`LINKTYPE_LINUX_SLL`, 16 bytes).
///
/// ```
/// packet type (2) | ARPHRD type (2) | address length (2) | address (8) | protocol (2)
/// ```
public struct LinuxSLLHeader: ~Escapable {
    @inlinable public static var length: Int { 16 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.length else { throw DecodeError(.truncated, .linuxSLL) }
        self.bytes = bytes
    }
    /// `PACKET_HOST` 0, `PACKET_BROADCAST` 1, `PACKET_MULTICAST` 2, `PACKET_OTHERHOST` 3, `PACKET_OUTGOING` 4.
    @inlinable public var packetType: UInt16 { bytes.bigEndianUInt16(at: 0) }
    @inlinable public var hardwareType: UInt16 { bytes.bigEndianUInt16(at: 2) }
    @inlinable public var protocolType: UInt16 { bytes.bigEndianUInt16(at: 14) }
}

/// A borrowed Linux cooked-capture v2 header (`LINKTYPE_LINUX_SLL2`, 20 bytes).
///
/// ```
/// protocol (2) | reserved (2) | interface index (4) | ARPHRD (2) | packet type (1) | addr len (1) | address (8)
/// ```
public struct LinuxSLL2Header: ~Escapable {
    @inlinable public static var length: Int { 20 }
    @usableFromInline let bytes: RawSpan

    @inlinable @_lifetime(copy bytes)
    public init(validating bytes: RawSpan) throws(DecodeError) {
        guard bytes.byteCount >= Self.length else { throw DecodeError(.truncated, .linuxSLL2) }
        self.bytes = bytes
    }
    @inlinable public var protocolType: UInt16 { bytes.bigEndianUInt16(at: 0) }
    @inlinable public var interfaceIndex: UInt32 { bytes.bigEndianUInt32(at: 4) }
    @inlinable public var hardwareType: UInt16 { bytes.bigEndianUInt16(at: 8) }
    @inlinable public var packetType: UInt8 { bytes.uint8(at: 10) }
}
