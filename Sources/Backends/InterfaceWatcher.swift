public import CaptureCore
internal import CPodTapNetlink
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// Finds the pod interfaces of a node's network namespace and watches them come and go.
///
/// The watcher lists the namespace's links (an RTM_GETLINK dump through libnl-3 route), keeps
/// those a ``PodInterfaceSelector`` selects, and then follows RTNLGRP_LINK notifications:
/// every link added, removed or changed is reported to the handler as an ``Event`` within
/// milliseconds. For each pod interface it also finds the pod end: the peer's namespace (from
/// IFLA_LINK_NETNSID, matched against every namespace file with RTM_GETNSID) and the peer's
/// addresses in it, so a veth can be named as a pod. The pod's addresses usually appear a few
/// milliseconds after its veth; the watcher asks again (20 ms, doubling to 2 s, for 30 s) and
/// reports a ``Event/changed(_:previous:)`` when they are there.
///
/// The watcher runs its own thread, blocked in `poll(2)` on the netlink socket; the handler is
/// called on that thread, one event at a time, and must not call ``stop()``. Namespace work
/// (`setns(2)`) happens only on that thread.
///
/// ```swift
/// let supervisor = PodInterfaceSupervisor(start: { try CaptureThread(interface: $0) }, stop: { $0.stop() })
/// let watcher = InterfaceWatcher(handler: supervisor.handle)
/// try watcher.start()      // existing pods are reported (and started) before this returns
/// …
/// watcher.stop(); supervisor.stopAll()
/// ```
public final class InterfaceWatcher: Sendable {
    /// What changed among the node's pod interfaces.
    public enum Event: Sendable, CustomStringConvertible {
        /// A pod interface appeared (or was there at start, or became selected); it may be down.
        case added(PodInterface)
        /// A pod interface changed: up or down, carrier, name, master, or its pod end found.
        case changed(PodInterface, previous: PodInterface)
        /// A pod interface was deleted (or stopped being selected).
        case removed(PodInterface)
        /// Something the watcher could not do; it keeps running. Notifications lost to a full
        /// socket buffer are repaired by listing the links again.
        case problem(CaptureSourceError)

        public var description: String {
            switch self {
            case .added(let i): "added \(i)"
            case .changed(let i, let p): "changed \(i) (was \(p.state.rawValue)\(p.name == i.name ? "" : ", " + p.name))"
            case .removed(let i): "removed \(i)"
            case .problem(let e): "problem: \(e)"
            }
        }
    }

    /// The node namespace: an `ip netns` name, `/run/netns/NAME` or `/proc/PID/ns/net`; nil for
    /// the namespace of the thread that calls ``start()``.
    public let namespacePath: String?
    public let selector: PodInterfaceSelector
    /// How long one `poll(2)` waits at most, in milliseconds.
    public let pollTimeoutMilliseconds: Int32
    private let handler: @Sendable (Event) -> Void
    private let snapshot = WatcherSnapshot()
    private let running = Mutex<Running?>(nil)

    private struct Running: Sendable {
        var thread: pthread_t
        var wakeFD: Int32
    }

    /// - Parameters:
    ///   - namespacePath: the node's network namespace (an `ip netns` name, `/run/netns/NAME`,
    ///     `/proc/PID/ns/net`); nil: the namespace of the thread that calls ``start()``.
    ///   - handler: called on the watcher's thread for every event, in order.
    public init(
        namespacePath: String? = nil, selector: PodInterfaceSelector = PodInterfaceSelector(),
        pollTimeoutMilliseconds: Int32 = 250, handler: @escaping @Sendable (Event) -> Void
    ) {
        self.namespacePath = namespacePath
        self.selector = selector
        self.pollTimeoutMilliseconds = max(1, pollTimeoutMilliseconds)
        self.handler = handler
    }

    deinit { stop() }

    /// The pod interfaces as of the last event, ordered by ifindex.
    public var interfaces: [PodInterface] { snapshot.value }

