/// How a network layer was reached: the encapsulation just outside it.
public enum TunnelKind: UInt8, Sendable, Hashable, CustomStringConvertible {
    case none = 0, vxlan, geneve, gre, ipInIP

    public var description: String { name.description }

    /// The tunnel kind's name ("none", "vxlan", "geneve", "gre", "ipip"), without allocating.
    public var name: StaticString {
        switch self {
        case .none: "none"
        case .vxlan: "vxlan"
        case .geneve: "geneve"
        case .gre: "gre"
        case .ipInIP: "ipip"
        }
    }
}

/// One IP header and the transport header above it, as decoded from a frame: a plain value
/// of fields and offsets (no references into the frame), filled in place by ``PacketDecoder``.
public struct NetworkLayer: Sendable {
    /// 4 or 6.
    public var ipVersion: UInt8 = 0
    public var source = IPAddress.zero
    public var destination = IPAddress.zero
    /// The transport protocol after any IPv6 extension headers (6 TCP, 17 UDP, 1 ICMP …).
    public var protocolNumber: UInt8 = 0
    public var timeToLive: UInt8 = 0
    /// The length of this IP packet as its header claims (IPv4 total length, IPv6 40 + payload length).
    public var ipLength: UInt32 = 0
    /// Offset of the IP header from the start of the frame.
    public var ipOffset: Int32 = 0
    /// The 802.1Q VLAN ID of the Ethernet frame carrying this IP header (the tag nearest to it), 0 when untagged.
    public var vlanID: UInt16 = 0
    /// The outer (802.1ad service) VLAN ID under QinQ, 0 otherwise.
    public var outerVLANID: UInt16 = 0
    /// The encapsulation that carried this layer (``TunnelKind/none`` for the outermost one).
    public var tunnel = TunnelKind.none
    /// VXLAN / Geneve VNI or GRE key of that encapsulation.
    public var tunnelID: UInt32 = 0

    /// True for any fragment (first or later); ``isLaterFragment`` when it carries no transport header.
    public var isFragment = false
    public var isLaterFragment = false
    public var fragmentIdentification: UInt32 = 0

    /// True when ``sourcePort`` and ``destinationPort`` were read (TCP, UDP, SCTP; ICMP echo identifiers).
    public var hasPorts = false
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    /// Offset of the transport header from the start of the frame, -1 when not decoded.
    public var transportOffset: Int32 = -1

    // TCP
    public var tcpFlags = TCPFlags()
    public var sequenceNumber: UInt32 = 0
    public var acknowledgmentNumber: UInt32 = 0
    public var window: UInt16 = 0
    /// TCP options: parsed on SYN segments (see ``PacketDecoder/decodesTCPOptionsOnEverySegment``).
    public var tcpOptions = TCPOptions()
    /// Transport payload length as the IP header claims it (not cut by the snap length).
    public var payloadLength: UInt32 = 0

    // ICMP / ICMPv6
    public var icmpType: UInt8 = 0
    public var icmpCode: UInt8 = 0

    @inlinable public init() {}
}

/// The network layers of a packet, outermost first: four slots (``PacketDecoder/maximumNetworkLayers``),
/// of which ``DecodedPacket/layerCount`` are valid.
///
/// Stored as four fields rather than an array so that reading one layer of a borrowed packet
/// projects just that field: the hot path copies one layer, never the whole packet.
public struct NetworkLayers: Sendable {
    @usableFromInline var layer0 = NetworkLayer()
    @usableFromInline var layer1 = NetworkLayer()
    @usableFromInline var layer2 = NetworkLayer()
    @usableFromInline var layer3 = NetworkLayer()

    @inlinable public init() {}

    /// The address of layer `index` in the layers at `layers`, to read it in place rather than
    /// copy it out (the flow tracker's per-packet path). - Precondition: `0 <= index < 4`.
    @inlinable
    static func address(of index: Int, in layers: UnsafePointer<NetworkLayers>) -> UnsafePointer<NetworkLayer> {
        let offset: Int? = switch index {
        case 0: MemoryLayout<NetworkLayers>.offset(of: \.layer0)
        case 1: MemoryLayout<NetworkLayers>.offset(of: \.layer1)
        case 2: MemoryLayout<NetworkLayers>.offset(of: \.layer2)
        case 3: MemoryLayout<NetworkLayers>.offset(of: \.layer3)
        default: preconditionFailure("network layer index \(index) out of range 0..<4")
        }
        return unsafe (UnsafeRawPointer(layers) + offset!).assumingMemoryBound(to: NetworkLayer.self)
    }

