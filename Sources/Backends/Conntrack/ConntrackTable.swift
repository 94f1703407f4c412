// The kernel's connection-tracking table, read and followed over netlink (libnl-3's
// netfilter library, nfnl_ct): which backend each connection to a Service was translated to.
public import CaptureCore
internal import CPodTapNetlink
internal import CPodTapPacket
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// Parameters of a ``ConntrackTable``.
public struct ConntrackConfiguration: Sendable, Hashable {
    /// The most translated connections kept (see ``NATTable``). Untranslated connections are
    /// never kept.
    public var capacity = 65_536
    /// The network namespace whose table is read: nil for the caller's, or an `ip netns` name,
    /// `/run/netns/NAME` or `/proc/PID/ns/net`. A Kubernetes node agent runs in the node's
    /// namespace (hostNetwork) and leaves this nil.
    public var networkNamespacePath: String? = nil
    /// How long a destroyed connection's translation stays visible, in seconds, so flow records
    /// that end after their conntrack entry (a flow tracker's idle timeout) still find it.
    public var closedRetentionSeconds: UInt64 = 120
    /// Interval of full re-dumps, in seconds (0: never). A re-dump marks closed what the kernel
    /// no longer has: entries created before anyone listened carry no event extension (with
    /// `net.netfilter.nf_conntrack_events = 2`, the default) and die without a DESTROY event,
    /// and events lost to a full socket buffer are recovered. A buffer overrun also re-dumps.
    public var resynchronizeIntervalSeconds: UInt64 = 60
    /// The event socket's receive buffer, in bytes (`SO_RCVBUF`).
    public var receiveBufferBytes = 4 << 20
    /// How long the event thread waits in `poll` before it checks for ``ConntrackTable/stop()``,
    /// in milliseconds.
    public var pollIntervalMilliseconds: Int32 = 100

    public init() {}
    public init(networkNamespacePath: String?) { self.networkNamespacePath = networkNamespacePath }
}

/// Counters of a ``ConntrackTable``, cumulative since it opened.
public struct ConntrackStatistics: Sendable, Hashable, CustomStringConvertible {
    /// Translated connections held now, open and closed (retained).
    public var translations = 0
    /// Of those, the ones whose conntrack entry still exists.
    public var openTranslations = 0
    /// Full dumps done (the first at open), and the entries they returned.
    public var dumps: UInt64 = 0
    public var dumpedEntries: UInt64 = 0
    /// Events received, by multicast group (the corresponding C constants are
    /// `NFNLGRP_CONNTRACK_NEW`, `_UPDATE`, `_DESTROY`).
    public var newEvents: UInt64 = 0
    public var updateEvents: UInt64 = 0
    public var destroyEvents: UInt64 = 0
    /// Entries and events ignored because nothing was translated.
    public var untranslated: UInt64 = 0
    /// Translated connections not kept because the table was full, each counted once (at its
    /// NEW event, or in the first dump for connections older than the table).
    public var droppedWhenFull: UInt64 = 0
    /// Times the kernel dropped events because the socket buffer was full (`ENOBUFS`).
    public var overruns: UInt64 = 0
    /// Messages libnl could not parse, and receive errors other than overruns.
    public var errors: UInt64 = 0

    public init() {}

    public var description: String {
        "translations \(translations) (open \(openTranslations)), dumps \(dumps) (\(dumpedEntries) entries), "
            + "events new \(newEvents) update \(updateEvents) destroy \(destroyEvents), untranslated \(untranslated), "
            + "dropped when full \(droppedWhenFull), overruns \(overruns), errors \(errors)"
    }
}

