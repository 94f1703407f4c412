/// A TCP connection's state as seen from the packets of both directions.
public enum TCPState: UInt8, Sendable, CustomStringConvertible {
    /// Not TCP, or no packet decided anything yet.
    case none = 0
    /// A SYN was seen, no SYN-ACK yet.
    case synSent
    /// SYN-ACK seen, the handshake's last ACK not yet.
    case synReceived
    /// Handshake complete, or data seen on a connection whose start was missed.
    case established
    /// One side sent FIN.
    case finWait
    /// Both sides sent FIN, the last one not yet acknowledged.
    case closing
    /// Both FINs seen and the last one acknowledged.
    case closed
    /// Ended by a RST after it was established.
    case reset
    /// The server answered the SYN with RST: connection refused.
    case refused

    public var description: String { name.description }

    /// The state's name ("established", "closed" …; "-" for none), without allocating.
    public var name: StaticString {
        switch self {
        case .none: "-"
        case .synSent: "syn-sent"
        case .synReceived: "syn-received"
        case .established: "established"
        case .finWait: "fin-wait"
        case .closing: "closing"
        case .closed: "closed"
        case .reset: "reset"
        case .refused: "refused"
        }
    }

    /// True once the connection cannot carry more data.
    @inlinable public var isTerminal: Bool { self == .closed || self == .reset || self == .refused }
}

/// Why a flow record was emitted as closed.
public enum FlowEndReason: UInt8, Sendable, CustomStringConvertible {
    case none = 0
    /// No packet for the protocol's idle timeout.
    case idleTimeout
    /// TCP FIN handshake completed (after a short linger for trailing packets).
    case tcpFinished
    /// TCP RST (or refused).
    case tcpReset
    /// The table was full and this flow was evicted to make room.
    case evicted
    /// A new SYN reused the 5-tuple of a finished connection.
    case reused
    /// The capture ended (end of file, or the tracker was finished).
    case endOfCapture

    public var description: String { name.description }

    /// The reason's name ("idle", "fin", "rst", "evicted", "reused", "end"), without allocating.
    public var name: StaticString {
        switch self {
        case .none: "-"
        case .idleTimeout: "idle"
        case .tcpFinished: "fin"
        case .tcpReset: "rst"
        case .evicted: "evicted"
        case .reused: "reused"
        case .endOfCapture: "end"
        }
    }
}

/// Per-direction counters of a flow.
public struct FlowDirectionStatistics: Sendable, Hashable {
    public var packets: UInt64 = 0
    /// Bytes of this flow's IP packets as their headers claim (IPv4 total length, IPv6 40 + payload length).
    public var ipBytes: UInt64 = 0
    /// Bytes of the frames on the wire (original length), whole frames even for tunnelled flows.
    public var wireBytes: UInt64 = 0
    /// First and last packet in this direction (meaningless while ``packets`` is 0).
    public var firstSeen = Timestamp.zero
    public var lastSeen = Timestamp.zero
    /// OR of the TCP flags sent in this direction.
    public var tcpFlags = TCPFlags()
    /// TCP segments whose sequence range was already seen (keep-alives excluded).
    public var retransmissions: UInt32 = 0
    /// TCP segments that arrived below the highest sequence seen, within an RTT of it (reordering).
    public var outOfOrder: UInt32 = 0
    /// Times this side's advertised window went to zero.
    public var zeroWindowEvents: UInt32 = 0
    @inlinable public init() {}
}

/// What the DNS packets of a flow said (request/response matched by ID for latency).
public struct DNSFlowInfo: Sendable, Hashable {
    public var queries: UInt16 = 0
    public var responses: UInt16 = 0
    /// Interned lower-cased name of the first query (see ``NameTable``), 0 when unknown.
    public var queryName: NameTable.ID = 0
    public var queryType: UInt16 = 0
    /// RCODE of the last response.
    public var responseCode: UInt8 = 0
    /// Answers over all responses.
    public var answers: UInt16 = 0
    /// Query-to-response time of the first matched response in microseconds (the difference
    /// of the two capture times in whole microseconds), 0 when none matched.
    public var latencyMicroseconds: UInt32 = 0
    @inlinable public init() {}
}

/// What a TLS ClientHello of a flow said.
public struct TLSFlowInfo: Sendable, Hashable {
    /// Interned SNI, 0 when absent.
    public var serverName: NameTable.ID = 0
    /// Interned first ALPN protocol, 0 when absent.
    public var alpn: NameTable.ID = 0
    /// The highest version offered (0x0304 TLS 1.3, 0x0303 TLS 1.2 …).
    public var offeredVersion: UInt16 = 0
    @inlinable public init() {}
}

