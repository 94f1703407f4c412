public import CaptureCore

/// IP → identity at a moment in time, for every pod, Service, node and workload the informers
/// (or a snapshot) delivered.
///
/// ## Model
/// Every (address, holder) pair is an interval `[from, to)` in nanoseconds since the epoch:
/// a pod holds its `status.podIPs` (IPv4 and IPv6) from the event that gave them until the
/// event that removed them, which for a Terminating pod is its DELETED event — so the old and
/// the new pod of a reused address (`10.244.1.7`) are both named right for flows of their own
/// time, and a replacement that gets the address while the old pod still terminates
/// (`10.244.1.4`) wins for later lookups without being dropped when the old pod goes.
/// Service ClusterIPs and node InternalIP/ExternalIP addresses are intervals the same way.
/// hostNetwork pods hold their node's address flagged as shared: the address names the node
/// unless the lookup's port is one the pod declares (container or host port).
/// Anything else is ``EndpointKind/cluster`` when inside a configured or learned (node
/// `podCIDRs`) range, ``EndpointKind/world`` otherwise.
///
/// ## Lookups
/// An open-addressing table per family maps the address to the newest interval of its chain
/// (newest `from` first); a lookup at the current time, or at any time after the newest
/// holder arrived, reads one slot, one interval and one 32-byte ``EndpointIdentity`` — no
/// locks, no allocation, no `String`. Older intervals are only walked for earlier times.
///
/// ## Threading
/// `ClusterIndex` is a value type (copy-on-write arrays): one writer applies events to its
/// copy, readers use their own copies, which never change under them. ``SharedClusterIndex``
/// packages that: the informers' task calls `update`, flow enrichers take a `snapshot()`
/// now and then (per batch) and look up lock-free on it. The writer's first change after a
/// snapshot was taken copies the tables once (O(pods): 3 ms at 10,000 pods, measured in
/// Benchmarks/results/k8smeta-2026-11-21.md); later changes cost microseconds.
public struct ClusterIndex: Sendable {
    /// Which addresses count as "inside the cluster" when no object names them.
    public struct Configuration: Sendable {
        /// Pod and Service ranges (and anything else that should read "cluster", not "world").
        public var clusterRanges: [CIDR]
        /// Adds each node's `spec.podCIDRs` to the cluster ranges.
        public var learnsPodCIDRs: Bool

        public init(clusterRanges: [CIDR] = [], learnsPodCIDRs: Bool = true) {
            self.clusterRanges = clusterRanges
            self.learnsPodCIDRs = learnsPodCIDRs
        }
    }

    /// A lookup time meaning "now": after every holder's start, before every open end.
    @usableFromInline static let current: UInt64 = .max - 1
    /// The end of an interval that is still open.
    static let open: UInt64 = .max

    struct Interval: Sendable {
        /// The entity (index into `entities`) holding the address.
        var holder: UInt32
        /// The next older interval of the same address (0 = none).
        var older: UInt32
        var from: UInt64
        var to: UInt64
        var hostNetwork: Bool
    }

    struct Held: Sendable, Hashable {
        var address: IPAddress
        var interval: UInt32
    }

    struct PodRecord: Sendable {
        var namespace: String
        var name: String
        var uid: String
        var entity: UInt32
        var held: [Held]
        var hostNetwork: Bool
        var ports: [UInt16]
        var controller: OwnerReference?
        var labels: [String: String]
        var nodeName: String?
        var phase: String?
        var terminating: Bool
    }

    struct ServiceRecord: Sendable {
        var namespace: String
        var name: String
        var entity: UInt32
        var held: [Held]
        var ports: [Service.ServicePort]
    }

    struct NodeRecord: Sendable {
        var name: String
        var held: [Held]
        var podCIDRs: [CIDR]
    }

    struct SliceRecord: Sendable {
        var namespace: String
        var serviceName: String
        var backends: [ServiceBackend]
    }

    struct WorkloadKey: Sendable, Hashable {
        var kind: String
        var namespace: String
        var name: String
    }

    struct NamespacedName: Sendable, Hashable {
        var namespace: String
        var name: String
    }

    /// The interned names the identities refer to.
    public internal(set) var strings = StringTable()
    public internal(set) var configuration: Configuration

    var v4 = AddressTable<UInt32>()
    var v6 = AddressTable<IPv6Key>()
    /// Index 0 is a sentinel ("none").
    var intervals: [Interval] = [Interval(holder: 0, older: 0, from: 0, to: 0, hostNetwork: false)]
    var freeIntervals: [UInt32] = []
    /// Index 0 is the unknown identity.
    var entities: [EndpointIdentity] = [.unknown]
    /// Entities of deleted objects no interval names any more (found by ``prune(endedBefore:)``).
    var freeEntities: [UInt32] = []