/// The kernel's connection-tracking table of one network namespace, reduced to translated
/// connections: for a flow addressed to a Service ClusterIP, the backend address and port the
/// kernel's DNAT chose. Dumped when it opens, then followed through conntrack events on a
/// thread of its own until ``stop()``.
///
/// ```swift
/// let conntrack = try ConntrackTable()                     // the node's namespace
/// if let match = conntrack.lookup(flow.key) {              // either side of the DNAT
///     print(match.translation)                             // tcp 10.244.1.10:47240 → 10.96.0.10:80 → 10.244.1.11:8080
/// }
/// let connections = conntrack.join(recordsFromEveryVeth)   // each DNAT pair once
/// ```
///
/// Needs `CAP_NET_ADMIN` and the kernel's conntrack netlink interface (`nf_conntrack_netlink`).
/// The table is empty in a namespace where nothing uses connection tracking (no NAT rule, no
/// `ct` match): the kernel tracks connections only where a rule asks for it. Connection
/// tracking zones are ignored. Thread-safe: lookups take a lock the event thread holds only
/// to apply one message.
public final class ConntrackTable: Sendable {
    public let configuration: ConntrackConfiguration
    let shared: ConntrackShared
    let thread = Mutex<pthread_t?>(nil)

    /// Opens netlink sockets in the configured namespace, subscribes to conntrack events,
    /// dumps the table and starts the event thread.
    ///
    /// The sockets are opened on the calling thread after `setns(CLONE_NEWNET)`, which is
    /// undone before returning; call it from a thread of your own (not a Swift concurrency
    /// pool thread) when ``ConntrackConfiguration/networkNamespacePath`` is set.
    /// - Throws: ``CaptureSourceError``: `.permissionDenied` without `CAP_NET_ADMIN` (or
    ///   `CAP_SYS_ADMIN` for another namespace), `.namespace` when the namespace cannot be
    ///   entered, `.system` when the kernel lacks conntrack or its netlink interface.
    public init(configuration: ConntrackConfiguration = ConntrackConfiguration()) throws(CaptureSourceError) {
        guard configuration.capacity > 0, configuration.pollIntervalMilliseconds >= 0 else {
            throw CaptureSourceError(.invalidConfiguration, operation: "ConntrackTable",
                                     message: "capacity must be positive and the poll interval not negative")
        }
        self.configuration = configuration
        shared = ConntrackShared(capacity: configuration.capacity)
        let worker = try NetworkNamespace.onCallingThread(in: configuration.networkNamespacePath) {
            () throws(CaptureSourceError) -> ConntrackWorker in
            try ConntrackWorker(shared: shared, configuration: configuration)
        }
        try worker.dump()
        let tid = try BackendThread.start(name: "podtap-conntrk") { worker.run() }
        thread.withLock { $0 = tid }
    }

    deinit { stop() }

    /// Stops following events and waits for the event thread to end (at most one poll
    /// interval). The table keeps what it had; lookups keep working. Idempotent.
    public func stop() {
        guard let tid = thread.withLock({ t -> pthread_t? in defer { t = nil }; return t }) else { return }
        shared.stopRequested.store(true, ordering: .releasing)
        _ = pthread_join(tid, nil)
    }

    /// The translation whose client → service side or client → backend side has `key`.
    /// VLAN and tunnel context are ignored.
    public func lookup(_ key: FlowKey) -> NATMatch? {
        shared.state.withLock { $0.table.lookup(key) }
    }

    /// The translation of a flow record as a ``FlowTracker`` reports it.
    public func lookup(_ record: FlowRecord) -> NATMatch? { lookup(record.key) }

    /// A copy of the table as it is now (copy-on-write: cheap until the next change).
    public func snapshot() -> NATTable {
        shared.state.withLock { $0.table }
    }

    /// Merges flow records from several interfaces into connections, each DNAT pair once;
    /// see ``NATTable/join(_:)`` for which record's counts are used.
    public func join(_ records: [FlowRecord]) -> [JoinedConnection] {
        snapshot().join(records)
    }

    public var statistics: ConntrackStatistics {
        shared.state.withLock { s in
            var st = s.statistics
            st.translations = s.table.count
            st.openTranslations = s.table.openCount
            st.droppedWhenFull = s.table.droppedWhenFull
            return st
        }
    }
}

