/// What network address translation did to one connection: the kernel's connection-tracking
/// entry for a flow addressed to a Service, reduced to the addresses that matter.
///
/// ```
///   client ──► service (ClusterIP:port)        original tuple: the client's veth sees this
///   client ◄── backend (pod:targetPort)         reply tuple:    the backend's veth sees
///                                               client (or its SNAT address) ↔ backend
/// ```
///
/// Ports are host order; ports are 0 for protocols without ports. Filled by
/// `ConntrackTable` (Backends) from conntrack dumps and events, kept in a ``NATTable``.
public struct NATTranslation: Sendable, Hashable, CustomStringConvertible {
    public var protocolNumber: UInt8
    /// The original source: the client that opened the connection.
    public var client: IPAddress
    public var clientPort: UInt16
    /// The original destination: the address the client connected to (a ClusterIP).
    public var service: IPAddress
    public var servicePort: UInt16
    /// The reply source: the backend the connection was translated to.
    public var backend: IPAddress
    public var backendPort: UInt16
    /// The reply destination: where the backend's replies go. The client unless source NAT
    /// (masquerade) rewrote it, then the node's address and port.
    public var translatedClient: IPAddress
    public var translatedClientPort: UInt16
    /// The kernel's conntrack entry ID (the corresponding attribute is `CTA_ID`), 0 when unknown.
    public var conntrackID: UInt32
    /// When the kernel destroyed the entry (a DESTROY event, or absent from a later dump);
    /// nil while it lives. Closed translations are kept for a while so flow records that end
    /// after their conntrack entry still find it.
    public var closedAt: Timestamp?

    public init(
        protocolNumber: UInt8, client: IPAddress, clientPort: UInt16, service: IPAddress, servicePort: UInt16,
        backend: IPAddress, backendPort: UInt16, translatedClient: IPAddress, translatedClientPort: UInt16,
        conntrackID: UInt32 = 0, closedAt: Timestamp? = nil
    ) {
        self.protocolNumber = protocolNumber
        self.client = client
        self.clientPort = clientPort
        self.service = service
        self.servicePort = servicePort
        self.backend = backend
        self.backendPort = backendPort
        self.translatedClient = translatedClient
        self.translatedClientPort = translatedClientPort
        self.conntrackID = conntrackID
        self.closedAt = closedAt
    }

    /// True when the destination was rewritten (a Service, a port mapping).
    public var isDestinationNAT: Bool { service != backend || servicePort != backendPort }
    /// True when the source was rewritten (masquerade).
    public var isSourceNAT: Bool { client != translatedClient || clientPort != translatedClientPort }
    public var isClosed: Bool { closedAt != nil }

    /// The ``FlowKey`` a ``FlowTracker`` gives the client → service flow (no VLAN, no tunnel).
    public var serviceSideKey: FlowKey {
        NATTable.plainKey(client, clientPort, service, servicePort, protocolNumber)
    }
    /// The ``FlowKey`` a ``FlowTracker`` gives the translated flow, translated client → backend.
    public var backendSideKey: FlowKey {
        NATTable.plainKey(translatedClient, translatedClientPort, backend, backendPort, protocolNumber)
    }

    /// "tcp 10.244.1.10:47240 → 10.96.0.10:80 → 10.244.1.11:8080".
    public var description: String {
        func end(_ ip: IPAddress, _ port: UInt16) -> String { ip.isIPv4 ? "\(ip):\(port)" : "[\(ip)]:\(port)" }
        var s = "\(FlowKey.protocolName(protocolNumber)) \(end(client, clientPort)) → \(end(service, servicePort))"
            + " → \(end(backend, backendPort))"
        if isSourceNAT { s += " (as \(end(translatedClient, translatedClientPort)))" }
        if isClosed { s += " closed" }
        return s
    }
}

/// Which side of a translated connection a flow key describes.
public enum NATSide: UInt8, Sendable, Hashable {
    /// Before destination NAT: client → service, as the client's veth sees it.
    case service
    /// After: (translated) client → backend, as the backend's veth sees it.
    case backend
}

/// A flow key recognised as one side of a translated connection.
public struct NATMatch: Sendable, Hashable {
    public var translation: NATTranslation
    public var side: NATSide
    public init(translation: NATTranslation, side: NATSide) {
        self.translation = translation
        self.side = side
    }
}

