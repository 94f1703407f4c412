/// Idle and active timeouts of a ``FlowTracker``, in nanoseconds of capture time.
public struct FlowTimeouts: Sendable, Hashable {
    /// An established TCP connection with no packet for this long is closed (idle).
    public var tcpEstablished: UInt64 = 300 * 1_000_000_000
    /// A TCP connection still in its handshake (SYN seen, not established).
    public var tcpHandshake: UInt64 = 30 * 1_000_000_000
    /// How long a finished (FIN/RST) connection lingers to collect trailing ACKs and
    /// retransmissions before its record is emitted.
    public var tcpFinished: UInt64 = 5 * 1_000_000_000
    public var udp: UInt64 = 60 * 1_000_000_000
    public var icmp: UInt64 = 30 * 1_000_000_000
    public var other: UInt64 = 60 * 1_000_000_000
    /// Interval of interim ``FlowEvent/updated`` records for long-lived flows, in whole seconds
    /// (at most 65 535 s); 0 disables them. Timeouts and interim records are found by the
    /// tracker's sweep, which covers the whole table every 2 s of capture time and on
    /// ``FlowTracker/expire(at:)``: a live capture loop calls that on a timer (say every
    /// second) so quiet periods still produce records.
    public var active: UInt64 = 60 * 1_000_000_000
    public init() {}
}

/// What a full flow table does with a packet of a new flow.
public enum FlowEvictionPolicy: Sendable, Hashable {
    /// Close the least recently seen of `sample` flows sampled from the table (finished TCP
    /// connections first), emit it with ``FlowEndReason/evicted``, and track the new flow.
    case evictIdlest(sample: Int)
    /// Do not track the new flow; its packets are counted in ``FlowTrackerStatistics/rejectedPackets``.
    case rejectNew
}

/// A ``FlowTracker``'s fixed parameters: memory is allocated once, from these.
public struct FlowTrackerConfiguration: Sendable, Hashable {
    /// The most flows tracked at once.
    public var capacity: Int = 65_536
    public var timeouts = FlowTimeouts()
    public var eviction = FlowEvictionPolicy.evictIdlest(sample: 8)
    /// The most distinct DNS / TLS names held at once (1 ... 2²⁰ − 1); names no tracked flow
    /// holds make way for new ones (see ``NameTable``).
    public var nameCapacity = 65_536
    /// The most distinct outer (node) addresses of tunnelled flows held at once, at most
    /// 65 535 (larger values count as 65 535); 0 (the default) means one per
    /// ``flowsPerTunnelEndpoint`` flows of ``capacity``, at least 64 and at most 65 535. An
    /// address that finds no place is left out of its flow's record and counted in
    /// ``FlowTrackerStatistics/tunnelEndpointsNotKept``. An address leaves the table when the
    /// last flow holding it ends.
    public var tunnelEndpointCapacity = 0
    /// Entries of the cache that gives later IP fragments the ports of the first fragment.
    public var fragmentCacheSize = 1024
    /// Emit ``FlowEvent/opened`` for each new flow.
    public var emitsOpened = true
    public init() {}
    public init(capacity: Int) { self.capacity = capacity }

    /// Flows per place of the default tunnel endpoint table (a node agent sees each peer
    /// node's address in many flows).
    public static var flowsPerTunnelEndpoint: Int { 8 }
    /// ``tunnelEndpointCapacity``, or its default.
    public var resolvedTunnelEndpointCapacity: Int {
        let wanted = tunnelEndpointCapacity > 0 ? tunnelEndpointCapacity : max(64, capacity / Self.flowsPerTunnelEndpoint)
        return min(wanted, EndpointAddressTable.maximumCapacity)
    }
}

/// Counters of a ``FlowTracker``.
public struct FlowTrackerStatistics: Sendable, Hashable {
    /// Packets handed to ``FlowTracker/process(_:frame:timestamp:wireLength:interface:)``.
    public var packets: UInt64 = 0
    /// Packets with no IP layer (ARP, unsupported link types, undecodable frames).
    public var nonIPPackets: UInt64 = 0
    /// Flow updates: one per IP layer per packet (a VXLAN packet updates two flows).
    public var flowUpdates: UInt64 = 0
    public var flowsOpened: UInt64 = 0
    public var flowsClosed: UInt64 = 0
    /// Flows closed early because the table was full.
    public var evictions: UInt64 = 0
    /// Packets of new flows not tracked because the table was full (``FlowEvictionPolicy/rejectNew``).
    public var rejectedPackets: UInt64 = 0
    /// ICMP errors whose quoted packet matched a tracked flow, and those that matched none.
    public var icmpErrorsAttributed: UInt64 = 0
    public var icmpErrorsUnmatched: UInt64 = 0
    /// Later IP fragments whose first fragment was not seen: counted in a flow without ports.
    public var fragmentsWithoutPorts: UInt64 = 0
    /// Packets whose decode was done ahead by ``FlowTracker/prepare(frame:linkType:decoder:timestamp:wireLength:)``
    /// and used, and prepared frames given up (processed out of order, too far ahead, or never).
    public var preparedPackets: UInt64 = 0
    public var preparedDiscarded: UInt64 = 0
    /// DNS and TLS names not kept on their flow because every place of the tracker's
    /// ``NameTable`` held a name of a tracked flow (``FlowTrackerConfiguration/nameCapacity``).
    public var namesNotKept: UInt64 = 0
    /// Outer addresses of tunnelled flows left out of their records because the tracker's
    /// table of them was full (``FlowTrackerConfiguration/tunnelEndpointCapacity``).
    public var tunnelEndpointsNotKept: UInt64 = 0
    /// DNS messages on a flow that carried a TLS ClientHello first, and ClientHellos on a
    /// flow that carried DNS first: a flow keeps one of the two.
    public var applicationInfoNotKept: UInt64 = 0
    /// Flows in the table now.
    public var activeFlows: Int = 0
    public init() {}
}
