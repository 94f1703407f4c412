// Live capture from an AF_PACKET socket through a memory-mapped TPACKET_V3 receive ring.
//
// The ring is `blockCount` blocks of `blockSize` bytes shared with the kernel:
//
//   block i (at ring + i·blockSize)
//   +--------------------------------------+  tpacket_block_desc (48 bytes)
//   | version | offset_to_priv              |  bh1.block_status (+8): TP_STATUS_KERNEL / _USER
//   | block_status | num_pkts (+12)        |  offset_to_first_pkt (+16)
//   | offset_to_first_pkt | blk_len | ...  |
//   +--------------------------------------+
//   | tpacket3_hdr (48) | sockaddr_ll | pad | frame (at tp_mac) ...   next at +tp_next_offset
//   | tpacket3_hdr ...                                                ...
//
// The kernel fills the current block and flips its status to TP_STATUS_USER when it is full
// or its retire timeout expired; we read the packets in place and give the block back with a
// release-store of TP_STATUS_KERNEL.
public import CaptureCore
internal import CPodTapPacket
#if canImport(Glibc)
internal import Glibc
#endif

/// A live capture source reading an AF_PACKET TPACKET_V3 ring: packets are lent straight from
/// the ring's blocks, without a copy, and each block goes back to the kernel after the batch
/// callback.
///
/// ```swift
/// var config = AFPacketConfiguration(interface: "eth0", namespacePath: "/proc/4242/ns/net")
/// config.filter = "tcp port 80"
/// var source = try AFPacketSource(configuration: config)
/// while running {
///     _ = try source.poll(timeoutMilliseconds: 100) { packet in
///         decoder.decode(packet.bytes, linkType: packet.linkType, into: &decoded)
///     }
/// }
/// ```
///
/// The source owns the socket and the mapping; `deinit` unmaps the ring and closes the socket
/// (which also leaves promiscuous mode and the fanout group). It is used from one thread at a
/// time. ``PacketRecord/direction`` comes from the kernel's packet type: to this host,
/// broadcast, multicast or to another host (seen in promiscuous mode) are inbound, sent by
/// this host is outbound. VLAN tags that the kernel stripped into the packet's metadata are
/// put back (see ``AFPacketConfiguration/restoresVLANTags``).
@safe
public struct AFPacketSource: ~Copyable {
    /// What the source was opened with.
    public let configuration: AFPacketConfiguration
    /// The bound interface's index in its namespace; 0 when capturing every interface.
    public let interfaceIndex: Int
    /// The fanout group the socket joined (the kernel's choice when the configuration left
    /// ``AFPacketFanout/groupID`` nil); nil without fanout.
    public let fanoutGroupID: UInt16?

    let descriptor: Int32
    let ring: UnsafeMutableRawPointer
    let blockSize: Int
    let blockCount: Int
    /// The next block the kernel will hand over.
    var currentBlock = 0
    /// The bound interface went down (ENETDOWN): polls that time out check whether it was
    /// removed, because the kernel reports only the going down, not the removal that follows.
    var interfaceIsDown = false
    /// Frames with a restored VLAN tag are assembled here (blockSize + 4 bytes).
    let scratch: UnsafeMutableRawPointer
    /// Counters behind a pointer: reading the kernel's statistics resets them, so the
    /// `statistics` getter accumulates into memory it does not own by value.
    let counters: UnsafeMutablePointer<Counters>
    /// The socket's filter program (nil: none), installed at opening or, when the source was
    /// opened paused, by ``resume()``.
    let filter: PacketFilter?
    /// Opened with the reject-everything filter, waiting for ``resume()``.
    let paused: Bool

    struct Counters {
        var statistics = CaptureStatistics()
        var vlanTagsRestored: UInt64 = 0
    }

    /// Opens the socket (inside ``AFPacketConfiguration/namespacePath`` when set), sets up and
    /// maps the ring, attaches the filter, optionally enters promiscuous mode, binds to the
    /// interface and joins the fanout group.
    /// - Throws: ``CaptureSourceError``: `.invalidConfiguration` for a geometry the kernel
    ///   rejects, `.invalidFilter` for a filter that does not compile, `.noSuchInterface` naming
    ///   the interface, `.interfaceDown`, `.namespace`, `.permissionDenied` (CAP_NET_RAW,
    ///   CAP_SYS_ADMIN for namespaces), `.system`.
    public init(configuration: AFPacketConfiguration) throws(CaptureSourceError) {
        try self.init(configuration: configuration, paused: false)
    }

