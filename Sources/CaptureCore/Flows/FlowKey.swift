/// A bidirectional flow's identity: the normalised 5-tuple plus VLAN and tunnel context.
///
/// Endpoints are ordered so that (``a``, ``portA``) ≤ (``b``, ``portB``): both directions of a
/// conversation produce the same key. A flow inside a tunnel keys on the tunnel kind and VNI
/// (or GRE key), not on the outer addresses: flannel's VXLAN uses a different outer source port
/// per direction, and the pod-to-pod flow must stay one flow. 44 bytes, no references.
public struct FlowKey: Hashable, Sendable {
    public var a: IPAddress
    public var b: IPAddress
    public var portA: UInt16
    public var portB: UInt16
    public var protocolNumber: UInt8
    public var tunnel: TunnelKind
    public var vlanID: UInt16
    public var tunnelID: UInt32

    @inlinable
    public init(
        a: IPAddress, portA: UInt16, b: IPAddress, portB: UInt16, protocolNumber: UInt8,
        vlanID: UInt16 = 0, tunnel: TunnelKind = .none, tunnelID: UInt32 = 0
    ) {
        self.a = a
        self.b = b
        self.portA = portA
        self.portB = portB
        self.protocolNumber = protocolNumber
        self.tunnel = tunnel
        self.vlanID = vlanID
        self.tunnelID = tunnelID
    }

    /// The key of a packet from (`source`, `sourcePort`) to (`destination`, `destinationPort`),
    /// and whether that packet goes from ``a`` to ``b`` (direction 0) or back (direction 1).
    @inlinable
    public static func normalised(
        source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16,
        protocolNumber: UInt8, vlanID: UInt16, tunnel: TunnelKind, tunnelID: UInt32
    ) -> (key: FlowKey, direction: Int) {
        let forward = source < destination || (source == destination && sourcePort <= destinationPort)
        if forward {
            return (FlowKey(a: source, portA: sourcePort, b: destination, portB: destinationPort,
                            protocolNumber: protocolNumber, vlanID: vlanID, tunnel: tunnel, tunnelID: tunnelID), 0)
        }
        return (FlowKey(a: destination, portA: destinationPort, b: source, portB: sourcePort,
                        protocolNumber: protocolNumber, vlanID: vlanID, tunnel: tunnel, tunnelID: tunnelID), 1)
    }

    /// Field by field, the most distinguishing first (inlined; no memcmp call).
    @inlinable
    public static func == (x: FlowKey, y: FlowKey) -> Bool {
        x.a.low == y.a.low && x.b.low == y.b.low && x.portA == y.portA && x.portB == y.portB
            && x.a.high == y.a.high && x.b.high == y.b.high && x.protocolNumber == y.protocolNumber
            && x.vlanID == y.vlanID && x.tunnel == y.tunnel && x.tunnelID == y.tunnelID
    }

    /// A well-mixed 32-bit hash, never 0 (0 marks an empty slot).
    ///
    /// Always inlined: called out of line it took the key from memory, where it had just been
    /// stored field by field, and its 8-byte read over the ports, protocol and VLAN waited for
    /// those narrower stores to retire (the CPU cannot forward them): a third of the hash's
    /// time in a profile of lookahead-bench.
    @inlinable
    var tableHash: UInt32 {
        @inline(__always) get {
            @inline(__always) func mix(_ x: UInt64) -> UInt64 {
                var x = x
                x ^= x >> 33
                x &*= 0xff51_afd7_ed55_8ccd
                x ^= x >> 33
                x &*= 0xc4ce_b9fe_1a85_ec53
                x ^= x >> 33
                return x
            }
            let ports = UInt64(portA) | UInt64(portB) << 16 | UInt64(protocolNumber) << 32
                | UInt64(tunnel.rawValue) << 40 | UInt64(vlanID) << 48
            var h = mix(a.low &+ 0x9e37_79b9_7f4a_7c15 ^ b.low &* 0x2545_f491_4f6c_dd1d)
            h = mix(h ^ ports ^ UInt64(tunnelID) << 20)
            if a.high | b.high != 0 { h = mix(h ^ a.high ^ b.high &* 0x9e37_79b9_7f4a_7c15) }
            let folded = UInt32(truncatingIfNeeded: h ^ h >> 32)
            return folded == 0 ? 1 : folded
        }
    }
}

extension FlowKey: CustomStringConvertible {
    public var description: String {
        func end(_ ip: IPAddress, _ port: UInt16) -> String {
            ip.isIPv4 ? "\(ip):\(port)" : "[\(ip)]:\(port)"
        }
        var s = "\(FlowKey.protocolName(protocolNumber)) \(end(a, portA)) <-> \(end(b, portB))"
        if vlanID != 0 { s += " vlan \(vlanID)" }
        if tunnel != .none { s += " \(tunnel) \(tunnelID)" }
        return s
    }

    /// "tcp", "udp", "icmp" … or the number.
    public static func protocolName(_ p: UInt8) -> String {
        switch p {
        case IPProtocol.tcp: "tcp"
        case IPProtocol.udp: "udp"
        case IPProtocol.icmp: "icmp"
        case IPProtocol.icmpv6: "icmpv6"
        case IPProtocol.sctp: "sctp"
        case IPProtocol.gre: "gre"
        case IPProtocol.ipip: "ipip"
        case IPProtocol.ipv6: "ipv6"
        case IPProtocol.esp: "esp"
        default: "ip-\(p)"
        }
    }
}