    var pods: [String: PodRecord] = [:]
    var podUIDs: [NamespacedName: String] = [:]
    var services: [String: ServiceRecord] = [:]
    var nodes: [String: NodeRecord] = [:]
    var nodeEntities: [String: UInt32] = [:]
    var slices: [String: SliceRecord] = [:]
    var workloads: [WorkloadKey: OwnerReference?] = [:]
    var workloadUIDs: [String: WorkloadKey] = [:]
    /// Declared ports of hostNetwork pods, by entity.
    var hostNetworkPorts: [UInt32: [UInt16]] = [:]
    /// Services whose EndpointSlices list a pod (by targetRef) or an address.
    var backingByPod: [NamespacedName: [NamespacedName]] = [:]
    var backingByAddress: [IPAddress: [NamespacedName]] = [:]
    var ranges: [CIDR] = []

    /// An empty index.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        ranges = configuration.clusterRanges
    }

    // MARK: Lookups

    /// The identity of the holder of an IPv4 address (host-order value, `10.0.0.1` is
    /// `0x0A00_0001`) at `time` (nil: now). `port` (0: none) picks a hostNetwork pod out of its
    /// node's address when it declares that port. The hot path: no allocation, no lock.
    public func identity(ipv4 value: UInt32, port: UInt16 = 0, at time: Timestamp? = nil) -> EndpointIdentity {
        let t = time?.nanoseconds ?? Self.current
        let head = v4.head(value)
        if head & hostNetworkBit == 0 {
            var i = head
            while i != 0 {
                let interval = intervals[Int(i)]
                if interval.from <= t && t < interval.to { return entities[Int(interval.holder)] }
                i = interval.older
            }
            return external(IPAddress(ipv4: value))
        }
        return shared(head & ~hostNetworkBit, port: port, at: t, address: IPAddress(ipv4: value))
    }

    /// The identity of the holder of `address` (IPv4 or IPv6) at `time` (nil: now); see
    /// ``identity(ipv4:port:at:)``.
    public func identity(of address: IPAddress, port: UInt16 = 0, at time: Timestamp? = nil) -> EndpointIdentity {
        if address.isIPv4 { return identity(ipv4: address.ipv4Value, port: port, at: time) }
        let t = time?.nanoseconds ?? Self.current
        let head = v6.head(IPv6Key(high: address.high, low: address.low)) & ~hostNetworkBit
        return shared(head, port: port, at: t, address: address)
    }

    /// Walks a whole chain: the newest interval covering `t` that is not a hostNetwork pod
    /// (a node, a pod, a Service), unless a hostNetwork pod covering `t` declares `port`.
    @inline(never)
    func shared(_ head: UInt32, port: UInt16, at t: UInt64, address: IPAddress) -> EndpointIdentity {
        var own: UInt32 = 0
        var hostNetworkPod: UInt32 = 0
        var portMatch: UInt32 = 0
        var i = head
        while i != 0 {
            let interval = intervals[Int(i)]
            if interval.from <= t && t < interval.to {
                if !interval.hostNetwork {
                    if own == 0 { own = interval.holder }
                } else {
                    if hostNetworkPod == 0 { hostNetworkPod = interval.holder }
                    if port != 0, portMatch == 0, hostNetworkPorts[interval.holder]?.contains(port) == true {
                        portMatch = interval.holder
                    }
                }
            }
            i = interval.older
        }
        if portMatch != 0 { return entities[Int(portMatch)] }
        if own != 0 { return entities[Int(own)] }
        if hostNetworkPod != 0 {
            // The node is not (yet) known by its addresses: name it from the pod's spec.nodeName.
            let pod = entities[Int(hostNetworkPod)]
            return EndpointIdentity(kind: .node, name: pod.node, node: pod.node)
        }
        return external(address)
    }

    /// ``EndpointKind/cluster`` or ``EndpointKind/world`` for an address no object holds.
    public func external(_ address: IPAddress) -> EndpointIdentity {
        for range in ranges where range.contains(address) { return .cluster }
        return .world
    }

    /// The pod behind a host-side veth, from the addresses of the interface's peer in the pod's
    /// network namespace (as the interface watcher reports them). Loopback and link-local
    /// addresses are skipped; nil when none names a pod (hostNetwork pods have no veth).
    public func pod(forInterfaceAddresses addresses: [IPAddress], at time: Timestamp? = nil) -> EndpointIdentity? {
        for address in addresses {
            if address.isIPv4 {
                if address.ipv4Value >> 24 == 127 || address.ipv4Value >> 16 == 0xA9FE { continue }
            } else if address.high >> 54 == 0x3FA || (address.high == 0 && address.low == 1) {
                continue  // fe80::/10, ::1
            }
            let identity = identity(of: address, at: time)
            if identity.kind == .pod { return identity }
        }
        return nil
    }

    // MARK: Rendering

    /// The string of an interned ID.
    public subscript(id: StringTable.ID) -> String { strings[id] }

    /// "namespace/name" of a pod or Service identity, the node name for a node, nil otherwise.
    public func objectName(_ identity: EndpointIdentity) -> String? {
        switch identity.kind {
        case .pod, .hostNetworkPod, .service: "\(strings[identity.namespace])/\(strings[identity.name])"
        case .node: strings[identity.name]
        case .unknown, .cluster, .world: nil
        }
    }

    /// "Deployment/web" (the pod's top-level owner), nil without one.
    public func workloadName(_ identity: EndpointIdentity) -> String? {
        identity.workloadName == 0 ? nil : "\(strings[identity.workloadKind])/\(strings[identity.workloadName])"
    }

    /// "namespace/name" of the Service (a pod's first backing Service, or the Service itself).
    public func serviceName(_ identity: EndpointIdentity) -> String? {
        identity.serviceName == 0 ? nil : "\(strings[identity.serviceNamespace])/\(strings[identity.serviceName])"
    }

    /// The node's name, nil when not known.
    public func nodeName(_ identity: EndpointIdentity) -> String? {
        identity.node == 0 ? nil : strings[identity.node]
    }

    /// One short label for an end: "pod demo/web-7r2j6", "node kapi-worker",
    /// "service demo/web", "cluster", "world".
    public func describe(_ identity: EndpointIdentity) -> String {
        switch identity.kind {
        case .pod, .hostNetworkPod, .service, .node: "\(identity.kind.name) \(objectName(identity) ?? "")"
        case .unknown, .cluster, .world: identity.kind.description
        }
    }

    // MARK: Queries (not on the hot path)

    /// What the index knows about a live pod.
    public struct PodInfo: Sendable, Hashable {
        public var namespace: String
        public var name: String
        public var uid: String
        public var labels: [String: String]
        public var nodeName: String?
        public var phase: String?
        /// The addresses it holds now.
        public var addresses: [IPAddress]
        public var hostNetwork: Bool
        /// Deleted gracefully (has a deletionTimestamp) but still present.
        public var isTerminating: Bool
        public var identity: EndpointIdentity
    }

    /// The live pod `namespace/name`, nil when unknown or deleted.
    public func pod(namespace: String, name: String) -> PodInfo? {
        guard let uid = podUIDs[NamespacedName(namespace: namespace, name: name)], let r = pods[uid] else { return nil }
        return PodInfo(
            namespace: r.namespace, name: r.name, uid: r.uid, labels: r.labels, nodeName: r.nodeName, phase: r.phase,
            addresses: r.held.map(\.address), hostNetwork: r.hostNetwork, isTerminating: r.terminating,
            identity: entities[Int(r.entity)])
    }

    /// Live pods (number).
    public var podCount: Int { pods.count }

    /// The owner chain of a live pod, nearest first: `[ReplicaSet web-x, Deployment web]`.
    /// Owners not (yet) known end the chain after the reference that names them.
    public func owners(namespace: String, name: String) -> [OwnerReference] {
        guard let uid = podUIDs[NamespacedName(namespace: namespace, name: name)], let r = pods[uid],
            var current = r.controller
        else { return [] }
        var chain = [current]
        while chain.count < 8, let entry = workloads[WorkloadKey(kind: current.kind, namespace: namespace, name: current.name)],
            let parent = entry
        {
            chain.append(parent)
            current = parent
        }
        return chain
    }

    /// One endpoint of a Service's EndpointSlices.
    public struct ServiceBackend: Sendable, Hashable {
        public var addresses: [IPAddress]
        /// The pod of `targetRef` (nil for addresses that are not pods, like the apiserver's).
        public var podNamespace: String?
        public var podName: String?
        public var ready: Bool
        public var serving: Bool
        public var terminating: Bool
    }

    /// Every endpoint the Service's slices list, sorted by address.
    public func backends(ofService namespace: String, _ name: String) -> [ServiceBackend] {
        slices.values.filter { $0.namespace == namespace && $0.serviceName == name }.flatMap(\.backends)
            .sorted { ($0.addresses.first ?? .zero) < ($1.addresses.first ?? .zero) }
    }

    /// "namespace/name" of every Service whose EndpointSlices list this pod (by targetRef, or
    /// by one of its addresses), sorted.
    public func services(backedBy namespace: String, pod name: String) -> [String] {
        guard let uid = podUIDs[NamespacedName(namespace: namespace, name: name)], let r = pods[uid] else { return [] }
        return backingServices(r).map { "\($0.namespace)/\($0.name)" }
    }

    /// The ports of a live Service, nil when unknown.
    public func servicePorts(namespace: String, name: String) -> [Service.ServicePort]? {
        services.values.first { $0.namespace == namespace && $0.name == name }?.ports
    }

    /// The ranges counted as "cluster": configured plus learned node pod CIDRs.
    public var clusterRanges: [CIDR] { ranges }

    /// Approximate bytes held by the lookup tables and records (for the memory benchmark; the
    /// dictionaries' own overhead is estimated).
    public var approximateBytes: Int {
        v4.bytes + v6.bytes + intervals.capacity * MemoryLayout<Interval>.stride
            + entities.capacity * MemoryLayout<EndpointIdentity>.stride
    }
}