    /// `paused`: opened with a filter that drops everything until ``resume()``, so that
    /// a fanout runner can join every member before any of them keeps packets (otherwise the
    /// first members would see packets of flows that later belong to another member).
    init(configuration: AFPacketConfiguration, paused: Bool) throws(CaptureSourceError) {
        try configuration.validate()
        // No program at all when nothing is filtered or cut: the kernel then runs no BPF per
        // packet, on the CPU that is sending (measured: it costs the sender's send rate).
        let filter: PacketFilter?
        if let expression = configuration.filter {
            filter = try PacketFilter(expression: expression, linkType: .ethernet, snapLength: configuration.snapLength)
        } else if configuration.snapLength < AFPacketConfiguration.maximumSnapLength {
            filter = PacketFilter(acceptingAllWithSnapLength: configuration.snapLength)
        } else {
            filter = nil
        }
        let installed = paused ? PacketFilter.rejectingAll : filter
        let opened: OpenedSocket
        if let path = configuration.namespacePath {
            // setns switches the calling thread, which may be a Swift concurrency pool thread
            // shared with unrelated tasks: do it on a short-lived thread of its own.
            opened = try NetworkNamespace.onDedicatedThread(in: path, name: "podtap-afp-open") {
                () throws(CaptureSourceError) -> OpenedSocket in try Self.open(configuration, filter: installed)
            }
        } else {
            opened = try Self.open(configuration, filter: installed)
        }
        self.configuration = configuration
        descriptor = opened.descriptor
        unsafe ring = opened.ring
        interfaceIndex = opened.interfaceIndex
        fanoutGroupID = opened.fanoutGroupID
        blockSize = configuration.blockSize
        blockCount = configuration.blockCount
        self.paused = paused
        self.filter = filter
        unsafe scratch = UnsafeMutableRawPointer.allocate(byteCount: configuration.blockSize + 4, alignment: 16)
        unsafe counters = UnsafeMutablePointer<Counters>.allocate(capacity: 1)
        unsafe counters.initialize(to: Counters())
    }

    deinit {
        _ = unsafe munmap(ring, blockSize * blockCount)
        _ = close(descriptor)
        unsafe scratch.deallocate()
        unsafe counters.deinitialize(count: 1)
        unsafe counters.deallocate()
    }

    /// Installs the real filter on a source opened paused; packets count from here on.
    func resume() throws(CaptureSourceError) {
        guard paused else { return }
        if let filter {
            try Self.attach(filter, to: descriptor)
        } else {
            try Self.detachFilter(from: descriptor)
        }
    }

    /// How many classic BPF instructions the kernel runs for every packet on this socket; 0
    /// when no program is attached (no filter and the full snap length).
    public var filterInstructionCount: Int {
        var length = socklen_t(0)
        // SO_GET_FILTER with a zero length reports the program's length in instructions.
        guard unsafe getsockopt(descriptor, SOL_SOCKET, SO_GET_FILTER, nil, &length) == 0 else { return 0 }
        return Int(length)
    }

    /// Frames whose stripped 802.1Q tag was put back (each was copied once).
    public var vlanTagsRestored: UInt64 { unsafe counters.pointee.vlanTagsRestored }

    // MARK: - Opening

    @safe
    struct OpenedSocket {
        var descriptor: Int32
        var ring: UnsafeMutableRawPointer
        var interfaceIndex: Int
        var fanoutGroupID: UInt16?
    }

