public import CaptureCore

// Applying informer events. Every `apply` takes the moment the event was observed: addresses
// an event gives start their interval then, addresses it takes away (or a DELETED event, or an
// object missing from a relist) end theirs then.
extension ClusterIndex {
    // MARK: Pods

    /// Applies a pod event observed at `time`.
    public mutating func apply(_ event: WatchEvent<Pod>, at time: Timestamp) {
        let t = time.nanoseconds
        switch event {
        case .added(let pod), .modified(let pod): upsert(pod, at: t)
        case .deleted(let pod): removePod(uid: pod.metadata.uid, at: t)
        case .replaced(let list, _):
            let keep = Set(list.map(\.metadata.uid))
            for uid in pods.keys where !keep.contains(uid) { removePod(uid: uid, at: t) }
            for pod in list { upsert(pod, at: t) }
        case .bookmark: break
        }
    }

    mutating func upsert(_ pod: Pod, at t: UInt64) {
        let meta = pod.metadata
        let namespace = meta.namespace ?? ""
        let hostNetwork = pod.spec.hostNetwork == true
        var record: PodRecord
        if let existing = pods[meta.uid] {
            record = existing
        } else {
            let entity = newEntity(EndpointIdentity.unknown)
            record = PodRecord(
                namespace: namespace, name: meta.name, uid: meta.uid, entity: entity, held: [], hostNetwork: hostNetwork,
                ports: [], controller: nil, labels: [:], nodeName: nil, phase: nil, terminating: false)
            podUIDs[NamespacedName(namespace: namespace, name: meta.name)] = meta.uid
        }
        record.controller = meta.controller
        _ = strings.intern(namespace)
        _ = strings.intern(meta.name)
        if let node = pod.spec.nodeName { _ = strings.intern(node) }
        if let c = meta.controller {
            _ = strings.intern(c.kind)
            _ = strings.intern(c.name)
        }
        record.labels = meta.labels ?? [:]
        record.nodeName = pod.spec.nodeName
        record.phase = pod.status.phase
        record.terminating = meta.deletionTimestamp != nil
        var ports: [UInt16] = []
        for container in pod.spec.containers ?? [] {
            for p in container.ports ?? [] {
                for n in [p.containerPort, p.hostPort ?? 0] where n > 0 && n <= 65535 && !ports.contains(UInt16(n)) {
                    ports.append(UInt16(n))
                }
            }
        }
        record.ports = ports
        // A pod's hostNetwork setting cannot change; if the API says otherwise, re-file its addresses.
        if record.hostNetwork != hostNetwork {
            for h in record.held { close(h, at: t) }
            record.held = []
            record.hostNetwork = hostNetwork
        }
        if hostNetwork {
            hostNetworkPorts[record.entity] = ports
            if let node = record.nodeName { _ = nodeEntity(node) }
        }
        let addresses = pod.ips.compactMap { IPAddress($0) }.filter { $0 != .zero && !($0.isIPv4 && $0.ipv4Value == 0) }
        record.held = update(record.held, to: addresses, holder: record.entity, hostNetwork: hostNetwork, at: t)
        pods[meta.uid] = record
        entities[Int(record.entity)] = identity(of: record)
    }

    mutating func removePod(uid: String, at t: UInt64) {
        guard let record = pods.removeValue(forKey: uid) else { return }
        for h in record.held { close(h, at: t) }
        let key = NamespacedName(namespace: record.namespace, name: record.name)
        if podUIDs[key] == uid { podUIDs[key] = nil }
        // The entity stays: intervals that ended keep naming the pod for earlier times.
    }

