/// The part of a flow that every packet touches: identity, counters, last-seen times and TCP
/// sequence state, in two cache lines (128 bytes). Everything else lives in ``FlowDetails``.
@usableFromInline
struct FlowEntry {
    @usableFromInline var key: FlowKey                      // 44
    /// The key's hash; 0 marks a free entry.
    @usableFromInline var hash: UInt32                      // 48
    @usableFromInline var packets: InlineArray<2, UInt64>   // 64
    @usableFromInline var ipBytes: InlineArray<2, UInt64>   // 80
    @usableFromInline var wireBytes: InlineArray<2, UInt64> // 96
    @usableFromInline var lastSeen: InlineArray<2, UInt64>  // 112
    /// Per direction: the sequence number after the highest byte seen.
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

    @inlinable init(key: FlowKey, hash: UInt32) {
        self.key = key
        self.hash = hash
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

    @inlinable var lastSeenEither: UInt64 { max(lastSeen[0], lastSeen[1]) }
}

/// What a flow keeps beyond the per-packet fields: written when a direction starts, on TCP
/// events, ICMP errors and DNS/TLS messages, read when a record is emitted.
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
    @usableFromInline var interface: UInt16 = 0
    @usableFromInline var clientFromHandshake = false
    @usableFromInline var carriesTunnel = false
    @usableFromInline var outerSource = IPAddress.zero
    @usableFromInline var outerDestination = IPAddress.zero
    @usableFromInline var dns: DNSFlowInfo? = nil
    @usableFromInline var tls: TLSFlowInfo? = nil
    @inlinable init() {}
}

extension FlowRecord {
    /// The public record of a flow, assembled from its two parts.
    @inlinable
    init(_ e: FlowEntry, _ d: FlowDetails, endReason: FlowEndReason) {
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
        clientFromHandshake = d.clientFromHandshake
        tcpState = e.tcpState
        handshakeRTTMicroseconds = d.handshakeRTTMicroseconds
        serverRTTMicroseconds = d.serverRTTMicroseconds
        icmpErrors = d.icmpErrors
        lastICMPType = d.lastICMPType
        lastICMPCode = d.lastICMPCode
        interface = d.interface
        self.endReason = endReason
        dns = d.dns
        tls = d.tls
        carriesTunnel = d.carriesTunnel
        outerSource = d.outerSource
        outerDestination = d.outerDestination
    }
}