    /// Everything that must happen in the capture namespace (all of it, to be simple: the
    /// socket's namespace is fixed when it is created, the interface name is looked up there).
    private static func open(
        _ configuration: AFPacketConfiguration, filter: PacketFilter?
    ) throws(CaptureSourceError) -> OpenedSocket {
        let place = configuration.namespacePath.map { "network namespace \(NetworkNamespace.path($0))" } ?? "this network namespace"
        // Protocol 0: the socket receives nothing until bind, so the ring holds no packet from
        // before the filter and the fanout group were set up.
        let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            let e = errno
            throw CaptureSourceError(e == EPERM || e == EACCES ? .permissionDenied : .system,
                                     operation: "socket(AF_PACKET, SOCK_RAW)", errno: e,
                                     message: e == EPERM || e == EACCES
                                         ? "capturing needs CAP_NET_RAW; run as root or grant the capability"
                                         : "cannot create a packet socket: \(errorText(e))")
        }
        var ring: UnsafeMutableRawPointer? = nil
        let ringBytes = configuration.ringBytes
        do throws(CaptureSourceError) {
            var ifindex: Int32 = 0
            if let name = configuration.interface {
                ifindex = Int32(bitPattern: unsafe if_nametoindex(name))
                guard ifindex > 0 else {
                    throw CaptureSourceError(.noSuchInterface, operation: "if_nametoindex(\(name))", errno: errno,
                                             message: "no interface named \"\(name)\" in \(place)")
                }
            }
            var version = Int32(TPACKET_V3.rawValue)
            try setOption(fd, SOL_PACKET, PACKET_VERSION, &version, "PACKET_VERSION")
            var request = tpacket_req3(
                tp_block_size: UInt32(configuration.blockSize), tp_block_nr: UInt32(configuration.blockCount),
                tp_frame_size: UInt32(configuration.frameSize),
                tp_frame_nr: UInt32(configuration.blockSize / configuration.frameSize * configuration.blockCount),
                tp_retire_blk_tov: UInt32(configuration.blockRetireTimeoutMilliseconds), tp_sizeof_priv: 0,
                tp_feature_req_word: 0)
            do throws(CaptureSourceError) {
                try setOption(fd, SOL_PACKET, PACKET_RX_RING, &request, "PACKET_RX_RING")
            } catch {
                if error.errno == EINVAL {
                    throw CaptureSourceError(.invalidConfiguration, operation: error.operation, errno: error.errno,
                                             message: "the kernel rejected a ring of \(configuration.blockCount) blocks of \(configuration.blockSize) bytes with \(configuration.frameSize)-byte frames")
                }
                if error.errno == ENOMEM {
                    throw CaptureSourceError(.system, operation: error.operation, errno: error.errno,
                                             message: "not enough memory for a \(ringBytes >> 20) MiB ring; use fewer or smaller blocks")
                }
                throw error
            }
            guard let mapped = unsafe mmap(nil, ringBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0),
                  unsafe mapped != MAP_FAILED else {
                let e = errno
                throw CaptureSourceError(.system, operation: "mmap(PACKET_RX_RING)", errno: e,
                                         message: "cannot map the \(ringBytes >> 20) MiB ring: \(errorText(e))")
            }
            unsafe ring = mapped
            if let filter { try attach(filter, to: fd) }
            if configuration.promiscuous {
                var membership = packet_mreq()
                membership.mr_ifindex = ifindex
                membership.mr_type = UInt16(PACKET_MR_PROMISC)
                try setOption(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &membership, "PACKET_ADD_MEMBERSHIP(PACKET_MR_PROMISC)")
            }
            var address = sockaddr_ll()
            address.sll_family = UInt16(AF_PACKET)
            address.sll_protocol = UInt16(ETH_P_ALL).bigEndian
            address.sll_ifindex = ifindex
            let rc = unsafe withUnsafePointer(to: &address) {
                unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    unsafe bind(fd, $0, socklen_t(MemoryLayout<sockaddr_ll>.size))
                }
            }
            let interfaceName = configuration.interface ?? "every interface"
            guard rc == 0 else {
                let e = errno
                if e == ENODEV || e == ENXIO {
                    throw CaptureSourceError(.noSuchInterface, operation: "bind(\(interfaceName))", errno: e,
                                             message: "interface \"\(interfaceName)\" disappeared from \(place)")
                }
                throw CaptureSourceError(.system, operation: "bind(\(interfaceName))", errno: e,
                                         message: "cannot bind the packet socket: \(errorText(e))")
            }
            // bind succeeds on a down interface but leaves ENETDOWN as the socket's error.
            var pending: Int32 = 0
            var length = socklen_t(4)
            _ = unsafe getsockopt(fd, SOL_SOCKET, SO_ERROR, &pending, &length)
            if pending == ENETDOWN {
                throw CaptureSourceError(.interfaceDown, operation: "bind(\(interfaceName))", errno: pending,
                                         message: "interface \"\(interfaceName)\" in \(place) is down; bring it up (ip link set \(interfaceName) up) first")
            }
            var groupID: UInt16? = nil
            if let fanout = configuration.fanout {
                var value = fanout.optionValue
                do throws(CaptureSourceError) {
                    try setOption(fd, SOL_PACKET, PACKET_FANOUT, &value, "PACKET_FANOUT")
                } catch {
                    throw CaptureSourceError(
                        error.errno == EINVAL || error.errno == EALREADY ? .invalidConfiguration : .system,
                        operation: error.operation, errno: error.errno,
                        message: "cannot join fanout group \(fanout.groupID.map { String($0) } ?? "(new)") (\(fanout.mode)) on \(interfaceName): "
                            + "a group with this id and other settings exists, or the socket is already in one")
                }
                // Read back the id (the kernel's choice with PACKET_FANOUT_FLAG_UNIQUEID).
                var current: UInt32 = 0
                var length = socklen_t(4)
                guard unsafe getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &current, &length) == 0 else {
                    let e = errno
                    throw CaptureSourceError(.system, operation: "getsockopt(PACKET_FANOUT)", errno: e, message: errorText(e))
                }
                groupID = UInt16(truncatingIfNeeded: current)
                if fanout.mode == .flow {
                    try attachFanoutProgram(FlowFanoutProgram.instructions(
                        ipv4Reassembled: fanout.defragments, vxlanPorts: fanout.vxlanPorts, genevePort: fanout.genevePort), to: fd)
                }
            }
            return unsafe OpenedSocket(descriptor: fd, ring: mapped, interfaceIndex: Int(ifindex), fanoutGroupID: groupID)
        } catch {
            if let ring = unsafe ring { _ = unsafe munmap(ring, ringBytes) }
            _ = close(fd)
            throw error
        }
    }

    /// Gives the fanout group its classic BPF program (`PACKET_FANOUT_DATA`, for
    /// `PACKET_FANOUT_CBPF`); every member sets the same one.
    static func attachFanoutProgram(_ program: [PacketFilter.Instruction], to fd: Int32) throws(CaptureSourceError) {
        let e = setProgram(program, on: fd, level: SOL_PACKET, option: 22 /* PACKET_FANOUT_DATA */)
        guard e == 0 else {
            throw CaptureSourceError(.system, operation: "setsockopt(PACKET_FANOUT_DATA)", errno: e,
                                     message: "the kernel refused the flow fanout program: \(errorText(e))")
        }
    }

    /// Attaches a classic BPF program (SO_ATTACH_FILTER); replaces the previous one atomically.
    static func attach(_ filter: PacketFilter, to fd: Int32) throws(CaptureSourceError) {
        let e = setProgram(filter.instructions, on: fd, level: SOL_SOCKET, option: SO_ATTACH_FILTER)
        guard e == 0 else {
            throw CaptureSourceError(.invalidFilter, operation: "setsockopt(SO_ATTACH_FILTER)", errno: e,
                                     message: "the kernel rejected the \(filter.instructions.count)-instruction program for \"\(filter.expression)\": \(errorText(e))")
        }
    }

    /// `setsockopt` with a classic BPF program (`struct sock_fprog`): 0, or the call's errno.
    private static func setProgram(_ program: [PacketFilter.Instruction], on fd: Int32, level: Int32, option: Int32) -> Int32 {
        var instructions = program.map { sock_filter(code: $0.code, jt: $0.jumpIfTrue, jf: $0.jumpIfFalse, k: $0.k) }
        return unsafe instructions.withUnsafeMutableBufferPointer { buffer in
            var fprog = unsafe sock_fprog(len: UInt16(clamping: buffer.count), filter: buffer.baseAddress)
            return unsafe setsockopt(fd, level, option, &fprog, socklen_t(MemoryLayout<sock_fprog>.size)) == 0 ? 0 : errno
        }
    }

    /// Removes the socket's filter (SO_DETACH_FILTER): every packet is kept, and no program runs.
    static func detachFilter(from fd: Int32) throws(CaptureSourceError) {
        var unused: Int32 = 0
        guard unsafe setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            let e = errno
            throw CaptureSourceError(.system, operation: "setsockopt(SO_DETACH_FILTER)", errno: e,
                                     message: "cannot remove the start-up filter: \(errorText(e))")
        }
    }

    private static func setOption<T: BitwiseCopyable>(
        _ fd: Int32, _ level: Int32, _ name: Int32, _ value: inout T, _ label: String
    ) throws(CaptureSourceError) {
        let rc = unsafe setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<T>.size))
        guard rc == 0 else {
            let e = errno
            throw CaptureSourceError(e == EPERM ? .permissionDenied : .system, operation: "setsockopt(\(label))",
                                     errno: e, message: "the kernel refused \(label): \(errorText(e))")
        }
    }

    // MARK: - Reading

    /// Offsets in the ring (checked by _Static_assert in CPodTapPacket.h).
    enum Layout {
        static var blockStatus: Int { 8 }
        static var packetCount: Int { 12 }
        static var firstPacket: Int { 16 }
        /// TPACKET_ALIGN(sizeof(struct tpacket3_hdr)): where the sockaddr_ll starts.
        static var headerLength: Int { 48 }
        /// TP_STATUS_USER.
        static var statusUser: UInt32 { 1 }
        /// TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID.
        static var statusVLANValid: UInt32 { 1 << 4 }
        static var statusVLANTPIDValid: UInt32 { 1 << 6 }
    }


    func block(_ index: Int) -> UnsafeMutableRawPointer { unsafe ring + index &* blockSize }


    func isReady(_ index: Int) -> Bool {
        unsafe cpk_load_acquire_u32(block(index) + Layout.blockStatus) & Layout.statusUser != 0
    }

    /// Hands every packet of block `index` to `body`; returns how many. When `preparing`, every
    /// packet whose frame needs no restored VLAN tag is handed to `prepare` first, in order,
    /// just before the packet ``lookahead`` places earlier is delivered (see
    /// ``CaptureWorker/prepare(_:)``).

    func deliver(
        block index: Int, preparing: Bool, prepare: (borrowing PacketRecord) -> Void,
        _ body: (borrowing PacketRecord) -> Void
    ) -> Int {
        let base = unsafe block(index)
        let count = Int(unsafe base.load(fromByteOffset: Layout.packetCount, as: UInt32.self))
        var offset = Int(unsafe base.load(fromByteOffset: Layout.firstPacket, as: UInt32.self))
        var delivered = 0
        // The packet `prepare` sees next: its number in the block and its offset (0 when the
        // last one was prepared, which isPacketHeader rejects).
        var aheadNumber = 0
        var aheadOffset = offset
        while delivered < count, isPacketHeader(at: offset) {
            let header = unsafe base + offset
            let next = Int(unsafe header.load(fromByteOffset: 0, as: UInt32.self))
            if next != 0 {
                // The next packet's header and first bytes arrive while this one is processed.
                unsafe prefetchForReading(header + next)
                unsafe prefetchForReading(header + next + 64)
                unsafe prefetchForReading(header + next + 128)
            }
            if preparing {
                while aheadNumber <= delivered &+ Self.lookahead, aheadNumber < count, isPacketHeader(at: aheadOffset) {
                    let upcoming = unsafe base + aheadOffset
                    let frame = unsafe frameHeader(upcoming, offset: aheadOffset)
                    if !frame.needsVLANRestore {  // restored frames share one buffer: not ahead
                        let buffer = unsafe UnsafeRawBufferPointer(start: upcoming + frame.mac, count: frame.captured)
                        prepare(unsafe frame.record(buffer.bytes))
                    }
                    let step = Int(unsafe upcoming.load(fromByteOffset: 0, as: UInt32.self))
                    aheadOffset = step == 0 ? 0 : aheadOffset &+ step
                    aheadNumber &+= 1
                }
            }
            let frame = unsafe frameHeader(header, offset: offset)
            if frame.needsVLANRestore {
                let tci = UInt16(truncatingIfNeeded: unsafe header.load(fromByteOffset: 32, as: UInt32.self))
                let tpid = frame.status & Layout.statusVLANTPIDValid != 0
                    ? unsafe header.load(fromByteOffset: 36, as: UInt16.self) : 0x8100
                // destination, source | TPID, TCI | EtherType, payload …
                unsafe scratch.copyMemory(from: header + frame.mac, byteCount: 12)
                unsafe scratch.storeBytes(of: tpid.bigEndian, toByteOffset: 12, as: UInt16.self)
                unsafe scratch.storeBytes(of: tci.bigEndian, toByteOffset: 14, as: UInt16.self)
                unsafe (scratch + 16).copyMemory(from: header + frame.mac + 12, byteCount: frame.captured &- 12)
                unsafe counters.pointee.vlanTagsRestored &+= 1
                let buffer = unsafe UnsafeRawBufferPointer(start: scratch, count: frame.captured &+ 4)
                body(unsafe frame.record(buffer.bytes, addedBytes: 4))
            } else {
                let buffer = unsafe UnsafeRawBufferPointer(start: header + frame.mac, count: frame.captured)
                body(unsafe frame.record(buffer.bytes))
            }
            delivered &+= 1
            if next == 0 { break }
            offset &+= next
        }
        return delivered
    }

    /// How many packets ahead of the one delivered `prepare` sees.
    static var lookahead: Int { 4 }

    /// Whether a `tpacket3_hdr` and the start of its `sockaddr_ll` fit in the block at `offset`.
    func isPacketHeader(at offset: Int) -> Bool {
        offset >= Layout.firstPacket && offset &+ Layout.headerLength &+ 12 <= blockSize
    }

    /// What the `tpacket3_hdr` at `header` (at `offset` in its block) says about its frame.
    func frameHeader(_ header: UnsafeMutableRawPointer, offset: Int) -> FrameHeader {
        let seconds = unsafe header.load(fromByteOffset: 4, as: UInt32.self)
        let nanoseconds = unsafe header.load(fromByteOffset: 8, as: UInt32.self)
        let snapLength = Int(unsafe header.load(fromByteOffset: 12, as: UInt32.self))
        let wireLength = Int(unsafe header.load(fromByteOffset: 16, as: UInt32.self))
        let status = unsafe header.load(fromByteOffset: 20, as: UInt32.self)
        let mac = Int(unsafe header.load(fromByteOffset: 24, as: UInt16.self))
        let address = unsafe header + Layout.headerLength
        let ifindex = Int(unsafe address.load(fromByteOffset: 4, as: Int32.self))
        let hardwareType = unsafe address.load(fromByteOffset: 8, as: UInt16.self)
        let packetType = unsafe address.load(fromByteOffset: 10, as: UInt8.self)
        // Never read past the block, whatever the header says.
        let captured = max(0, min(snapLength, blockSize &- offset &- mac))
        let linkType = Self.linkType(hardwareType: hardwareType)
        let direction = Self.direction(packetType: packetType)
        let needsVLANRestore = configuration.restoresVLANTags && status & Layout.statusVLANValid != 0
            && linkType == .ethernet && captured >= 12
        return FrameHeader(
            mac: mac, captured: captured, wireLength: wireLength, status: status,
            timestamp: Timestamp(seconds: UInt64(seconds), nanoseconds: UInt64(nanoseconds)),
            linkType: linkType, interfaceIndex: ifindex, direction: direction,
            flags: UInt32(direction.rawValue) | Self.receptionType(packetType: packetType) << 2,
            needsVLANRestore: needsVLANRestore)
    }

    /// One frame's `tpacket3_hdr` and `sockaddr_ll`, read and bounded.
    struct FrameHeader {
        /// Offset of the frame from its header, and the bytes captured of it within the block.
        var mac: Int
        var captured: Int
        var wireLength: Int
        var status: UInt32
        var timestamp: Timestamp
        var linkType: LinkType
        var interfaceIndex: Int
        var direction: PacketDirection
        var flags: UInt32
        /// The kernel stripped a VLAN tag that is to be put back before delivery.
        var needsVLANRestore: Bool

        @_lifetime(copy bytes)
        func record(_ bytes: RawSpan, addedBytes: Int = 0) -> PacketRecord {
            PacketRecord(bytes: bytes, originalLength: wireLength &+ addedBytes, timestamp: timestamp,
                         linkType: linkType, interfaceIndex: interfaceIndex, direction: direction, flags: flags)
        }
    }

    /// The link type of frames from a device of ARPHRD_ type `hardwareType`.

    static func linkType(hardwareType: UInt16) -> LinkType {
        switch hardwareType {
        // ARPHRD_NONE (tun), ARPHRD_TUNNEL, ARPHRD_TUNNEL6, ARPHRD_IPGRE, ARPHRD_SIT: IP packets.
        case 65534, 768, 769, 778, 776: .raw
        // ARPHRD_ETHER, ARPHRD_LOOPBACK and everything else with an Ethernet header.
        default: .ethernet
        }
    }

    /// `sll_pkttype` → direction: PACKET_HOST, _BROADCAST, _MULTICAST, _OTHERHOST are
    /// inbound, PACKET_OUTGOING outbound.

    static func direction(packetType: UInt8) -> PacketDirection {
        switch packetType {
        case 0, 1, 2, 3: .inbound
        case 4: .outbound
        default: .unknown
        }
    }

    /// pcapng `epb_flags` reception type (bits 2-4): 1 unicast, 2 multicast, 3 broadcast,
    /// 4 promiscuous; 0 for outbound.

    static func receptionType(packetType: UInt8) -> UInt32 {
        switch packetType {
        case 0: 1
        case 1: 3
        case 2: 2
        case 3: 4
        default: 0
        }
    }

    // MARK: - Waiting and errors

    /// Waits with poll(2). Returns normally on readiness, timeout or EINTR.
    mutating func wait(timeoutMilliseconds: Int32) throws(CaptureSourceError) {
        var descriptor = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
        let rc = unsafe Glibc.poll(&descriptor, 1, timeoutMilliseconds)
        if rc < 0 {
            let e = errno
            if e == EINTR { return }
            throw CaptureSourceError(.system, operation: "poll(AF_PACKET)", errno: e, message: errorText(e))
        }
        precondition(descriptor.revents & Int16(POLLNVAL) == 0, "AFPacketSource: poll on a closed socket")
        if descriptor.revents & Int16(POLLERR) != 0 { try reportSocketError() }
    }

    /// Reads (and clears) the socket's pending error and throws it.
    @inline(never)
    mutating func reportSocketError() throws(CaptureSourceError) {
        var pending: Int32 = 0
        var length = socklen_t(4)
        _ = unsafe getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &pending, &length)
        guard pending != 0 else { return }
        let name = configuration.interface ?? "every interface"
        if pending == ENETDOWN, interfaceIndex > 0 {
            try checkInterfaceExists()
            interfaceIsDown = true
            throw CaptureSourceError(.interfaceDown, operation: "poll(\(name))", errno: pending,
                                     message: "interface \"\(name)\" went down; the source resumes when it is up again")
        }
        throw CaptureSourceError(.system, operation: "poll(\(name))", errno: pending, message: errorText(pending))
    }

    /// Throws `.noSuchInterface` when the bound interface no longer exists (asked in the
    /// socket's own namespace); clears ``interfaceIsDown`` when it is up again.
    mutating func checkInterfaceExists() throws(CaptureSourceError) {
        let name = configuration.interface ?? "every interface"
        var request = unsafe ifreq()
        unsafe request.ifr_ifru.ifru_ivalue = Int32(interfaceIndex)
        if unsafe ioctl(descriptor, UInt(SIOCGIFNAME), &request) < 0 {
            throw CaptureSourceError(.noSuchInterface, operation: "poll(\(name))", errno: ENODEV,
                                     message: "interface \"\(name)\" (index \(interfaceIndex)) no longer exists")
        }
        if interfaceIsDown, unsafe ioctl(descriptor, UInt(SIOCGIFFLAGS), &request) == 0,
           unsafe Int32(request.ifr_ifru.ifru_flags) & Int32(IFF_UP) != 0 {
            interfaceIsDown = false
        }
    }

    // MARK: - Statistics

    /// Adds the kernel's counters (PACKET_STATISTICS, which resets them) to ours.
    func collectKernelStatistics() {
        var stats = tpacket_stats_v3()
        var length = socklen_t(MemoryLayout<tpacket_stats_v3>.size)
        guard unsafe getsockopt(descriptor, SOL_PACKET, PACKET_STATISTICS, &stats, &length) == 0 else { return }
        unsafe counters.pointee.statistics.received &+= UInt64(stats.tp_packets)
        unsafe counters.pointee.statistics.droppedByKernel &+= UInt64(stats.tp_drops)
        unsafe counters.pointee.statistics.queueFreezes &+= UInt64(stats.tp_freeze_q_cnt)
    }
}