    func identity(of r: PodRecord) -> EndpointIdentity {
        var identity = EndpointIdentity(kind: r.hostNetwork ? .hostNetworkPod : .pod)
        identity.namespace = strings.id(of: r.namespace) ?? 0
        identity.name = strings.id(of: r.name) ?? 0
        identity.node = r.nodeName.flatMap { strings.id(of: $0) } ?? 0
        if let owner = topOwner(namespace: r.namespace, r.controller) {
            identity.workloadKind = strings.id(of: owner.kind) ?? 0
            identity.workloadName = strings.id(of: owner.name) ?? 0
        }
        if let service = backingServices(r).first {
            identity.serviceNamespace = strings.id(of: service.namespace) ?? 0
            identity.serviceName = strings.id(of: service.name) ?? 0
        }
        return identity
    }

    func topOwner(namespace: String, _ controller: OwnerReference?) -> OwnerReference? {
        guard var current = controller else { return nil }
        var depth = 0
        while depth < 8, let entry = workloads[WorkloadKey(kind: current.kind, namespace: namespace, name: current.name)],
            let parent = entry
        {
            current = parent
            depth += 1
        }
        return current
    }

    func backingServices(_ r: PodRecord) -> [NamespacedName] {
        var result = backingByPod[NamespacedName(namespace: r.namespace, name: r.name)] ?? []
        if !r.hostNetwork {
            for h in r.held { result += backingByAddress[h.address] ?? [] }
        }
        return Array(Set(result)).sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
    }

    /// Recomputes the identities of the live pods in `namespaces` (all when nil) after owners or
    /// EndpointSlices there changed. The names they need are interned already.
    mutating func refreshPodIdentities(in namespaces: Set<String>? = nil) {
        for (_, r) in pods where namespaces?.contains(r.namespace) ?? true {
            entities[Int(r.entity)] = identity(of: r)
        }
    }

    // MARK: Services

    /// Applies a Service event observed at `time`.
    public mutating func apply(_ event: WatchEvent<Service>, at time: Timestamp) {
        let t = time.nanoseconds
        switch event {
        case .added(let s), .modified(let s): upsert(s, at: t)
        case .deleted(let s): removeService(uid: s.metadata.uid, at: t)
        case .replaced(let list, _):
            let keep = Set(list.map(\.metadata.uid))
            for uid in services.keys where !keep.contains(uid) { removeService(uid: uid, at: t) }
            for s in list { upsert(s, at: t) }
        case .bookmark: break
        }
    }

    mutating func upsert(_ service: Service, at t: UInt64) {
        let meta = service.metadata
        let namespace = meta.namespace ?? ""
        var record: ServiceRecord
        if let existing = services[meta.uid] {
            record = existing
        } else {
            let ns = strings.intern(namespace), name = strings.intern(meta.name)
            let entity = newEntity(
                EndpointIdentity(kind: .service, namespace: ns, name: name, serviceNamespace: ns, serviceName: name))
            record = ServiceRecord(namespace: namespace, name: meta.name, entity: entity, held: [], ports: [])
        }
        record.ports = service.spec.ports ?? []
        let addresses = service.ips.compactMap { IPAddress($0) }
        record.held = update(record.held, to: addresses, holder: record.entity, hostNetwork: false, at: t)
        services[meta.uid] = record
    }

    mutating func removeService(uid: String, at t: UInt64) {
        guard let record = services.removeValue(forKey: uid) else { return }
        for h in record.held { close(h, at: t) }
    }

    // MARK: Nodes

    /// Applies a Node event observed at `time`. Nodes can gain addresses later (an ExternalIP).
    public mutating func apply(_ event: WatchEvent<Node>, at time: Timestamp) {
        let t = time.nanoseconds
        switch event {
        case .added(let n), .modified(let n): upsert(n, at: t)
        case .deleted(let n): removeNode(name: n.metadata.name, at: t)
        case .replaced(let list, _):
            let keep = Set(list.map(\.metadata.name))
            for name in nodes.keys where !keep.contains(name) { removeNode(name: name, at: t) }
            for n in list { upsert(n, at: t) }
        case .bookmark: break
        }
    }

