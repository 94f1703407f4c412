/// Why decoding stopped, and at which layer: "stopped at layer X because Y".
///
/// A trivial value, thrown with typed throws (`throws(DecodeError)`), so reporting a
/// malformed packet allocates nothing. ``DecodeStatistics`` counts them per pair.
public struct DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: UInt8, CaseIterable, Sendable, CustomStringConvertible {
        /// Fewer bytes were captured than the header needs (snap length, a cut file).
        case truncated
        /// A field contradicts the format (a header length below the minimum, a length past the packet).
        case malformed
        /// Well-formed but not decoded (an unknown EtherType or link type, a protocol PodTap does not parse).
        case unsupported
        /// More nested encapsulations than ``PacketDecoder/maximumNetworkLayers``.
        case tooDeep

        public var description: String {
            switch self {
            case .truncated: "truncated"
            case .malformed: "malformed"
            case .unsupported: "unsupported"
            case .tooDeep: "too-deep"
            }
        }
    }

    public enum Layer: UInt8, CaseIterable, Sendable, CustomStringConvertible {
        case link, ethernet, vlan, linuxSLL, linuxSLL2, null, ipv4, ipv6, ipv6Extension
        case tcp, udp, icmp, icmpv6, sctp, gre, vxlan, geneve, dns, tls

        public var description: String {
            switch self {
            case .link: "link"
            case .ethernet: "ethernet"
            case .vlan: "vlan"
            case .linuxSLL: "sll"
            case .linuxSLL2: "sll2"
            case .null: "null"
            case .ipv4: "ipv4"
            case .ipv6: "ipv6"
            case .ipv6Extension: "ipv6-ext"
            case .tcp: "tcp"
            case .udp: "udp"
            case .icmp: "icmp"
            case .icmpv6: "icmpv6"
            case .sctp: "sctp"
            case .gre: "gre"
            case .vxlan: "vxlan"
            case .geneve: "geneve"
            case .dns: "dns"
            case .tls: "tls"
            }
        }
    }

    public var reason: Reason
    public var layer: Layer

    @inlinable public init(_ reason: Reason, _ layer: Layer) {
        self.reason = reason
        self.layer = layer
    }

    public var description: String { "stopped at \(layer): \(reason)" }
}

/// Counts of decode stops by layer and reason. Fixed-size; incrementing allocates nothing.
public struct DecodeStatistics: Sendable, Equatable {
    @usableFromInline static let reasons = DecodeError.Reason.allCases.count
    @usableFromInline var counts: [UInt64]

    public init() {
        counts = Array(repeating: 0, count: DecodeError.Layer.allCases.count * Self.reasons)
    }

    @inlinable public mutating func record(_ error: DecodeError) {
        counts[Int(error.layer.rawValue) &* Self.reasons &+ Int(error.reason.rawValue)] &+= 1
    }

    @inlinable public subscript(layer: DecodeError.Layer, reason: DecodeError.Reason) -> UInt64 {
        counts[Int(layer.rawValue) &* Self.reasons &+ Int(reason.rawValue)]
    }

    /// Every non-zero (error, count), in layer order.
    public var nonZero: [(error: DecodeError, count: UInt64)] {
        var out: [(error: DecodeError, count: UInt64)] = []
        for layer in DecodeError.Layer.allCases {
            for reason in DecodeError.Reason.allCases where self[layer, reason] > 0 {
                out.append((DecodeError(reason, layer), self[layer, reason]))
            }
        }
        return out
    }

    public var total: UInt64 { counts.reduce(0, &+) }

    public mutating func add(_ other: DecodeStatistics) {
        for i in counts.indices { counts[i] &+= other.counts[i] }
    }
}
