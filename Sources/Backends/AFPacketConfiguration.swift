// What an AFPacketSource opens: where to capture, the TPACKET_V3 ring's geometry, filter,
// promiscuous mode and fanout.
public import CaptureCore

/// How packets are spread over the members of a fanout group.
public enum AFPacketFanoutMode: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// By PodTap's symmetric hash of the innermost flow, which a classic BPF program computes
    /// in the kernel (`PACKET_FANOUT_CBPF`, see `FlowFanoutProgram`): addresses and ports of
    /// IPv4 and IPv6 packets, and of the inner IPv4 or IPv6 packet of VXLAN (UDP 4789 and
    /// flannel's 8472, or the ports in ``AFPacketFanout/vxlanPorts``), Geneve (6081), GRE and IP
    /// in IP (Calico's IPIP mode), over IPv4 or IPv6.
    /// Both directions of a flow reach the same member, also for flows inside those tunnels,
    /// whose outer source port differs per direction (it is a hash each sending node makes);
    /// ``hash`` splits those. Flows
    /// between the same two nodes spread over the members like any others. UDP flows whose
    /// fragments the kernel does not reassemble first (IPv6, tunnelled, IPv4 without
    /// ``AFPacketFanout/defragments``) go by addresses only, since a later fragment has no
    /// ports. The default.
    case flow
    /// By the kernel's symmetric hash of the outermost flow (addresses, ports), so both
    /// directions of a flow reach the same member, except flows inside tunnels whose outer
    /// ports differ per direction (flannel's VXLAN). The corresponding C constant is
    /// `PACKET_FANOUT_HASH`.
    case hash
    /// By the CPU the packet arrived on (`PACKET_FANOUT_CPU`).
    case cpu
    /// Round robin (`PACKET_FANOUT_LB`).
    case loadBalance

    var kernelValue: UInt32 {
        switch self {
        case .hash: 0
        case .loadBalance: 1
        case .cpu: 2
        case .flow: 6  // PACKET_FANOUT_CBPF
        }
    }

    public var description: String {
        switch self {
        case .flow: "flow"
        case .hash: "hash"
        case .cpu: "cpu"
        case .loadBalance: "lb"
        }
    }
}

/// Membership in a `PACKET_FANOUT` group: sockets bound to the same interface in the same
/// network namespace with the same group id and settings share the packets.
public struct AFPacketFanout: Sendable, Hashable {
    /// The group id, unique per network namespace. `nil` lets the kernel pick an id no other
    /// group in the namespace uses (`PACKET_FANOUT_FLAG_UNIQUEID`); read it back from
    /// ``AFPacketSource/fanoutGroupID`` to add more members.
    public var groupID: UInt16?
    public var mode: AFPacketFanoutMode
    /// Have the kernel reassemble IPv4 datagrams before it chooses a member
    /// (`PACKET_FANOUT_FLAG_DEFRAG`), so the whole datagram, ports included, reaches the
    /// member that gets its flow. The member then sees each fragmented datagram once,
    /// reassembled (one packet, possibly larger than the link's MTU), not its fragments as
    /// they crossed the wire; without the flag it sees the fragments, and ``AFPacketFanoutMode/flow``
    /// spreads IPv4 UDP by addresses only, as it does IPv6 UDP, whose fragments the kernel
    /// does not reassemble here.
    public var defragments: Bool
    /// UDP destination ports that ``AFPacketFanoutMode/flow`` unwraps as VXLAN (4789 and
    /// flannel's 8472 by default; 0 is ignored) and the one it unwraps as Geneve (6081; 0: none).
    /// Give it the ports the decoder uses (``useTunnelPorts(of:)``): the outer source port of
    /// a tunnel packet differs per direction, so a flow inside a tunnel on a port the program
    /// does not know is hashed by its outer ports, and its two directions can reach different
    /// members.
    public var vxlanPorts: [UInt16]
    public var genevePort: UInt16

    public init(groupID: UInt16? = nil, mode: AFPacketFanoutMode = .flow, defragments: Bool = true,
                vxlanPorts: [UInt16] = [VXLANHeader.ianaPort, VXLANHeader.linuxDefaultPort],
                genevePort: UInt16 = GeneveHeader.port) {
        self.groupID = groupID
        self.mode = mode
        self.defragments = defragments
        self.vxlanPorts = vxlanPorts
        self.genevePort = genevePort
    }

    /// Unwraps VXLAN and Geneve on the ports `decoder` decodes them on.
    public mutating func useTunnelPorts(of decoder: PacketDecoder) {
        vxlanPorts = [decoder.vxlanPorts.0, decoder.vxlanPorts.1]
        genevePort = decoder.genevePort
    }

    /// The `PACKET_FANOUT` option value: id in the low 16 bits, mode and flags above.
    var optionValue: UInt32 {
        var typeFlags = mode.kernelValue
        if defragments { typeFlags |= 0x8000 }  // PACKET_FANOUT_FLAG_DEFRAG
        if groupID == nil { typeFlags |= 0x2000 }  // PACKET_FANOUT_FLAG_UNIQUEID (with id 0)
        return UInt32(groupID ?? 0) | typeFlags << 16
    }
}

