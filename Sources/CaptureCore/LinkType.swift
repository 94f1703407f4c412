/// A link-layer header type, as numbered by tcpdump.org's LINKTYPE_ registry.
///
/// Capture files store it per file (classic pcap) or per interface (pcapng). Only the low
/// 16 bits name the type; the upper bits of a classic pcap header carry FCS information
/// and are masked off by ``init(pcapHeaderField:)``, as libpcap and tshark do.
public struct LinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The link type from a classic pcap header's link-type field (low 16 bits).
    @inlinable public init(pcapHeaderField value: UInt32) { self.rawValue = value & 0xFFFF }

    /// BSD loopback / null: a 4-byte host-order address family. The corresponding C constant is `LINKTYPE_NULL`.
    @inlinable public static var null: LinkType { LinkType(rawValue: 0) }
    /// Ethernet II, with optional 802.1Q / 802.1ad tags. `LINKTYPE_ETHERNET`.
    @inlinable public static var ethernet: LinkType { LinkType(rawValue: 1) }
    /// Raw IP, version from the first nibble. `LINKTYPE_RAW` (DLT 12/14 on some systems map here too).
    @inlinable public static var raw: LinkType { LinkType(rawValue: 101) }
    /// OpenBSD loopback: like ``null`` but network byte order. `LINKTYPE_LOOP`.
    @inlinable public static var loop: LinkType { LinkType(rawValue: 108) }
    /// Linux cooked capture v1 (16-byte header). `LINKTYPE_LINUX_SLL`.
    @inlinable public static var linuxSLL: LinkType { LinkType(rawValue: 113) }
    /// Raw IPv4. `LINKTYPE_IPV4`.
    @inlinable public static var ipv4: LinkType { LinkType(rawValue: 228) }
    /// Raw IPv6. `LINKTYPE_IPV6`.
    @inlinable public static var ipv6: LinkType { LinkType(rawValue: 229) }
    /// Linux cooked capture v2 (20-byte header, carries the interface index). `LINKTYPE_LINUX_SLL2`.
    @inlinable public static var linuxSLL2: LinkType { LinkType(rawValue: 276) }

    public var description: String {
        switch self {
        case .null: "NULL"
        case .ethernet: "EN10MB"
        case .raw: "RAW"
        case .loop: "LOOP"
        case .linuxSLL: "LINUX_SLL"
        case .ipv4: "IPV4"
        case .ipv6: "IPV6"
        case .linuxSLL2: "LINUX_SLL2"
        default: "LINKTYPE(\(rawValue))"
        }
    }
}
