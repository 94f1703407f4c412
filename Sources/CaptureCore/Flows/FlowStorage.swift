/// The part of a flow that every packet touches: identity, counters, last-seen times and TCP
/// sequence state, in two cache lines (128 bytes). Everything else lives in ``FlowDetails``.
@usableFromInline
struct FlowEntry {
    @usableFromInline var key: FlowKey                      // 44
    /// Bits: 0x01 the entry holds a flow (all-zero is free), 0x02 the client was seen in the
    /// handshake, 0x04 the flow carries a tunnel whose inner flows are tracked.
    @usableFromInline var status: UInt8                     // 45
    /// The interface index the flow was first seen on.
    @usableFromInline var interface: UInt16                 // 48
    @usableFromInline var packets: InlineArray<2, UInt64>   // 64
    @usableFromInline var ipBytes: InlineArray<2, UInt64>   // 80
    @usableFromInline var wireBytes: InlineArray<2, UInt64> // 96
    @usableFromInline var lastSeen: InlineArray<2, UInt64>  // 112
    /// Per direction: the sequence number after the highest byte seen. In a free entry,
    /// element 0 links the free list (see ``FlowTracker``).
    @usableFromInline var nextSequence: InlineArray<2, UInt32>  // 120
    @usableFromInline var tcpState: TCPState
    /// Bits: 0x01/0x02 FIN seen from a/b, 0x04/0x08 sequence tracking started for a/b,
    /// 0x10/0x20 window is zero for a/b, 0x40 the last FIN came from b, 0x80 the SYN was seen.
    @usableFromInline var trackerFlags: UInt8
    @usableFromInline var clientSide: UInt8
    /// OR of the TCP flags (low 8 bits) sent by a and by b.
    @usableFromInline var flagsSeen: InlineArray<2, UInt8>
    /// Capture time of the last record sent (open or interim), in whole seconds modulo 2¹⁶:
    /// the sweep decides on interim records without touching the details.
    @usableFromInline var reportTick: UInt16

    @usableFromInline static var inUse: UInt8 { 0x01 }
    @usableFromInline static var clientFromHandshake: UInt8 { 0x02 }
    @usableFromInline static var carriesTunnel: UInt8 { 0x04 }

    @inlinable init(key: FlowKey) {
        self.key = key
        status = Self.inUse
        interface = 0
        packets = [0, 0]
        ipBytes = [0, 0]
        wireBytes = [0, 0]
        lastSeen = [0, 0]
        nextSequence = [0, 0]
        tcpState = .none
        trackerFlags = 0
        clientSide = 0
        flagsSeen = [0, 0]
        reportTick = 0
    }

    @inlinable var isInUse: Bool { status & Self.inUse != 0 }
    @inlinable var lastSeenEither: UInt64 { max(lastSeen[0], lastSeen[1]) }
}

/// What a flow keeps beyond the per-packet fields: written when a direction starts, on TCP
/// events, ICMP errors and DNS/TLS messages, read when a record is emitted. 80 bytes.
@usableFromInline
struct FlowDetails {
    @usableFromInline var firstSeen: InlineArray<2, UInt64> = [0, 0]
    @usableFromInline var retransmissions: InlineArray<2, UInt32> = [0, 0]
    @usableFromInline var outOfOrder: InlineArray<2, UInt32> = [0, 0]
    @usableFromInline var zeroWindowEvents: InlineArray<2, UInt32> = [0, 0]
    @usableFromInline var handshakeRTTMicroseconds: UInt32 = 0
    @usableFromInline var serverRTTMicroseconds: UInt32 = 0
    @usableFromInline var icmpErrors: UInt16 = 0
    @usableFromInline var lastICMPType: UInt8 = 0
    @usableFromInline var lastICMPCode: UInt8 = 0
    /// Outer endpoints of the first tunnelled packet, as IDs in the tracker's
    /// ``EndpointAddressTable`` (0: none, or not kept).
    @usableFromInline var outerSource: EndpointAddressTable.ID = 0
    @usableFromInline var outerDestination: EndpointAddressTable.ID = 0
    @usableFromInline var application = FlowApplicationInfo()
    @inlinable init() {}
}