    /// Layer `index` (0 is the outermost). - Precondition: `0 <= index < 4`.
    @inlinable public subscript(index: Int) -> NetworkLayer {
        @inline(__always) get {
            switch index {
            case 0: return layer0
            case 1: return layer1
            case 2: return layer2
            case 3: return layer3
            default: preconditionFailure("network layer index \(index) out of range 0..<4")
            }
        }
        @inline(__always) set {
            switch index {
            case 0: layer0 = newValue
            case 1: layer1 = newValue
            case 2: layer2 = newValue
            case 3: layer3 = newValue
            default: preconditionFailure("network layer index \(index) out of range 0..<4")
            }
        }
    }
}

/// The 5-tuple quoted inside an ICMP or ICMPv6 error: the packet that caused it.
public struct QuotedPacket: Sendable, Hashable {
    public var ipVersion: UInt8 = 0
    public var source = IPAddress.zero
    public var destination = IPAddress.zero
    public var protocolNumber: UInt8 = 0
    public var hasPorts = false
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    /// When the quoted packet is a tunnel packet (VXLAN, Geneve, GRE, IP in IP: an error
    /// about a node-to-node packet, such as a router's "fragmentation needed" or "packet too
    /// big") and the quote reaches into its inner packet: that packet, as the decoder reads
    /// it in a tunnel (tunnel kind and id, the inner frame's VLAN).
    public var inner: Inner? = nil
    @inlinable public init() {}

    /// The inner packet of a quoted tunnel packet.
    public struct Inner: Sendable, Hashable {
        public var tunnel = TunnelKind.none
        public var tunnelID: UInt32 = 0
        public var vlanID: UInt16 = 0
        public var ipVersion: UInt8 = 0
        public var source = IPAddress.zero
        public var destination = IPAddress.zero
        public var protocolNumber: UInt8 = 0
        /// Ports as the decoder keys the inner flow: TCP, UDP and SCTP ports, an echo's
        /// identifier, the ports an inner ICMP error quotes; 0 otherwise.
        public var sourcePort: UInt16 = 0
        public var destinationPort: UInt16 = 0
        @inlinable public init() {}
    }
}

/// Everything PodTap decodes from one frame. Reused across packets: ``PacketDecoder`` resets
/// and refills it, so decoding allocates nothing.
///
/// Layers run outermost first: a VXLAN frame has the node-to-node UDP layer at index 0 and
/// the pod-to-pod layer at index 1. ``stop`` tells why decoding ended before the innermost
/// layer's end, if it did; the layers before that point are valid.
public struct DecodedPacket: Sendable {
    public var linkType = LinkType.ethernet
    public var direction = PacketDirection.unknown
    /// The interface index a Linux cooked v2 header names, 0 otherwise.
    public var linkInterfaceIndex: UInt32 = 0
    /// The EtherType after tags at the outermost link layer, 0 when the link type has none.
    public var etherType: UInt16 = 0

    public var layerCount = 0
    public var layers = NetworkLayers()

    /// Why decoding stopped early; nil when every layer present was decoded.
    public var stop: DecodeError? = nil

    /// Set for ICMP / ICMPv6 errors: the quoted original packet (in the innermost layer).
    public var quoted: QuotedPacket? = nil
    /// Set while the decoder reads the packet an ICMP error quotes, so that an error quoted in
    /// there is not followed further.
    @usableFromInline var isQuote = false
    /// DNS header and first question, for the innermost layer's UDP/TCP payload.
    public var dns: DNSInfo? = nil
    /// TLS ClientHello fields, for the innermost layer's TCP payload.
    public var tls: TLSClientHelloInfo? = nil

    @inlinable public init() {}

    /// The innermost network layer; only valid when ``layerCount`` > 0.
    @inlinable public var innermost: NetworkLayer { layers[layerCount &- 1] }

    /// The address of layer `index` of the packet at `packet`, read in place. - Precondition: `0 <= index < 4`.
    @inlinable
    static func layer(_ index: Int, of packet: UnsafePointer<DecodedPacket>) -> UnsafePointer<NetworkLayer> {
        let layers = unsafe (UnsafeRawPointer(packet) + MemoryLayout<DecodedPacket>.offset(of: \.layers)!)
            .assumingMemoryBound(to: NetworkLayers.self)
        return unsafe NetworkLayers.address(of: index, in: layers)
    }
}