    /// Opens the netlink sockets in the node namespace, lists its pod interfaces (handing the
    /// handler an ``Event/added(_:)`` for each before returning), then watches on a new thread.
    /// - Throws: ``CaptureSourceError`` when the namespace cannot be opened or entered, or
    ///   netlink refuses; nothing keeps running then.
    public func start() throws(CaptureSourceError) {
        let nodeFD = try NetworkNamespace.open(orCurrent: namespacePath)
        var wake: [Int32] = [-1, -1], ready: [Int32] = [-1, -1]
        guard unsafe pipe(&wake) == 0 else {
            close(nodeFD)
            throw CaptureSourceError(.system, operation: "pipe", errno: errno, message: "cannot create a pipe; the process is out of file descriptors.")
        }
        guard unsafe pipe(&ready) == 0 else {
            let e = errno
            for fd in [nodeFD] + wake { close(fd) }
            throw CaptureSourceError(.system, operation: "pipe", errno: e, message: "cannot create a pipe; the process is out of file descriptors.")
        }
        for fd in wake + ready { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let (wakeRead, wakeWrite, readyRead, readyWrite) = (wake[0], wake[1], ready[0], ready[1])
        let loop = WatcherLoop(
            nodeFD: nodeFD, nodePath: Self.describe(namespacePath), selector: selector, pollTimeoutMilliseconds: pollTimeoutMilliseconds,
            handler: handler, snapshot: snapshot, wakeFD: wakeRead, readyFD: readyWrite)
        let thread: pthread_t
        do {
            thread = try BackendThread.start(name: "podtap-netlink") { loop.run() }
        } catch {
            for fd in [nodeFD, wakeRead, wakeWrite, readyRead, readyWrite] { close(fd) }
            throw error
        }
        // The loop writes one byte once it is set up (or failed to), then closes its end.
        var byte: UInt8 = 0
        while unsafe read(readyRead, &byte, 1) < 0 && errno == EINTR {}
        close(readyRead)
        if let error = loop.setupError {
            pthread_join(thread, nil)
            close(wakeWrite)
            throw error
        }
        let previous = running.withLock { r -> Running? in
            defer { r = Running(thread: thread, wakeFD: wakeWrite) }
            return r
        }
        precondition(previous == nil, "InterfaceWatcher.start() called twice without stop()")
    }

    /// Stops the thread and waits for it; no event is delivered after this returns. Idempotent.
    /// Must not be called from the handler.
    public func stop() {
        guard let r = running.withLock({ r -> Running? in defer { r = nil }; return r }) else { return }
        precondition(pthread_equal(r.thread, pthread_self()) == 0, "InterfaceWatcher.stop() called from its own handler")
        var byte: UInt8 = 1
        _ = unsafe write(r.wakeFD, &byte, 1)
        pthread_join(r.thread, nil)
        close(r.wakeFD)
    }

    /// The node namespace as error messages name it.
    private static func describe(_ namespacePath: String?) -> String {
        namespacePath.map(NetworkNamespace.path) ?? "the caller's network namespace"
    }

    /// Lists the pod interfaces of a namespace once, with their pod ends, and returns.
    /// - Parameter namespacePath: the node namespace; nil: the calling thread's.
    public static func podInterfaces(
        namespacePath: String? = nil, selector: PodInterfaceSelector = PodInterfaceSelector()
    ) throws(CaptureSourceError) -> [PodInterface] {
        let nodeFD = try NetworkNamespace.open(orCurrent: namespacePath)
        defer { close(nodeFD) }
        let nodePath = describe(namespacePath)
        let result = try BackendThread.run(name: "podtap-netlink") { () -> Result<[PodInterface], CaptureSourceError> in
            let loop = WatcherLoop(nodeFD: nodeFD, nodePath: nodePath, selector: selector, pollTimeoutMilliseconds: 0, handler: { _ in },
                                   snapshot: WatcherSnapshot(), wakeFD: -1, readyFD: -1)
            defer { loop.closeSockets() }
            do throws(CaptureSourceError) {
                try loop.setUp(watching: false)
                return .success(loop.pods.keys.sorted().compactMap { loop.pods[$0] })
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}

final class WatcherSnapshot: Sendable {
    private let interfaces = Mutex<[PodInterface]>([])
    var value: [PodInterface] { interfaces.withLock { $0 } }
    func set(_ value: [PodInterface]) { interfaces.withLock { $0 = value } }
}

/// The watcher's state; used only on the watcher's thread (``setupError`` is read after the
/// ready byte, which orders it).
@safe final class WatcherLoop: @unchecked Sendable {
    private struct PeerRetry {
        var due: ContinuousClock.Instant
        var delay: Duration
        var deadline: ContinuousClock.Instant
    }

    static let firstRetry = Duration.milliseconds(20)
    static let longestRetry = Duration.seconds(2)
    static let giveUpAfter = Duration.seconds(30)

    let nodeFD: Int32
    /// What `nodeFD` is, for error messages.
    let nodePath: String
    let selector: PodInterfaceSelector
    let pollTimeoutMilliseconds: Int32
    let handler: @Sendable (InterfaceWatcher.Event) -> Void
    let snapshot: WatcherSnapshot
    let wakeFD: Int32
    let readyFD: Int32
    var setupError: CaptureSourceError?

    private var eventSocket: OpaquePointer?
    private var requestSocket: OpaquePointer?
    private let namespaces = NamespaceDirectory()
    private(set) var links: [Int32: RouteNetlink.Link] = [:]
    private(set) var pods: [Int32: PodInterface] = [:]
    private var retries: [Int32: PeerRetry] = [:]
    private var events: [InterfaceWatcher.Event] = []
    /// Filled by the libnl callbacks during one `nl_recvmsgs_default`.
    fileprivate var received: [(link: RouteNetlink.Link, deleted: Bool)] = []
    fileprivate var parsingDeletion = false

    init(
        nodeFD: Int32, nodePath: String, selector: PodInterfaceSelector, pollTimeoutMilliseconds: Int32,
        handler: @escaping @Sendable (InterfaceWatcher.Event) -> Void, snapshot: WatcherSnapshot, wakeFD: Int32,
        readyFD: Int32
    ) {
        self.nodeFD = nodeFD
        self.nodePath = nodePath
        self.selector = selector
        self.pollTimeoutMilliseconds = pollTimeoutMilliseconds
        self.handler = handler
        self.snapshot = snapshot
        self.wakeFD = wakeFD
        self.readyFD = readyFD
    }

    /// The thread's body: set up, report the existing pods, signal the starter, watch.
    func run() {
        do throws(CaptureSourceError) {
            try setUp(watching: true)
        } catch {
            setupError = error
            closeSockets()
            close(nodeFD)
            close(wakeFD)
            signalReady()
            return
        }
        deliver()
        signalReady()
        watch()
        closeSockets()
        close(nodeFD)
        close(wakeFD)
    }

    private func signalReady() {
        var byte: UInt8 = 1
        _ = unsafe write(readyFD, &byte, 1)
        close(readyFD)
    }

    /// Opens the sockets inside the node namespace (subscribing before the dump, so nothing
    /// falls between them), then lists the links.
    func setUp(watching: Bool) throws(CaptureSourceError) {
        let context = unsafe Unmanaged.passUnretained(self).toOpaque()
        try NetworkNamespace.onCallingThread(in: nodeFD, path: nodePath) { () throws(CaptureSourceError) in
            if watching {
                guard let sk = unsafe nl_socket_alloc() else {
                    throw CaptureSourceError(.system, operation: "nl_socket_alloc", message: "libnl could not allocate a socket; the process is out of memory.")
                }
                unsafe eventSocket = sk
                unsafe nl_socket_disable_seq_check(sk)
                _ = unsafe nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, linkMessageReceived, context)
                var rc = unsafe nl_connect(sk, NETLINK_ROUTE)
                guard rc == 0 else { throw RouteNetlink.error(rc, operation: "nl_connect(NETLINK_ROUTE)") }
                rc = unsafe nl_socket_add_membership(sk, Int32(RTNLGRP_LINK.rawValue))
                guard rc == 0 else { throw RouteNetlink.error(rc, operation: "nl_socket_add_membership(RTNLGRP_LINK)") }
                _ = unsafe nl_socket_set_buffer_size(sk, 1 << 20, 0)
                _ = unsafe nl_socket_set_nonblocking(sk)
            }
            guard let sk = unsafe nl_socket_alloc() else {
                throw CaptureSourceError(.system, operation: "nl_socket_alloc", message: "libnl could not allocate a socket; the process is out of memory.")
            }
            unsafe requestSocket = sk
            let rc = unsafe nl_connect(sk, NETLINK_ROUTE)
            guard rc == 0 else { throw RouteNetlink.error(rc, operation: "nl_connect(NETLINK_ROUTE)") }
        }
        namespaces.node = RouteNetlink.namespaceIdentity(fd: nodeFD)
        try resynchronize()
    }

    func closeSockets() {
        if let sk = unsafe eventSocket { unsafe nl_socket_free(sk) }
        if let sk = unsafe requestSocket { unsafe nl_socket_free(sk) }
        unsafe eventSocket = nil
        unsafe requestSocket = nil
    }

    // MARK: The loop

    private func watch() {
        guard let sk = unsafe eventSocket else { return }
        var fds = [
            pollfd(fd: unsafe nl_socket_get_fd(sk), events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let n = unsafe poll(&fds, 2, nextTimeout())
            if n < 0 {
                if errno == EINTR { continue }
                report(CaptureSourceError(.system, operation: "poll", errno: errno, message: "the watcher stopped; restart it."))
                deliver()
                return
            }
            if fds[1].revents != 0 { return }
            if fds[0].revents != 0 { unsafe drain(sk) }
            retryPeers()
            deliver()
        }
    }

    private func nextTimeout() -> Int32 {
        guard let due = retries.values.map(\.due).min() else { return pollTimeoutMilliseconds }
        let wait = ContinuousClock.now.duration(to: due).pollMilliseconds
        return Int32(clamping: min(Int64(pollTimeoutMilliseconds), wait))
    }

    /// Reads every pending notification and applies it; lost ones (ENOBUFS) mean a new dump.
    private func drain(_ sk: OpaquePointer) {
        received.removeAll(keepingCapacity: true)
        var overrun = false
        for _ in 0..<4096 {
            let rc = unsafe nl_recvmsgs_default(sk)
            if rc >= 0 { continue }
            if -rc == NLE_AGAIN { break }
            if -rc == NLE_NOMEM { overrun = true; break }
            report(RouteNetlink.error(rc, operation: "nl_recvmsgs(RTNLGRP_LINK)"))
            break
        }
        if overrun {
            do throws(CaptureSourceError) { try resynchronize() } catch { report(error) }
            return
        }
        // Only the last word on each link counts: a deleted veth is first set down, and the two
        // notifications usually arrive together; the pod was removed, not merely downed.
        var last: [Int32: Int] = [:]
        for (i, r) in received.enumerated() { last[r.link.index] = i }
        for (i, r) in received.enumerated() where last[r.link.index] == i { apply(r.link, deleted: r.deleted) }
        received.removeAll(keepingCapacity: true)
    }

    /// Lists every link and brings the pod table in line with it.
    private func resynchronize() throws(CaptureSourceError) {
        guard let sk = unsafe requestSocket else { return }
        let socket = unsafe RouteNetlink.Socket(borrowing: sk)
        let all = try socket.links()
        links = Dictionary(all.map { ($0.index, $0) }, uniquingKeysWith: { _, b in b })
        for index in Set(pods.keys).union(links.keys).sorted() { evaluate(index) }
    }

    private func apply(_ link: RouteNetlink.Link, deleted: Bool) {
        let oldMaster = links[link.index]?.masterIndex
        links[link.index] = deleted ? nil : link
        evaluate(link.index)
        // A link that became (or stopped being) some link's master may change selection.
        if let m = link.masterIndex { evaluate(m) }
        if let m = oldMaster, m != link.masterIndex { evaluate(m) }
    }

    private func evaluate(_ index: Int32) {
        let previous = pods[index]
        guard let link = links[index],
            selector.selects(link, isMaster: links.values.contains { $0.masterIndex == index })
        else {
            if let previous {
                pods[index] = nil
                retries[index] = nil
                events.append(.removed(previous))
            }
            return
        }
        var pod = PodInterface(link)
        if let previous, previous.peerNamespaceID == pod.peerNamespaceID, previous.peerIndex == pod.peerIndex {
            pod.peerNamespacePath = previous.peerNamespacePath
            pod.peerAddresses = previous.peerAddresses
        } else if resolvePeer(&pod) {
            retries[index] = nil
        } else {
            let now = ContinuousClock.now
            retries[index] = PeerRetry(due: now + Self.firstRetry, delay: Self.firstRetry, deadline: now + Self.giveUpAfter)
        }
        pods[index] = pod
        if let previous {
            if previous != pod { events.append(.changed(pod, previous: previous)) }
        } else {
            events.append(.added(pod))
        }
    }

    private func retryPeers() {
        let now = ContinuousClock.now
        for (index, retry) in retries where retry.due <= now {
            guard var pod = pods[index] else {
                retries[index] = nil
                continue
            }
            let previous = pod
            let complete = resolvePeer(&pod)
            if pod != previous {
                pods[index] = pod
                events.append(.changed(pod, previous: previous))
            }
            if complete {
                retries[index] = nil
            } else if now >= retry.deadline {
                retries[index] = nil
                let what = pod.peerNamespacePath == nil ? "its peer's network namespace (netnsid \(pod.peerNamespaceID ?? -1)) was not found" : "its peer has no address"
                report(CaptureSourceError(.namespace, operation: "resolve peer of \(pod.name)",
                                          message: "\(what) after \(Self.giveUpAfter); it is reported without pod addresses. Is the namespace file visible here (hostPID, /run/netns mounted)?"))
            } else {
                let delay = min(retry.delay * 2, Self.longestRetry)
                retries[index] = PeerRetry(due: now + delay, delay: delay, deadline: retry.deadline)
            }
        }
    }

    /// Finds the peer's namespace and addresses; true when a pod address is known (or the link
    /// has no peer elsewhere, so there is nothing to find).
    private func resolvePeer(_ pod: inout PodInterface) -> Bool {
        guard let nsid = pod.peerNamespaceID, let peer = pod.peerIndex, let sk = unsafe requestSocket else { return true }
        let request = unsafe RouteNetlink.Socket(borrowing: sk)
        guard let (path, fd) = namespaces.open(namespaceID: nsid, asking: request) else { return false }
        defer { close(fd) }
        pod.peerNamespacePath = path
        do throws(CaptureSourceError) {
            let socket = try RouteNetlink.Socket(inNamespace: fd, path: path)
            pod.peerAddresses = try socket.addresses(ofInterface: peer)
        } catch {
            return false
        }
        return !pod.podAddresses.isEmpty
    }

    private func report(_ error: CaptureSourceError) { events.append(.problem(error)) }

    /// Publishes the table, then hands the handler what happened, in order.
    private func deliver() {
        guard !events.isEmpty else { return }
        snapshot.set(pods.keys.sorted().compactMap { pods[$0] })
        let batch = events
        events.removeAll(keepingCapacity: true)
        for event in batch { handler(event) }
    }
}

/// libnl's valid-message callback for the event socket: copies each RTM_NEWLINK/RTM_DELLINK
/// into the loop's `received`.
private let linkMessageReceived: nl_recvmsg_msg_cb_t = { msg, context in
    let loop = unsafe Unmanaged<WatcherLoop>.fromOpaque(context!).takeUnretainedValue()
    let type = unsafe Int32(nlmsg_hdr(msg).pointee.nlmsg_type)
    guard type == Int32(RTM_NEWLINK) || type == Int32(RTM_DELLINK) else { return Int32(NL_OK.rawValue) }
    loop.parsingDeletion = type == Int32(RTM_DELLINK)
    _ = unsafe nl_msg_parse(msg, { object, context in
        // The bridge also reports its ports on RTNLGRP_LINK, as ifi_family AF_BRIDGE messages
        // with no kind and no peer (and an RTM_DELLINK when a port leaves): not link changes.
        guard let object = unsafe object, unsafe rtnl_link_get_family(object) == AF_UNSPEC else { return }
        let loop = unsafe Unmanaged<WatcherLoop>.fromOpaque(context!).takeUnretainedValue()
        loop.received.append((unsafe RouteNetlink.Link(object), loop.parsingDeletion))
    }, context)
    return Int32(NL_OK.rawValue)
}

/// Which namespace file holds the namespace a netnsid names, remembered between calls.
final class NamespaceDirectory {
    var node: RouteNetlink.NamespaceIdentity?
    private var known: [Int32: (path: String, identity: RouteNetlink.NamespaceIdentity)] = [:]

    /// Opens the namespace the node namespace calls `namespaceID`; nil when no file names it.
    /// Tries the remembered file first (ids are reused once a namespace dies), then `/run/netns`,
    /// then every process's `/proc/PID/ns/net`, each namespace asked once.
    func open(namespaceID: Int32, asking socket: borrowing RouteNetlink.Socket) -> (path: String, fd: Int32)? {
        if let entry = known[namespaceID] {
            if let fd = try? NetworkNamespace.open(entry.path) {
                if RouteNetlink.namespaceIdentity(fd: fd) == entry.identity,
                    (try? socket.namespaceID(of: fd)) == namespaceID
                {
                    return (entry.path, fd)
                }
                close(fd)
            }
            known[namespaceID] = nil
        }
        var seen = Set<RouteNetlink.NamespaceIdentity>()
        if let node { seen.insert(node) }
        for processes in [false, true] {
            let paths = processes ? RouteNetlink.processNamespaceFiles() : RouteNetlink.boundNamespaceFiles()
            for path in paths {
                guard let fd = try? NetworkNamespace.open(path) else { continue }
                guard let identity = RouteNetlink.namespaceIdentity(fd: fd), seen.insert(identity).inserted,
                    let id = try? socket.namespaceID(of: fd)
                else {
                    close(fd)
                    continue
                }
                if known[id]?.identity != identity || known[id]?.path.hasPrefix("/proc/") == true && !path.hasPrefix("/proc/") {
                    known[id] = (path, identity)
                }
                if id == namespaceID { return (path, fd) }
                close(fd)
            }
        }
        return nil
    }
}