extension AFPacketSource: CaptureSource {
    /// Waits up to `timeoutMilliseconds` for the next ring block, then lends every packet of
    /// every ready block (at most one ring's worth per call) to `body` and returns the blocks
    /// to the kernel.

    public mutating func poll(
        timeoutMilliseconds: Int32, _ body: (borrowing PacketRecord) -> Void
    ) throws(CaptureSourceError) -> Int {
        try poll(timeoutMilliseconds: timeoutMilliseconds, preparing: false, prepare: { _ in }, body)
    }

    /// ``poll(timeoutMilliseconds:_:)`` with a look ahead: each packet is first lent to
    /// `prepare` while the packet ``lookahead`` places before it is lent to `body`, so work on
    /// it can start early (``FlowTracker/prepare(frame:linkType:decoder:timestamp:wireLength:)``
    /// decodes it and loads the flow table memory it will touch). Every packet still reaches
    /// `body`, in order; frames whose VLAN tag is restored skip `prepare`.
    public mutating func poll(
        timeoutMilliseconds: Int32, prepare: (borrowing PacketRecord) -> Void,
        _ body: (borrowing PacketRecord) -> Void
    ) throws(CaptureSourceError) -> Int {
        try poll(timeoutMilliseconds: timeoutMilliseconds, preparing: true, prepare: prepare, body)
    }

