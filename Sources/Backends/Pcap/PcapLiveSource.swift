// Live capture through libpcap: pcap_create + options + pcap_activate, optionally inside
// another network namespace, polled without blocking.
public import CaptureCore
internal import CPodTapPacket
internal import CPodTapPcap
#if canImport(Glibc)
internal import Glibc
#endif

/// How a ``PcapLiveSource`` opens its interface.
public struct PcapLiveConfiguration: Sendable, Hashable {
    /// The interface name ("cni0", "veth1a2b3c4d", "eth0").
    public var interface: String
    /// Bytes kept of each packet, 1...262 144. The corresponding C call is `pcap_set_snaplen`.
    public var snapLength: Int = 262_144
    /// Kernel buffer (ring) size in bytes. `pcap_set_buffer_size`. In immediate mode libpcap
    /// cuts the ring into frames of one maximum packet each, about 64 KiB on interfaces with
    /// segmentation offload (veths, bridges), so 4 MiB holds only ~64 packets: poll often or
    /// give more.
    public var bufferSize: Int = 4 << 20
    /// Receive frames not addressed to the interface. Needed on a bridge (cni0) to see the
    /// traffic it forwards between its ports. `pcap_set_promisc`.
    public var promiscuous = false
    /// Hand over each packet as soon as it arrives instead of when a buffer block fills or
    /// times out. `pcap_set_immediate_mode` (libpcap then uses TPACKET_V2 on Linux).
    public var immediate = true
    /// Without immediate mode, the longest a packet waits in a partly filled block, in
    /// milliseconds. `pcap_set_timeout`.
    public var bufferTimeoutMilliseconds: Int32 = 100
    /// A tcpdump filter expression ("tcp port 80"), compiled by libpcap and run in the kernel.
    public var filter: String? = nil
    /// The network namespace the interface lives in: an `ip netns` name, `/run/netns/NAME`
    /// or `/proc/PID/ns/net`. `nil`: the calling thread's namespace. The calling thread enters
    /// it just for `pcap_activate` and returns before ``PcapLiveSource/init(_:)`` does.
    public var networkNamespace: String? = nil
    /// The value of ``PacketRecord/interfaceIndex`` in delivered packets, to tell sources
    /// apart when several feed one tracker.
    public var interfaceIndex = 0

    public init(interface: String) { self.interface = interface }
}

/// A libpcap live capture, polled without blocking: a ``CaptureSource``.
///
/// ```swift
/// var configuration = PcapLiveConfiguration(interface: "cni0")
/// configuration.networkNamespace = "/proc/1/ns/net"
/// configuration.promiscuous = true
/// configuration.filter = "tcp port 443"
/// var source = try PcapLiveSource(configuration)
/// while running {
///     _ = try source.poll(timeoutMilliseconds: 100) { packet in tracker.count(packet) }
/// }
/// ```
///
/// Each ``poll(timeoutMilliseconds:_:)`` waits with poll(2) on libpcap's selectable descriptor,
/// then calls `pcap_dispatch`, which lends every packet in the ring to `body` without copying.
///
/// Interface trouble is reported, never fatal:
/// - Opening an interface that does not exist throws ``CaptureSourceError/Code/noSuchInterface``;
///   opening one that is down throws ``CaptureSourceError/Code/interfaceDown`` (libpcap's
///   `PCAP_ERROR_IFACE_NOT_UP`); without CAP_NET_RAW, ``CaptureSourceError/Code/permissionDenied``.
/// - When the interface goes down during the capture, the next `poll` throws
///   ``CaptureSourceError/Code/interfaceDown`` once. The source stays usable: the kernel
///   re-attaches its socket when the interface comes back up, and packets flow again.
/// - When the interface is deleted (a pod's veth when the pod goes away), `poll` throws
///   ``CaptureSourceError/Code/noSuchInterface``, and so does every later call: drop the source.
///   Every packet that arrived before the deletion is delivered first. Without immediate mode
///   the last of them can sit in a partly filled ring block that the kernel hands over only
///   when the block times out, so for up to two ``PcapLiveConfiguration/bufferTimeoutMilliseconds``
///   (at most 1 s) after noticing the deletion, polls go on delivering before they throw.
///
/// Not thread-safe: one thread polls it (it may be moved between threads).
public struct PcapLiveSource: ~Copyable, CaptureSource {
    let handle: PcapHandle
    let descriptor: Int32
    /// The configuration the source was opened with.
    public let configuration: PcapLiveConfiguration
    /// The link-layer header type of the interface.
    public let linkType: LinkType
    /// The snap length libpcap applies (may differ from the requested one).
    public let snapLength: Int
    let nanosecondsPerUnit: UInt64
    var delivered: UInt64 = 0
    var batches: UInt64 = 0
    /// Set when the interface went down; cleared by the next packet.
    var interfaceIsDown = false
    /// Set when the interface was deleted; thrown by every later poll.
    var failure: CaptureSourceError? = nil
    /// Set when the interface was deleted without immediate mode: until then, polls keep
    /// reading the ring (its last block is handed over when it times out), then they throw.
    var drainDeadline: ContinuousClock.Instant? = nil