/// Everything an ``AFPacketSource`` needs to open: the interface (and network namespace),
/// the memory-mapped TPACKET_V3 ring, the filter, promiscuous mode and fanout.
///
/// The ring holds ``blockCount`` blocks of ``blockSize`` bytes. The kernel fills a block with
/// as many packets as fit, then hands it to user space when it is full or when
/// ``blockRetireTimeoutMilliseconds`` passed since its first packet; the source gives the block
/// back after the batch callback. Defaults: 32 blocks of 1 MiB, 2048-byte frames, 20 ms.
public struct AFPacketConfiguration: Sendable, Hashable {
    /// The interface to capture on; `nil` captures every interface of the namespace.
    public var interface: String?
    /// A network namespace to capture in: an `ip netns` name, `/run/netns/NAME` or
    /// `/proc/PID/ns/net`. `nil` captures in the caller's namespace. The socket is created
    /// inside it (like `nsenter -t PID -n tcpdump`), so a pod's own `eth0` can be captured
    /// without anything running in the pod.
    public var namespacePath: String?
    /// Bytes per ring block; a multiple of the page size (4096) between 4 KiB and 1 GiB.
    public var blockSize: Int = 1 << 20
    /// Blocks in the ring, at least 1.
    public var blockCount: Int = 32
    /// The ring's nominal frame size: a multiple of 16, at least 64 and at most ``blockSize``.
    /// TPACKET_V3 packs packets of any length into blocks; the kernel uses this only to check
    /// the ring's geometry.
    public var frameSize: Int = 2048
    /// Milliseconds after which the kernel hands a partly filled block to user space, 1...60000.
    /// Lower means lower latency and more wake-ups.
    public var blockRetireTimeoutMilliseconds: Int = 20
    /// Bytes kept of each packet, 1...262144.
    public var snapLength: Int = Self.maximumSnapLength
    /// The largest snap length, the default: whole packets, and no filter program when no
    /// ``filter`` is set either.
    public static let maximumSnapLength = 262_144
    /// A filter in tcpdump syntax, compiled with ``PacketFilter`` and attached to the socket.
    public var filter: String?
    /// Puts the interface in promiscuous mode while the source is open (`PACKET_MR_PROMISC`).
    /// Needed on a bridge to see frames it forwards between its ports.
    public var promiscuous = false
    /// Joins a fanout group; ``AFPacketCapture`` sets it when it runs several threads.
    public var fanout: AFPacketFanout?
    /// Presents VLAN-tagged frames with the 802.1Q tag the kernel stripped re-inserted (the
    /// frame is copied into a per-source buffer; only tagged frames are copied). When false
    /// such frames are delivered as the kernel has them, untagged.
    public var restoresVLANTags = true

    /// A configuration with the defaults for `interface` (`nil`: every interface).
    public init(interface: String?, namespacePath: String? = nil) {
        self.interface = interface
        self.namespacePath = namespacePath
    }

    /// The ring's size in bytes.
    public var ringBytes: Int { blockSize * blockCount }

    static let pageSize = 4096

    /// Checks every value against the kernel's rules.
    /// - Throws: ``CaptureSourceError`` with code `.invalidConfiguration` naming the value.
    public func validate() throws(CaptureSourceError) {
        func fail(_ message: String) -> CaptureSourceError {
            CaptureSourceError(.invalidConfiguration, operation: "AFPacketConfiguration", message: message)
        }
        if let interface {
            guard !interface.isEmpty, interface.utf8.count <= 15, !interface.utf8.contains(0) else {
                throw CaptureSourceError(.noSuchInterface, operation: "AFPacketConfiguration",
                                         message: "\"\(interface)\" is not an interface name (1 to 15 bytes)")
            }
        }
        guard blockSize >= Self.pageSize, blockSize <= 1 << 30, blockSize % Self.pageSize == 0 else {
            throw fail("block size \(blockSize) must be a multiple of \(Self.pageSize) between 4 KiB and 1 GiB")
        }
        guard blockCount >= 1, blockCount <= 1 << 20 else {
            throw fail("block count \(blockCount) must be between 1 and 1048576")
        }
        guard blockSize.multipliedReportingOverflow(by: blockCount).partialValue <= 1 << 36,
              !blockSize.multipliedReportingOverflow(by: blockCount).overflow else {
            throw fail("ring of \(blockCount) blocks of \(blockSize) bytes exceeds 64 GiB")
        }
        guard frameSize >= 64, frameSize % 16 == 0, frameSize <= blockSize else {
            throw fail("frame size \(frameSize) must be a multiple of 16, at least 64 and at most the block size \(blockSize)")
        }
        guard (blockSize / frameSize) * blockCount <= Int(UInt32.max) else {
            throw fail("\(blockCount) blocks of \(blockSize / frameSize) frames exceed 2^32 frames")
        }
        guard (1...60_000).contains(blockRetireTimeoutMilliseconds) else {
            throw fail("block retire timeout \(blockRetireTimeoutMilliseconds) ms must be between 1 and 60000")
        }
        guard (1...Self.maximumSnapLength).contains(snapLength) else {
            throw fail("snap length \(snapLength) must be between 1 and \(Self.maximumSnapLength)")
        }
        if promiscuous && interface == nil {
            throw fail("promiscuous mode needs an interface; name one or turn promiscuous off")
        }
        if let path = namespacePath, path.isEmpty {
            throw fail("the network namespace path is empty; give an `ip netns` name, /run/netns/NAME or /proc/PID/ns/net")
        }
    }
}