    mutating func upsert(_ node: Node, at t: UInt64) {
        let name = node.metadata.name
        let entity = nodeEntity(name)
        var record = nodes[name] ?? NodeRecord(name: name, held: [], podCIDRs: [])
        let addresses = node.ips.compactMap { IPAddress($0) }
        record.held = update(record.held, to: addresses, holder: entity, hostNetwork: false, at: t)
        let cidrs = (node.spec?.podCIDRs ?? node.spec?.podCIDR.map { [$0] } ?? []).compactMap { CIDR($0) }
        let changed = cidrs != record.podCIDRs
        record.podCIDRs = cidrs
        nodes[name] = record
        if changed { recomputeRanges() }
    }

    mutating func removeNode(name: String, at t: UInt64) {
        guard let record = nodes.removeValue(forKey: name) else { return }
        for h in record.held { close(h, at: t) }
        if !record.podCIDRs.isEmpty { recomputeRanges() }
    }

    /// The entity naming node `name` (created on first use, also for nodes known only from a
    /// hostNetwork pod's `spec.nodeName`).
    mutating func nodeEntity(_ name: String) -> UInt32 {
        if let e = nodeEntities[name] { return e }
        let id = strings.intern(name)
        let e = newEntity(EndpointIdentity(kind: .node, name: id, node: id))
        nodeEntities[name] = e
        return e
    }

    mutating func recomputeRanges() {
        var all = configuration.clusterRanges
        if configuration.learnsPodCIDRs {
            for name in nodes.keys.sorted() {
                for c in nodes[name]?.podCIDRs ?? [] where !all.contains(c) { all.append(c) }
            }
        }
        ranges = all
    }

    // MARK: EndpointSlices

    /// Applies an EndpointSlice event observed at `time`: which pods (by targetRef) and which
    /// addresses back which Service. Pods' identities name their first backing Service.
    public mutating func apply(_ event: WatchEvent<EndpointSlice>, at time: Timestamp) {
        var touched: Set<String>? = nil
        switch event {
        case .added(let s), .modified(let s):
            let record = sliceRecord(s)
            if let before = namespaces(of: slices[s.metadata.uid]), let after = namespaces(of: record) {
                touched = before.union(after)
            }
            slices[s.metadata.uid] = record
        case .deleted(let s):
            touched = namespaces(of: slices[s.metadata.uid])
            slices[s.metadata.uid] = nil
        case .replaced(let list, _):
            slices = [:]
            for s in list { slices[s.metadata.uid] = sliceRecord(s) }
        case .bookmark: return
        }
        rebuildBacking(refreshing: touched)
    }

    func sliceRecord(_ s: EndpointSlice) -> SliceRecord {
        let namespace = s.metadata.namespace ?? ""
        let backends = (s.endpoints ?? []).map { e in
            let isPod = e.targetRef?.kind == nil || e.targetRef?.kind == "Pod"
            return ServiceBackend(
                addresses: e.addresses.compactMap { IPAddress($0) },
                podNamespace: isPod ? e.targetRef.flatMap { $0.name == nil ? nil : ($0.namespace ?? namespace) } : nil,
                podName: isPod ? e.targetRef?.name : nil,
                ready: e.conditions?.ready ?? true, serving: e.conditions?.serving ?? (e.conditions?.ready ?? true),
                terminating: e.conditions?.terminating ?? false)
        }
        return SliceRecord(namespace: namespace, serviceName: s.serviceName ?? "", backends: backends)
    }

    /// The namespaces whose pods a slice can name (its own, its targetRefs'; all for address-only
    /// endpoints, which match pods by address).
    func namespaces(of slice: SliceRecord?) -> Set<String>? {
        guard let slice else { return [] }
        var result: Set<String> = [slice.namespace]
        for b in slice.backends {
            guard let ns = b.podNamespace else { return nil }
            result.insert(ns)
        }
        return result
    }