    /// The interface name.
    public var interface: String { configuration.interface }

    /// Opens and activates the capture (inside ``PcapLiveConfiguration/networkNamespace`` when
    /// given: the calling thread enters it for `pcap_activate` only), installs the filter and
    /// switches the handle to non-blocking mode.
    /// - Throws: ``CaptureSourceError``: `.noSuchInterface` and `.interfaceDown` naming the
    ///   interface, `.permissionDenied`, `.invalidFilter` naming the expression and libpcap's
    ///   reason, `.namespace`, `.invalidConfiguration`, `.system`.
    public init(_ configuration: PcapLiveConfiguration) throws(CaptureSourceError) {
        let name = configuration.interface
        guard (1...262_144).contains(configuration.snapLength) else {
            throw CaptureSourceError(.invalidConfiguration, operation: "pcap_set_snaplen",
                                     message: "snap length \(configuration.snapLength) is outside 1...262144")
        }
        guard (1...Int(Int32.max)).contains(configuration.bufferSize) else {
            throw CaptureSourceError(.invalidConfiguration, operation: "pcap_set_buffer_size",
                                     message: "buffer size \(configuration.bufferSize) is outside 1...\(Int32.max) bytes")
        }
        guard !name.isEmpty, name.utf8.count < 16, !name.contains("/") else {
            throw CaptureSourceError(.noSuchInterface, operation: "pcap_create",
                                     message: "'\(name)' is not a valid interface name (1 to 15 characters, no '/')")
        }
        let (created, createError) = unsafe withPcapErrorBuffer { errorBuffer in unsafe pcap_create(name, errorBuffer) }
        guard let created = unsafe created else {
            throw CaptureSourceError(.system, operation: "pcap_create(\(name))", message: createError)
        }
        let handle = unsafe PcapHandle(created)
        let p = unsafe handle.pointer
        _ = unsafe pcap_set_snaplen(p, Int32(configuration.snapLength))
        _ = unsafe pcap_set_promisc(p, configuration.promiscuous ? 1 : 0)
        _ = unsafe pcap_set_buffer_size(p, Int32(configuration.bufferSize))
        _ = unsafe pcap_set_immediate_mode(p, configuration.immediate ? 1 : 0)
        _ = unsafe pcap_set_timeout(p, configuration.bufferTimeoutMilliseconds)
        _ = unsafe pcap_set_tstamp_precision(p, Int32(PCAP_TSTAMP_PRECISION_NANO))

        let place = configuration.networkNamespace.map { " in network namespace \(NetworkNamespace.path($0))" } ?? ""
        let status = try NetworkNamespace.onCallingThread(in: configuration.networkNamespace) {
            () throws(CaptureSourceError) in unsafe pcap_activate(p)
        }
        if status < 0 {
            throw Self.activationError(status, interface: name, place: place, detail: handle.lastError)
        }
        if let filter = configuration.filter {
            try handle.setFilter(filter, interface: name)
        }
        let (nonblock, nonblockError) = unsafe withPcapErrorBuffer { errorBuffer in unsafe pcap_setnonblock(p, 1, errorBuffer) }
        guard nonblock == 0 else {
            throw CaptureSourceError(.system, operation: "pcap_setnonblock(\(name))", message: nonblockError)
        }
        let fd = unsafe pcap_get_selectable_fd(p)
        guard fd >= 0 else {
            throw CaptureSourceError(.system, operation: "pcap_get_selectable_fd(\(name))",
                                     message: "libpcap offers no selectable descriptor for \(name)")
        }
        descriptor = fd
        linkType = handle.linkType
        snapLength = Int(unsafe pcap_snapshot(p))
        nanosecondsPerUnit = unsafe pcap_get_tstamp_precision(p) == Int32(PCAP_TSTAMP_PRECISION_NANO) ? 1 : 1000
        self.configuration = configuration
        self.handle = handle
    }

    /// Opens `interface` with the default configuration and the given options.
    public init(
        interface: String, networkNamespace: String? = nil, promiscuous: Bool = false, filter: String? = nil
    ) throws(CaptureSourceError) {
        var configuration = PcapLiveConfiguration(interface: interface)
        configuration.networkNamespace = networkNamespace
        configuration.promiscuous = promiscuous
        configuration.filter = filter
        try self.init(configuration)
    }