/// State shared by the table (lookups) and its event thread.
final class ConntrackShared: Sendable {
    struct State {
        var table: NATTable
        var statistics = ConntrackStatistics()
    }

    let state: Mutex<State>
    let stopRequested = Atomic<Bool>(false)

    init(capacity: Int) {
        state = Mutex(State(table: NATTable(capacity: capacity)))
    }
}

/// Owns the netlink sockets; used by one thread at a time (the opener, then the event thread).
@safe final class ConntrackWorker {
    let shared: ConntrackShared
    let configuration: ConntrackConfiguration
    /// Subscribed to the conntrack multicast groups; non-blocking.
    var eventSocket: OpaquePointer?
    var eventCallbacks: OpaquePointer?
    /// Dumps the table; blocking.
    var dumpSocket: OpaquePointer?
    var dumpCallbacks: OpaquePointer?
    /// Service-side keys of the entries seen by the dump in progress, nil when none runs.
    var seenInDump: Set<FlowKey>?
    /// Full dumps completed.
    var dumpsDone = 0

    init(shared: ConntrackShared, configuration: ConntrackConfiguration) throws(CaptureSourceError) {
        self.shared = shared
        self.configuration = configuration
        let context = unsafe Unmanaged.passUnretained(self).toOpaque()

        unsafe eventSocket = nl_socket_alloc()
        unsafe dumpSocket = nl_socket_alloc()
        guard let ev = unsafe eventSocket, let du = unsafe dumpSocket else {
            throw CaptureSourceError(.system, operation: "nl_socket_alloc", errno: ENOMEM, message: "Out of memory.")
        }
        unsafe nl_socket_disable_seq_check(ev)
        try Self.check(unsafe nl_connect(ev, NETLINK_NETFILTER), "nl_connect(NETLINK_NETFILTER)")
        try Self.check(unsafe nl_connect(du, NETLINK_NETFILTER), "nl_connect(NETLINK_NETFILTER)")
        _ = unsafe nl_socket_set_buffer_size(ev, Int32(clamping: configuration.receiveBufferBytes), 0)
        for group in [NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY] {
            try Self.check(unsafe nl_socket_add_membership(ev, Int32(group.rawValue)),
                           "nl_socket_add_membership(NFNLGRP_CONNTRACK_*)")
        }
        try Self.check(unsafe nl_socket_set_nonblocking(ev), "nl_socket_set_nonblocking")
        let callback: nl_recvmsg_msg_cb_t = { message, arg in
            guard let message = unsafe message, let arg = unsafe arg else { return Int32(NL_OK.rawValue) }
            unsafe Unmanaged<ConntrackWorker>.fromOpaque(arg).takeUnretainedValue().handle(message)
            return Int32(NL_OK.rawValue)
        }
        for unsafe sk in unsafe [ev, du] {
            try Self.check(unsafe nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, callback, context),
                           "nl_socket_modify_cb")
        }
        unsafe eventCallbacks = nl_socket_get_cb(ev)
        unsafe dumpCallbacks = nl_socket_get_cb(du)
    }

    deinit {
        if let eventCallbacks = unsafe eventCallbacks { unsafe nl_cb_put(eventCallbacks) }
        if let dumpCallbacks = unsafe dumpCallbacks { unsafe nl_cb_put(dumpCallbacks) }
        if let eventSocket = unsafe eventSocket { unsafe nl_socket_free(eventSocket) }
        if let dumpSocket = unsafe dumpSocket { unsafe nl_socket_free(dumpSocket) }
    }

    /// Throws a ``CaptureSourceError`` a user can act on for a negative libnl result.
    static func check(_ result: Int32, _ operation: String) throws(CaptureSourceError) {
        guard result < 0 else { return }
        let code = -result
        let detail = unsafe String(cString: nl_geterror(code))
        switch code {
        case NLE_PERM:
            throw CaptureSourceError(.permissionDenied, operation: operation, errno: EPERM,
                                     message: "Reading the conntrack table needs CAP_NET_ADMIN; run as root or add "
                                        + "the NET_ADMIN capability (\(detail)).")
        case NLE_OBJ_NOTFOUND, NLE_OPNOTSUPP, NLE_PROTO_MISMATCH, NLE_NOADDR, NLE_AF_NOSUPPORT:
            let loaded = unsafe access("/proc/sys/net/netfilter/nf_conntrack_max", F_OK) == 0
            throw CaptureSourceError(.system, operation: operation, errno: ENOENT,
                                     message: loaded
                                        ? "The kernel's conntrack netlink interface is missing; load it with "
                                            + "`modprobe nf_conntrack_netlink` (\(detail))."
                                        : "Connection tracking is not loaded; load it with `modprobe nf_conntrack "
                                            + "nf_conntrack_netlink` (\(detail)).")
        default:
            throw CaptureSourceError(.system, operation: operation, message: "libnl error \(code): \(detail).")
        }
    }

    /// Dumps the whole table; afterwards, translations the dump did not return are closed.
    func dump() throws(CaptureSourceError) {
        guard let du = unsafe dumpSocket else { return }
        var attempts = 0
        while true {
            attempts += 1
            seenInDump = []
            defer { seenInDump = nil }
            try Self.check(unsafe nfnl_ct_dump_request(du), "nfnl_ct_dump_request")
            let rc = unsafe nl_recvmsgs_report(du, dumpCallbacks)
            if rc == -NLE_DUMP_INTR && attempts < 3 { continue }  // the table changed mid-dump
            try Self.check(rc, "nl_recvmsgs(conntrack dump)")
            let seen = seenInDump ?? []
            dumpsDone += 1
            let now = Self.now()
            shared.state.withLock { s in
                s.statistics.dumps &+= 1
                s.table.closeAll(at: now) { !seen.contains($0.serviceSideKey) }
            }
            return
        }
    }

    /// Applies one conntrack message (dump entry or event) to the table.
    func handle(_ message: OpaquePointer) {
        let header = unsafe nlmsg_hdr(message)
        let group = unsafe nfnlmsg_ct_group(header)
        var parsed: OpaquePointer? = nil
        guard unsafe nfnlmsg_ct_parse(header, &parsed) == 0, let ct = unsafe parsed else {
            shared.state.withLock { $0.statistics.errors &+= 1 }
            return
        }
        defer { unsafe nfnl_ct_put(ct) }
        let translation = unsafe Self.translation(of: ct)
        let dumping = seenInDump != nil
        let isNew = group == Int32(NFNLGRP_CONNTRACK_NEW.rawValue)
        // Drops are counted once per connection: at NEW, or in the first dump.
        let countsDrop = dumping ? dumpsDone == 0 : isNew
        if dumping, let translation { seenInDump!.insert(translation.serviceSideKey) }
        let destroyed = !dumping && group == Int32(NFNLGRP_CONNTRACK_DESTROY.rawValue)
        let now = destroyed ? Self.now() : Timestamp.zero
        shared.state.withLock { s in
            if dumping {
                s.statistics.dumpedEntries &+= 1
            } else if isNew {
                s.statistics.newEvents &+= 1
            } else if destroyed {
                s.statistics.destroyEvents &+= 1
            } else {
                s.statistics.updateEvents &+= 1
            }
            guard let translation else {
                s.statistics.untranslated &+= 1
                return
            }
            if destroyed {
                s.table.close(serviceSideKey: translation.serviceSideKey, at: now)
            } else {
                s.table.update(translation, countingDrop: countsDrop)
            }
        }
    }

    /// The translation a conntrack entry describes; nil when nothing was translated (or the
    /// entry lacks a tuple).
    static func translation(of ct: OpaquePointer) -> NATTranslation? {
        guard let client = unsafe RouteNetlink.address(nfnl_ct_get_src(ct, 0)), let service = unsafe RouteNetlink.address(nfnl_ct_get_dst(ct, 0)),
              let backend = unsafe RouteNetlink.address(nfnl_ct_get_src(ct, 1)),
              let translatedClient = unsafe RouteNetlink.address(nfnl_ct_get_dst(ct, 1))
        else { return nil }
        func sourcePort(_ dir: Int32) -> UInt16 {
            unsafe nfnl_ct_test_src_port(ct, dir) != 0 ? unsafe nfnl_ct_get_src_port(ct, dir) : 0
        }
        func destinationPort(_ dir: Int32) -> UInt16 {
            unsafe nfnl_ct_test_dst_port(ct, dir) != 0 ? unsafe nfnl_ct_get_dst_port(ct, dir) : 0
        }
        func icmpID(_ dir: Int32) -> UInt16 {
            unsafe nfnl_ct_test_icmp_id(ct, dir) != 0 ? unsafe nfnl_ct_get_icmp_id(ct, dir) : 0
        }
        let proto = unsafe nfnl_ct_get_proto(ct)
        // A flow tracker keys ICMP echo on the identifier as both ports; so does this.
        let icmp = proto == IPProtocol.icmp || proto == IPProtocol.icmpv6
        let t = NATTranslation(
            protocolNumber: proto,
            client: client, clientPort: icmp ? icmpID(0) : sourcePort(0),
            service: service, servicePort: icmp ? icmpID(0) : destinationPort(0),
            backend: backend, backendPort: icmp ? icmpID(1) : sourcePort(1),
            translatedClient: translatedClient, translatedClientPort: icmp ? icmpID(1) : destinationPort(1),
            conntrackID: unsafe nfnl_ct_test_id(ct) != 0 ? unsafe nfnl_ct_get_id(ct) : 0)
        return t.isDestinationNAT || t.isSourceNAT ? t : nil
    }

    static func now() -> Timestamp {
        var ts = timespec()
        _ = unsafe clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: UInt64(ts.tv_sec), nanoseconds: UInt64(ts.tv_nsec))
    }

    /// The event loop: poll, drain, prune closed translations, re-dump on schedule or after
    /// an overrun, until the table is stopped.
    func run() {
        guard let ev = unsafe eventSocket else { return }
        let fd = unsafe nl_socket_get_fd(ev)
        var lastResync = Self.now()
        var lastPrune = lastResync
        var resyncNeeded = false
        while !shared.stopRequested.load(ordering: .acquiring) {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = unsafe poll(&pfd, 1, configuration.pollIntervalMilliseconds)
            if ready > 0 {
                // One datagram per call; stop when the socket is empty.
                while !shared.stopRequested.load(ordering: .relaxed) {
                    let rc = unsafe nl_recvmsgs_report(ev, eventCallbacks)
                    if rc > 0 { continue }
                    if rc == -NLE_NOMEM {  // ENOBUFS: the kernel dropped events
                        shared.state.withLock { $0.statistics.overruns &+= 1 }
                        resyncNeeded = true
                        continue
                    }
                    if rc < 0 && rc != -NLE_AGAIN { shared.state.withLock { $0.statistics.errors &+= 1 } }
                    break
                }
            }
            let now = Self.now()
            if now.nanoseconds(since: lastPrune) >= 1_000_000_000 {
                lastPrune = now
                let retention = configuration.closedRetentionSeconds &* 1_000_000_000
                let cutoff = Timestamp(nanoseconds: now.nanoseconds >= retention ? now.nanoseconds &- retention : 0)
                shared.state.withLock { _ = $0.table.removeClosed(endedBefore: cutoff) }
            }
            let interval = configuration.resynchronizeIntervalSeconds &* 1_000_000_000
            if resyncNeeded || (interval > 0 && now.nanoseconds(since: lastResync) >= interval) {
                resyncNeeded = false
                lastResync = now
                do { try dump() } catch { shared.state.withLock { $0.statistics.errors &+= 1 } }
            }
        }
    }
}