    mutating func rebuildBacking(refreshing namespaces: Set<String>?) {
        var byPod: [NamespacedName: [NamespacedName]] = [:]
        var byAddress: [IPAddress: [NamespacedName]] = [:]
        for slice in slices.values where !slice.serviceName.isEmpty {
            let service = NamespacedName(namespace: slice.namespace, name: slice.serviceName)
            _ = strings.intern(slice.namespace)
            _ = strings.intern(slice.serviceName)
            for b in slice.backends {
                if let ns = b.podNamespace, let name = b.podName {
                    byPod[NamespacedName(namespace: ns, name: name), default: []].append(service)
                } else {
                    for a in b.addresses { byAddress[a, default: []].append(service) }
                }
            }
        }
        backingByPod = byPod
        backingByAddress = byAddress
        refreshPodIdentities(in: namespaces)
    }

    // MARK: Workloads

    /// Applies a ReplicaSet, Deployment, StatefulSet, DaemonSet or Job event: its controller
    /// reference links pods to their top-level owner (ReplicaSet → Deployment, Job → CronJob).
    public mutating func apply<M: WorkloadMarker>(_ event: WatchEvent<Workload<M>>, at time: Timestamp) {
        let kind = M.kind.kind
        var touched: Set<String>? = nil
        switch event {
        case .added(let w), .modified(let w):
            upsertWorkload(w.metadata, kind: kind)
            touched = [w.metadata.namespace ?? ""]
        case .deleted(let w):
            removeWorkload(uid: w.metadata.uid)
            touched = [w.metadata.namespace ?? ""]
        case .replaced(let list, _):
            let keep = Set(list.map(\.metadata.uid))
            for (uid, key) in workloadUIDs where key.kind == kind && !keep.contains(uid) { removeWorkload(uid: uid) }
            for w in list { upsertWorkload(w.metadata, kind: kind) }
        case .bookmark: return
        }
        refreshPodIdentities(in: touched)
    }

    mutating func upsertWorkload(_ meta: ObjectMeta, kind: String) {
        let key = WorkloadKey(kind: kind, namespace: meta.namespace ?? "", name: meta.name)
        let controller = meta.controller
        workloads[key] = .some(controller)
        workloadUIDs[meta.uid] = key
        _ = strings.intern(kind)
        _ = strings.intern(meta.name)
        if let controller {
            _ = strings.intern(controller.kind)
            _ = strings.intern(controller.name)
        }
    }

    mutating func removeWorkload(uid: String) {
        guard let key = workloadUIDs.removeValue(forKey: uid) else { return }
        workloads[key] = nil
    }

    // MARK: Intervals

    mutating func newEntity(_ identity: EndpointIdentity) -> UInt32 {
        if let free = freeEntities.popLast() {
            entities[Int(free)] = identity
            return free
        }
        entities.append(identity)
        return UInt32(truncatingIfNeeded: entities.count - 1)
    }

    mutating func newEntity(_ kind: EndpointKind) -> UInt32 { newEntity(EndpointIdentity(kind: kind)) }

    /// Ends the intervals of addresses no longer held and starts intervals for new ones.
    mutating func update(_ held: [Held], to addresses: [IPAddress], holder: UInt32, hostNetwork: Bool, at t: UInt64)
        -> [Held]
    {
        var result: [Held] = []
        result.reserveCapacity(addresses.count)
        for h in held {
            if addresses.contains(h.address) { result.append(h) } else { close(h, at: t) }
        }
        for a in addresses where !result.contains(where: { $0.address == a }) {
            result.append(Held(address: a, interval: open(a, holder: holder, from: t, hostNetwork: hostNetwork)))
        }
        return result
    }