/// A bounded map of translated connections, looked up by the flow key of either side.
///
/// Holds only connections whose addresses were translated (untranslated ones need no
/// lookup). When it holds ``capacity`` connections, closed ones make room first; if none is
/// closed, the new connection is not kept and ``droppedWhenFull`` counts it. A value type:
/// `ConntrackTable` hands out copies as snapshots (copy-on-write).
public struct NATTable: Sendable {
    /// The most connections kept.
    public let capacity: Int
    /// Translations by their service-side key.
    var byServiceKey: [FlowKey: NATTranslation] = [:]
    /// Service-side key by backend-side key.
    var serviceKeyByBackendKey: [FlowKey: FlowKey] = [:]
    /// Connections not kept because the table was full (see ``update(_:countingDrop:)``).
    public private(set) var droppedWhenFull: UInt64 = 0
    /// Connections kept whose conntrack entry is gone.
    public private(set) var closedCount = 0

    public init(capacity: Int) {
        precondition(capacity > 0, "NATTable capacity must be positive")
        self.capacity = capacity
    }

    /// Connections kept, open and closed.
    public var count: Int { byServiceKey.count }
    /// Connections kept whose conntrack entry still exists.
    public var openCount: Int { byServiceKey.count - closedCount }
    /// Every translation kept, in no particular order.
    public var translations: [NATTranslation] { Array(byServiceKey.values) }

    /// `key` without VLAN and tunnel context: conntrack knows neither.
    @inlinable
    public static func plainKey(_ key: FlowKey) -> FlowKey {
        FlowKey(a: key.a, portA: key.portA, b: key.b, portB: key.portB, protocolNumber: key.protocolNumber)
    }

    static func plainKey(_ s: IPAddress, _ sp: UInt16, _ d: IPAddress, _ dp: UInt16, _ p: UInt8) -> FlowKey {
        FlowKey.normalised(source: s, sourcePort: sp, destination: d, destinationPort: dp, protocolNumber: p,
                           vlanID: 0, tunnel: .none, tunnelID: 0).key
    }

    /// The translation whose service side or backend side has `key` (VLAN and tunnel ignored).
    public func lookup(_ key: FlowKey) -> NATMatch? {
        let k = Self.plainKey(key)
        if let t = byServiceKey[k] { return NATMatch(translation: t, side: .service) }
        if let s = serviceKeyByBackendKey[k], let t = byServiceKey[s] { return NATMatch(translation: t, side: .backend) }
        return nil
    }

    /// Inserts or refreshes a translation (a NEW or UPDATE event, a dump entry). A refreshed
    /// translation keeps its ``NATTranslation/closedAt`` only if `translation` carries one.
    /// - Parameters:
    ///   - translation: the connection as the kernel describes it now.
    ///   - countingDrop: whether a drop for lack of room counts in ``droppedWhenFull``. Count a
    ///     connection once: at its NEW event or in the first dump, not at every UPDATE event or
    ///     re-dump that finds it again.
    /// - Returns: false when the table was full and the translation was dropped.
    @discardableResult
    public mutating func update(_ translation: NATTranslation, countingDrop: Bool = true) -> Bool {
        let key = translation.serviceSideKey
        if let old = byServiceKey[key] {
            let oldBackend = old.backendSideKey
            if oldBackend != translation.backendSideKey { serviceKeyByBackendKey[oldBackend] = nil }
            if old.isClosed { closedCount -= 1 }
        } else if byServiceKey.count >= capacity {
            removeClosed(endedBefore: Timestamp(nanoseconds: .max))
            if byServiceKey.count >= capacity {
                if countingDrop { droppedWhenFull &+= 1 }
                return false
            }
        }
        if translation.isClosed { closedCount += 1 }
        byServiceKey[key] = translation
        serviceKeyByBackendKey[translation.backendSideKey] = key
        return true
    }

    /// Marks the connection with service-side key `key` closed at `time` (a DESTROY event).
    /// - Returns: false when it was not in the table.
    @discardableResult
    public mutating func close(serviceSideKey key: FlowKey, at time: Timestamp) -> Bool {
        guard let t = byServiceKey[key] else { return false }
        if t.closedAt == nil {
            byServiceKey[key]!.closedAt = time
            closedCount += 1
        }
        return true
    }

    /// Removes a connection now, whatever its state.
    public mutating func remove(serviceSideKey key: FlowKey) {
        guard let t = byServiceKey.removeValue(forKey: key) else { return }
        if t.isClosed { closedCount -= 1 }
        if serviceKeyByBackendKey[t.backendSideKey] == key { serviceKeyByBackendKey[t.backendSideKey] = nil }
    }