    /// Replaces the filter (a tcpdump expression); `""` captures everything.
    /// - Throws: ``CaptureSourceError/Code/invalidFilter`` naming the expression and libpcap's reason.
    public func setFilter(_ expression: String) throws(CaptureSourceError) {
        try handle.setFilter(expression, interface: configuration.interface)
    }

    // MARK: - Polling

    /// Waits up to `timeoutMilliseconds` (negative: indefinitely; while the interface is down,
    /// at most 100 ms, to notice a deletion) for packets, then lends every packet in libpcap's
    /// buffer to `body`.
    /// - Returns: the number of packets delivered; 0 when the wait timed out.
    /// - Throws: ``CaptureSourceError`` `.interfaceDown` once when the interface went down,
    ///   `.noSuchInterface` from then on when it was deleted, `.system` for other socket errors.
    ///   Packets that arrived before the failure have been delivered.
    public mutating func poll(
        timeoutMilliseconds: Int32, _ body: (borrowing PacketRecord) -> Void
    ) throws(CaptureSourceError) -> Int {
        if let failure { throw failure }
        if let drainDeadline { return try drain(until: drainDeadline, timeoutMilliseconds: timeoutMilliseconds, body) }
        var timeout = timeoutMilliseconds
        if interfaceIsDown, timeout < 0 || timeout > 100 { timeout = 100 }
        let (ready, revents, waitError) = waitForPackets(timeoutMilliseconds: timeout)
        guard ready >= 0 else {
            throw CaptureSourceError(.system, operation: "poll(\(interface))", errno: waitError,
                                     message: "waiting for packets on \(interface) failed")
        }
        if ready == 0 {
            if interfaceIsDown, interfaceWasDeleted { try noticeDeletion() }
            return 0
        }
        var count = 0
        if revents & Int16(POLLIN) != 0 {
            // Packets are in the ring, so pcap_dispatch reads them without polling itself (and
            // without consuming a pending socket error, which is handled below).
            let n = dispatchReady(body)
            guard n >= 0 else {
                try dispatchFailure()
                return 0
            }
            count = Int(n)
            if n > 0 { interfaceIsDown = false }
        }
        if revents & Int16(POLLERR) != 0 {
            try socketError()
        }
        if drainDeadline != nil { return count }  // the deletion was noticed just now
        if revents & Int16(POLLHUP | POLLNVAL) != 0 {
            throw CaptureSourceError(.system, operation: "poll(\(interface))",
                                     message: "the capture socket of \(interface) hung up or was closed")
        }
        return count
    }

    /// poll(2) on the capture socket for input, restarted after signals: the result, the
    /// returned events, and errno when it failed.
    func waitForPackets(timeoutMilliseconds: Int32) -> (ready: Int32, revents: Int16, errno: Int32) {
        var waiter = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        var ready: Int32
        repeat { ready = unsafe Glibc.poll(&waiter, 1, timeoutMilliseconds) } while ready < 0 && errno == EINTR
        return (ready, waiter.revents, ready < 0 ? errno : 0)
    }

    /// Lends every packet libpcap has ready to `body` and counts them: pcap_dispatch's result.
    mutating func dispatchReady(_ body: (borrowing PacketRecord) -> Void) -> Int32 {
        let n = handle.dispatch(count: -1, linkType: linkType, nanosecondsPerUnit: nanosecondsPerUnit,
                                interfaceIndex: configuration.interfaceIndex, body)
        if n > 0 {
            delivered &+= UInt64(n)
            batches &+= 1
        }
        return n
    }

    /// Counters: `received`, `droppedByKernel` and `droppedByInterface` are libpcap's
    /// `ps_recv`, `ps_drop` and `ps_ifdrop` (`pcap_stats`). libpcap reads `ps_ifdrop` from
    /// /sys, which shows the interfaces of the process's own network namespace, so it is
    /// reported as 0 for a capture in another namespace.
    public var statistics: CaptureStatistics {
        var statistics = CaptureStatistics()
        statistics.delivered = delivered
        statistics.batches = batches
        var counters = pcap_stat()
        if unsafe pcap_stats(handle.pointer, &counters) == 0 {
            statistics.received = UInt64(counters.ps_recv)
            statistics.droppedByKernel = UInt64(counters.ps_drop)
            statistics.droppedByInterface = configuration.networkNamespace == nil ? UInt64(counters.ps_ifdrop) : 0
        }
        return statistics
    }

    // MARK: - Failures