    /// Starts an interval of `holder` on `address` at `from`, placed in the address's chain so
    /// that `from` decreases along it (the newest holder first).
    mutating func open(_ address: IPAddress, holder: UInt32, from: UInt64, hostNetwork: Bool) -> UInt32 {
        let index: UInt32
        var interval = Interval(holder: holder, older: 0, from: from, to: Self.open, hostNetwork: hostNetwork)
        if let free = freeIntervals.popLast() {
            index = free
        } else {
            index = UInt32(truncatingIfNeeded: intervals.count)
            intervals.append(interval)
        }
        let raw = chainHead(address)
        let flag = raw & hostNetworkBit
        let head = raw & ~hostNetworkBit
        if head == 0 || intervals[Int(head)].from <= from {
            interval.older = head
            intervals[Int(index)] = interval
            setChainHead(address, index | flag | (hostNetwork ? hostNetworkBit : 0))
        } else {
            var previous = head
            while case let next = intervals[Int(previous)].older, next != 0, intervals[Int(next)].from > from {
                previous = next
            }
            interval.older = intervals[Int(previous)].older
            intervals[Int(index)] = interval
            intervals[Int(previous)].older = index
            if hostNetwork { setChainHead(address, head | hostNetworkBit) }
        }
        return index
    }

    /// Ends an interval at `t` (never before it started).
    mutating func close(_ h: Held, at t: UInt64) {
        let i = Int(h.interval)
        guard i > 0, i < intervals.count else { return }
        intervals[i].to = max(t, intervals[i].from)
    }

    func chainHead(_ address: IPAddress) -> UInt32 {
        if address.isIPv4 { return v4.head(address.ipv4Value) }
        // IPv6 chains keep the hostNetwork bit too (hostNetwork pods of IPv6 nodes).
        return v6.head(IPv6Key(high: address.high, low: address.low))
    }

    mutating func setChainHead(_ address: IPAddress, _ head: UInt32) {
        if address.isIPv4 { v4.setHead(address.ipv4Value, head) } else { v6.setHead(IPv6Key(high: address.high, low: address.low), head) }
    }

    /// Forgets intervals that ended before `time` (flows older than that are no longer named
    /// by the holders of those intervals). Call it now and then on a long-running index.
    public mutating func prune(endedBefore time: Timestamp) {
        let t = time.nanoseconds
        var keys: [IPAddress] = []
        for s in v4.slots where s.key != 0 && s.head != 0 { keys.append(IPAddress(ipv4: s.key)) }
        for s in v6.slots where s.key != .empty && s.head != 0 { keys.append(IPAddress(high: s.key.high, low: s.key.low)) }
        for address in keys {
            let raw = chainHead(address)
            var flag = raw & hostNetworkBit
            var head = raw & ~hostNetworkBit
            var previous: UInt32 = 0
            var i = head
            var anyHostNetwork = false
            while i != 0 {
                let interval = intervals[Int(i)]
                if interval.to != Self.open && interval.to <= t {
                    if previous == 0 { head = interval.older } else { intervals[Int(previous)].older = interval.older }
                    freeIntervals.append(i)
                } else {
                    previous = i
                    if interval.hostNetwork { anyHostNetwork = true }
                }
                i = interval.older
            }
            if !anyHostNetwork { flag = 0 }
            setChainHead(address, head | flag)
        }
        // Entities of deleted objects that no interval names any more are reused.
        var used = [Bool](repeating: false, count: entities.count)
        used[0] = true
        let freed = Set(freeIntervals)
        for i in 1..<intervals.count where !freed.contains(UInt32(i)) { used[Int(intervals[i].holder)] = true }
        for r in pods.values { used[Int(r.entity)] = true }
        for r in services.values { used[Int(r.entity)] = true }
        for e in nodeEntities.values { used[Int(e)] = true }
        for e in freeEntities { used[Int(e)] = true }  // already free
        for (e, isUsed) in used.enumerated() where !isUsed {
            let id = UInt32(e)
            freeEntities.append(id)
            hostNetworkPorts[id] = nil
            entities[e] = .unknown
        }
    }
}