/// DNS or TLS, whichever a flow carried first, in 24 bytes (a flow carries one of them).
@usableFromInline
struct FlowApplicationInfo {
    /// DNS: the query name. TLS: the server name.
    @usableFromInline var name: NameTable.ID = 0
    /// DNS: the latency in microseconds. TLS: the ALPN protocol's name.
    @usableFromInline var second: UInt32 = 0
    /// DNS: the pending query's capture time in microseconds, modulo 2³².
    @usableFromInline var pendingSince: UInt32 = 0
    /// DNS: queries. TLS: the offered version.
    @usableFromInline var queries: UInt16 = 0
    @usableFromInline var responses: UInt16 = 0
    @usableFromInline var answers: UInt16 = 0
    @usableFromInline var queryType: UInt16 = 0
    @usableFromInline var pendingID: UInt16 = 0
    @usableFromInline var responseCode: UInt8 = 0
    /// Low two bits: ``Kind``; 0x04: a query is pending.
    @usableFromInline var bits: UInt8 = 0

    @usableFromInline enum Kind: UInt8 { case none = 0, dns = 1, tls = 2 }

    @inlinable init() {}

    @inlinable var kind: Kind { Kind(rawValue: bits & 0x03) ?? .none }
    @inlinable var isPending: Bool {
        get { bits & 0x04 != 0 }
        set { bits = newValue ? bits | 0x04 : bits & ~0x04 }
    }

    @inlinable var dns: DNSFlowInfo? {
        guard kind == .dns else { return nil }
        var d = DNSFlowInfo()
        d.queries = queries
        d.responses = responses
        d.queryName = name
        d.queryType = queryType
        d.responseCode = responseCode
        d.answers = answers
        d.latencyMicroseconds = second
        return d
    }

    @inlinable var tls: TLSFlowInfo? {
        guard kind == .tls else { return nil }
        var t = TLSFlowInfo()
        t.serverName = name
        t.alpn = second
        t.offeredVersion = queries
        return t
    }
}

extension FlowRecord {
    /// The public record of a flow, assembled from its two parts; outer endpoints are looked
    /// up in `addresses`.
    @inlinable
    init(_ e: FlowEntry, _ d: FlowDetails, addresses: EndpointAddressTable, endReason: FlowEndReason) {
        self.init(key: e.key)
        for i in 0..<2 {
            var s = FlowDirectionStatistics()
            s.packets = e.packets[i]
            s.ipBytes = e.ipBytes[i]
            s.wireBytes = e.wireBytes[i]
            s.firstSeen = Timestamp(nanoseconds: d.firstSeen[i])
            s.lastSeen = Timestamp(nanoseconds: e.lastSeen[i])
            s.tcpFlags = TCPFlags(rawValue: UInt16(e.flagsSeen[i]))
            s.retransmissions = d.retransmissions[i]
            s.outOfOrder = d.outOfOrder[i]
            s.zeroWindowEvents = d.zeroWindowEvents[i]
            directions[i] = s
        }
        clientSide = e.clientSide
        clientFromHandshake = e.status & FlowEntry.clientFromHandshake != 0
        tcpState = e.tcpState
        handshakeRTTMicroseconds = d.handshakeRTTMicroseconds
        serverRTTMicroseconds = d.serverRTTMicroseconds
        icmpErrors = d.icmpErrors
        lastICMPType = d.lastICMPType
        lastICMPCode = d.lastICMPCode
        interface = e.interface
        self.endReason = endReason
        dns = d.application.dns
        tls = d.application.tls
        carriesTunnel = e.status & FlowEntry.carriesTunnel != 0
        outerSource = addresses[d.outerSource]
        outerDestination = addresses[d.outerDestination]
    }
}