    /// Reads and clears the socket's pending error (SO_ERROR): 0 when there is none.
    func takeSocketError() -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return unsafe getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0 ? error : 0
    }

    /// Reads and clears the socket's pending error (SO_ERROR) and throws what it means.
    @inline(never)
    mutating func socketError() throws(CaptureSourceError) {
        let error = takeSocketError()
        guard error != 0 else { return }
        guard error == ENETDOWN else {
            throw CaptureSourceError(.system, operation: "poll(\(interface))", errno: error,
                                     message: "the capture socket of \(interface) reported an error")
        }
        if interfaceWasDeleted {
            try noticeDeletion()
            return
        }
        interfaceIsDown = true
        throw CaptureSourceError(
            .interfaceDown, operation: "poll(\(interface))", errno: ENETDOWN,
            message: "interface \(interface) went down; the source stays open and resumes when it is up again "
                + "(if it is deleted, the next poll reports noSuchInterface)")
    }

    /// True when the kernel unbound the socket from its interface because the interface was
    /// unregistered: `getsockname` then reports ifindex -1.
    var interfaceWasDeleted: Bool {
        var address = sockaddr_ll()
        var length = socklen_t(MemoryLayout<sockaddr_ll>.size)
        let result = unsafe withUnsafeMutablePointer(to: &address) { pointer in
            unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe getsockname(descriptor, $0, &length) }
        }
        return result == 0 && address.sll_ifindex == -1
    }

    /// The interface is gone: throws ``deleted()`` at once in immediate mode (every packet is
    /// readable as soon as it arrived), otherwise starts ``drain(until:timeoutMilliseconds:_:)``.
    mutating func noticeDeletion() throws(CaptureSourceError) {
        guard !configuration.immediate else { throw deleted() }
        drainDeadline = ContinuousClock.now.advanced(
            by: .ringDrainBound(blockTimeoutMilliseconds: Int(configuration.bufferTimeoutMilliseconds)))
    }

    /// A poll after the interface was deleted: waits for the ring's last block, delivers what
    /// is in the ring, and throws ``deleted()`` once `deadline` has passed.
    mutating func drain(
        until deadline: ContinuousClock.Instant, timeoutMilliseconds: Int32, _ body: (borrowing PacketRecord) -> Void
    ) throws(CaptureSourceError) -> Int {
        let left = ContinuousClock.now.duration(to: deadline).pollMilliseconds
        guard left > 0 else { throw deleted() }
        let wait = timeoutMilliseconds < 0 ? left : min(Int64(timeoutMilliseconds), left)
        let (_, revents, _) = waitForPackets(timeoutMilliseconds: Int32(wait))
        if revents & Int16(POLLERR) != 0 {
            _ = takeSocketError()  // clears the pending ENETDOWN, or every poll returns at once
        }
        // Reads whatever the kernel handed over; libpcap reports "The interface disappeared"
        // (-1) when nothing is ready, which is no news here.
        return Int(max(dispatchReady(body), 0))
    }

    /// Remembers and returns the "interface deleted" error.
    @inline(never)
    mutating func deleted() -> CaptureSourceError {
        let error = CaptureSourceError(
            .noSuchInterface, operation: "poll(\(interface))", errno: ENODEV,
            message: "interface \(interface) no longer exists (deleted, or its pod or namespace went away); "
                + "close this source and open a new one if the interface comes back")
        failure = error
        return error
    }

    /// pcap_dispatch failed: the interface is gone (see ``noticeDeletion()``), or another error.
    @inline(never)
    mutating func dispatchFailure() throws(CaptureSourceError) {
        let detail = handle.lastError
        if interfaceWasDeleted || detail.contains("disappeared") {
            try noticeDeletion()
            return
        }
        throw CaptureSourceError(.system, operation: "pcap_dispatch(\(interface))",
                                  message: "reading packets from \(interface) failed: \(detail)")
    }

    static func activationError(_ status: Int32, interface: String, place: String, detail: String) -> CaptureSourceError {
        let operation = "pcap_activate(\(interface))"
        let reason = detail.isEmpty ? "" : " (\(detail))"
        switch status {
        case PCAP_ERROR_NO_SUCH_DEVICE:
            return CaptureSourceError(.noSuchInterface, operation: operation, errno: ENODEV,
                                      message: "no interface named '\(interface)'\(place)\(reason)")
        case PCAP_ERROR_IFACE_NOT_UP:
            return CaptureSourceError(.interfaceDown, operation: operation, errno: ENETDOWN,
                                      message: "interface \(interface)\(place) is down; bring it up (ip link set \(interface) up) and open it again")
        case PCAP_ERROR_PERM_DENIED, PCAP_ERROR_PROMISC_PERM_DENIED:
            return CaptureSourceError(.permissionDenied, operation: operation, errno: EPERM,
                                      message: "capturing on \(interface) needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode)\(reason)")
        default:
            let text = unsafe String(cString: pcap_statustostr(status))
            return CaptureSourceError(.system, operation: operation,
                                      message: "cannot capture on \(interface)\(place): \(detail.isEmpty ? text : detail)")
        }
    }
}