/// A flow's state: identity, both directions' counters, TCP state and timing, light L7.
///
/// Sinks receive it when a flow opens, periodically while it lives (active timeout) and when
/// it ends. Counters are cumulative since the flow opened.
public struct FlowRecord: Sendable {
    public var key: FlowKey
    /// Index 0: ``FlowKey/a`` → ``FlowKey/b``; index 1: back.
    public var directions: InlineArray<2, FlowDirectionStatistics>
    /// Which side opened the flow: 0 = a, 1 = b. See ``clientFromHandshake``.
    public var clientSide: UInt8 = 0
    /// True when the client was seen sending the SYN (or receiving the SYN-ACK); false when
    /// it was guessed from the first packet and the ports.
    public var clientFromHandshake = false
    public var tcpState = TCPState.none
    /// SYN to the handshake's final ACK, in microseconds; 0 when the handshake was not seen whole.
    public var handshakeRTTMicroseconds: UInt32 = 0
    /// SYN to SYN-ACK (the server side of the RTT as seen at the capture point), microseconds.
    public var serverRTTMicroseconds: UInt32 = 0
    /// ICMP errors that quoted a packet of this flow, and the last one's type and code.
    public var icmpErrors: UInt16 = 0
    public var lastICMPType: UInt8 = 0
    public var lastICMPCode: UInt8 = 0
    /// The interface index the flow was first seen on (pcapng interface, capture source).
    public var interface: UInt16 = 0
    public var endReason = FlowEndReason.none
    /// What the flow's DNS messages or its TLS ClientHello said: a flow keeps one of the two,
    /// whichever it carried first (see ``FlowTrackerStatistics/applicationInfoNotKept``).
    public var dns: DNSFlowInfo? = nil
    public var tls: TLSFlowInfo? = nil
    /// True when this flow carried a tunnel (VXLAN, Geneve, GRE, IP-in-IP) whose inner flows
    /// are tracked too: the node-to-node "outer" flow.
    public var carriesTunnel = false
    /// Outer endpoints of the first tunnelled packet, for flows inside a tunnel (zero otherwise,
    /// and zero when the tracker's table of them had no place: see
    /// ``FlowTrackerStatistics/tunnelEndpointsNotKept``).
    public var outerSource = IPAddress.zero
    public var outerDestination = IPAddress.zero

    @inlinable public init(key: FlowKey) {
        self.key = key
        self.directions = InlineArray(repeating: FlowDirectionStatistics())
    }

    @inlinable public var client: FlowDirectionStatistics { directions[Int(clientSide)] }
    @inlinable public var server: FlowDirectionStatistics { directions[Int(1 &- clientSide)] }
    @inlinable public var firstSeen: Timestamp {
        if directions[0].packets == 0 { return directions[1].firstSeen }
        if directions[1].packets == 0 { return directions[0].firstSeen }
        return min(directions[0].firstSeen, directions[1].firstSeen)
    }
    @inlinable public var lastSeen: Timestamp { max(directions[0].lastSeen, directions[1].lastSeen) }
    @inlinable public var packets: UInt64 { directions[0].packets &+ directions[1].packets }
    @inlinable public var ipBytes: UInt64 { directions[0].ipBytes &+ directions[1].ipBytes }
    @inlinable public var wireBytes: UInt64 { directions[0].wireBytes &+ directions[1].wireBytes }
}

/// What a ``FlowSink`` is told.
public enum FlowEvent: UInt8, Sendable, CustomStringConvertible {
    /// The first packet of a new flow was counted.
    case opened
    /// A long-lived flow's periodic update (active timeout); counters are cumulative.
    case updated
    /// The flow ended; ``FlowRecord/endReason`` says why. Its final record.
    case closed

    public var description: String { name.description }

    /// The event's name ("opened", "updated", "closed"), without allocating.
    public var name: StaticString {
        switch self {
        case .opened: "opened"
        case .updated: "updated"
        case .closed: "closed"
        }
    }
}

/// Receives flow events from a ``FlowTracker``, on the tracker's thread.
///
/// Called once per event (per flow, not per packet); an implementation should not block.
public protocol FlowSink: ~Copyable {
    mutating func receive(_ event: FlowEvent, _ flow: FlowRecord)
}

/// A sink that ignores everything.
public struct DiscardingFlowSink: FlowSink {
    public init() {}
    @inlinable public mutating func receive(_ event: FlowEvent, _ flow: FlowRecord) {}
}

/// A sink that keeps every closed record in memory (tests, small captures).
public struct CollectingFlowSink: FlowSink {
    public var closed: [FlowRecord] = []
    public var opened = 0
    public var updated = 0
    public init() {}
    public mutating func receive(_ event: FlowEvent, _ flow: FlowRecord) {
        switch event {
        case .opened: opened += 1
        case .updated: updated += 1
        case .closed: closed.append(flow)
        }
    }
}