    /// Removes connections closed before `time`.
    /// - Returns: how many were removed.
    @discardableResult
    public mutating func removeClosed(endedBefore time: Timestamp) -> Int {
        guard closedCount > 0 else { return 0 }
        let stale = byServiceKey.compactMap { k, t -> FlowKey? in
            if let closed = t.closedAt, closed < time { return k }
            return nil
        }
        for k in stale { remove(serviceSideKey: k) }
        return stale.count
    }

    /// Marks closed (at `time`) every open connection for which `isGone` is true: after a
    /// full dump, those the kernel no longer has.
    /// - Returns: how many were marked.
    @discardableResult
    public mutating func closeAll(at time: Timestamp, where isGone: (NATTranslation) -> Bool) -> Int {
        let gone = byServiceKey.compactMap { k, t in !t.isClosed && isGone(t) ? k : nil }
        for k in gone { close(serviceSideKey: k, at: time) }
        return gone.count
    }
}

/// One logical connection assembled from flow records of one or more interfaces.
public struct JoinedConnection: Sendable {
    /// The record whose counters stand for the whole connection (see ``NATTable/join(_:)``).
    public var flow: FlowRecord
    /// The translation, when the connection was addressed to a translated destination.
    public var translation: NATTranslation?
    /// The record of the client → service side (the client's veth), when one was given.
    public var serviceSide: FlowRecord?
    /// The record of the translated client → backend side (the backend's veth), when one was given.
    public var backendSide: FlowRecord?
    /// Records joined into this connection (1 when it was seen once).
    public var recordCount: Int

    /// The endpoint that opened the connection.
    public var client: (address: IPAddress, port: UInt16) {
        if let t = translation { return (t.client, t.clientPort) }
        return flow.clientSide == 0 ? (flow.key.a, flow.key.portA) : (flow.key.b, flow.key.portB)
    }
    /// The address the client connected to (a ClusterIP); nil when nothing was translated.
    public var service: (address: IPAddress, port: UInt16)? {
        translation.map { ($0.service, $0.servicePort) }
    }
    /// The endpoint that served the connection: the backend for a translated connection.
    public var server: (address: IPAddress, port: UInt16) {
        if let t = translation { return (t.backend, t.backendPort) }
        return flow.clientSide == 0 ? (flow.key.b, flow.key.portB) : (flow.key.a, flow.key.portA)
    }
}

extension NATTable {
    /// Merges flow records captured on several interfaces into logical connections, each
    /// counted once.
    ///
    /// Records are grouped by connection: a translated connection's service-side record
    /// (client → ClusterIP, seen on the client's veth) and backend-side record (client →
    /// backend, seen on the backend's veth after DNAT) form one group; an untranslated flow
    /// seen on several interfaces (pod to pod across the bridge: both veths) forms one group
    /// by its key. VLAN and tunnel context are ignored.
    ///
    /// **Which counts are used.** A translated connection takes the counters of its
    /// service-side record, what the client sent and received, as the client experienced the
    /// Service; the backend-side record only when no service-side record was given (the client
    /// is on another node). Within a side seen on more than one interface, and for
    /// untranslated flows, the record with the most packets wins (the earliest in `records`
    /// on a tie): interfaces whose capture started later saw less. Counters are never summed.
    ///
    /// - Parameter records: flow records in any order, from any interfaces.
    /// - Returns: one connection per group, in the order each group first appears in `records`.
    public func join(_ records: [FlowRecord]) -> [JoinedConnection] {
        var groupOfKey: [FlowKey: Int] = [:]
        var groups: [JoinedConnection] = []
        func better(_ candidate: FlowRecord, than current: FlowRecord?) -> Bool {
            guard let current else { return true }
            return candidate.packets > current.packets
        }
        for record in records {
            let match = lookup(record.key)
            let groupKey = match?.translation.serviceSideKey ?? Self.plainKey(record.key)
            let g: Int
            if let existing = groupOfKey[groupKey] {
                g = existing
                groups[g].recordCount += 1
            } else {
                g = groups.count
                groupOfKey[groupKey] = g
                groups.append(JoinedConnection(flow: record, translation: match?.translation, serviceSide: nil,
                                               backendSide: nil, recordCount: 1))
            }
            guard let match else {
                if groups[g].recordCount > 1, better(record, than: groups[g].flow) { groups[g].flow = record }
                continue
            }
            switch match.side {
            case .service:
                if better(record, than: groups[g].serviceSide) { groups[g].serviceSide = record }
            case .backend:
                if better(record, than: groups[g].backendSide) { groups[g].backendSide = record }
            }
            groups[g].flow = groups[g].serviceSide ?? groups[g].backendSide!
        }
        return groups
    }
}