    /// `poll` that looks ahead only when `preparing`.
    mutating func poll(
        timeoutMilliseconds: Int32, preparing: Bool, prepare: (borrowing PacketRecord) -> Void,
        _ body: (borrowing PacketRecord) -> Void
    ) throws(CaptureSourceError) -> Int {
        if !isReady(currentBlock) {
            guard timeoutMilliseconds != 0 else { return 0 }
            try wait(timeoutMilliseconds: timeoutMilliseconds)
            guard isReady(currentBlock) else {
                if interfaceIsDown { try checkInterfaceExists() }
                return 0
            }
        }
        var delivered = 0
        var blocks = 0
        while blocks < blockCount, isReady(currentBlock) {
            delivered &+= deliver(block: currentBlock, preparing: preparing, prepare: prepare, body)
            unsafe cpk_store_release_u32(block(currentBlock) + Layout.blockStatus, 0)  // TP_STATUS_KERNEL
            currentBlock = currentBlock &+ 1 == blockCount ? 0 : currentBlock &+ 1
            blocks &+= 1
        }
        unsafe counters.pointee.statistics.delivered &+= UInt64(delivered)
        unsafe counters.pointee.statistics.batches &+= UInt64(blocks)
        return delivered
    }

    /// Packets delivered and ring blocks (batches), plus the kernel's PACKET_STATISTICS
    /// (`tpacket_stats_v3`): accepted after the filter (received), dropped because the ring was
    /// full, queue freezes. Reading collects and resets the kernel's counters; the values
    /// returned are cumulative since the source opened.
    public var statistics: CaptureStatistics {
        collectKernelStatistics()
        return unsafe counters.pointee.statistics
    }
}

func errorText(_ e: Int32) -> String { unsafe String(cString: strerror(e)) }
