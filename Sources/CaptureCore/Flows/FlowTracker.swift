/// Tracks bidirectional flows from decoded packets: counters per direction, TCP state,
/// handshake RTT, retransmissions, reordering, zero windows, DNS and TLS names, and the
/// timeouts that end them. Events go to a ``FlowSink``.
///
/// Memory is fixed at start (``FlowTrackerConfiguration/capacity`` records plus an index of
/// twice as many slots); nothing is allocated per packet. One tracker per capture thread:
/// it is not thread-safe, and needs no lock.
public struct FlowTracker<Sink: FlowSink & ~Copyable>: ~Copyable {
    public let configuration: FlowTrackerConfiguration
    public var sink: Sink
    /// Names referenced by ``DNSFlowInfo`` and ``TLSFlowInfo`` IDs.
    public let names: NameTable
    @usableFromInline var stats = FlowTrackerStatistics()
    /// Counters so far (``FlowTrackerStatistics/activeFlows`` as of the last sweep; see ``currentStatistics``).
    public var statistics: FlowTrackerStatistics { stats }

    @usableFromInline let capacity: Int
    @usableFromInline var records: UnsafeMutablePointer<FlowRecord>
    /// Per record: its key's hash, 0 when the record is free.
    @usableFromInline var hashes: UnsafeMutablePointer<UInt32>
    /// Open-addressing index (linear probing): record index + 1, 0 when empty.
    @usableFromInline var index: UnsafeMutablePointer<UInt32>
    @usableFromInline let slotMask: Int
    @usableFromInline var free: UnsafeMutablePointer<UInt32>
    @usableFromInline var freeCount: Int
    @usableFromInline var sweepCursor = 0
    @usableFromInline var sampler: UInt64 = 0x9E37_79B9_7F4A_7C15
    @usableFromInline var fragments: UnsafeMutablePointer<FragmentPorts>
    @usableFromInline let fragmentMask: Int
    @usableFromInline var now: UInt64 = 0

    public init(configuration: FlowTrackerConfiguration = .init(), sink: consuming Sink) {
        precondition(configuration.capacity > 0 && configuration.capacity < Int(UInt32.max / 2),
                     "FlowTracker capacity must be in 1..<2^31")
        self.configuration = configuration
        self.sink = sink
        self.names = NameTable(capacity: configuration.nameCapacity)
        capacity = configuration.capacity
        var slots = 16
        while slots < capacity * 2 { slots <<= 1 }
        slotMask = slots - 1
        records = .allocate(capacity: capacity)
        hashes = .allocate(capacity: capacity)
        unsafe hashes.initialize(repeating: 0, count: capacity)
        index = .allocate(capacity: slots)
        unsafe index.initialize(repeating: 0, count: slots)
        free = .allocate(capacity: capacity)
        for i in 0..<capacity { unsafe free[i] = UInt32(capacity - 1 - i) }
        freeCount = capacity
        var fragmentSlots = 16
        while fragmentSlots < max(configuration.fragmentCacheSize, 16) { fragmentSlots <<= 1 }
        fragmentMask = fragmentSlots - 1
        fragments = .allocate(capacity: fragmentSlots)
        unsafe fragments.initialize(repeating: FragmentPorts(), count: fragmentSlots)
    }

    deinit {
        unsafe records.deallocate()
        unsafe hashes.deallocate()
        unsafe index.deallocate()
        unsafe free.deallocate()
        unsafe fragments.deallocate()
    }

    /// Bytes of memory the tracker allocated at start, per flow of capacity (record, hash,
    /// index slots and free list; the fragment cache and names are not counted).
    public static var bytesPerFlow: Int { MemoryLayout<FlowRecord>.stride + 4 + 4 }
    /// The memory allocated for the table, in bytes.
    public var tableBytes: Int {
        capacity * (MemoryLayout<FlowRecord>.stride + 4 + 4) + (slotMask + 1) * 4
            + (fragmentMask + 1) * MemoryLayout<FragmentPorts>.stride
    }

    public var activeFlows: Int { capacity - freeCount }

    // MARK: Per packet

    /// Counts one decoded packet in the flow of each of its IP layers.
    /// - Parameters:
    ///   - packet: the decoded packet.
    ///   - frame: the frame's bytes (names are read from it the first time they are seen).
    ///   - timestamp: capture time; it drives every timeout.
    ///   - wireLength: the frame's original length on the wire.
    ///   - interface: the capture interface, recorded on new flows.
    @inlinable
    public mutating func process(
        _ packet: borrowing DecodedPacket, frame: RawSpan, timestamp: Timestamp, wireLength: Int,
        interface: Int = 0
    ) {
        stats.packets &+= 1
        if timestamp.nanoseconds > now { now = timestamp.nanoseconds }
        let count = packet.layerCount
        if count == 0 {
            stats.nonIPPackets &+= 1
        }
        var i = 0
        while i < count {
            update(packet, layerIndex: i, frame: frame, time: timestamp.nanoseconds,
                   wireLength: UInt64(wireLength), interface: interface)
            i &+= 1
        }
        if let quoted = packet.quoted, count > 0 {
            attributeICMPError(quoted, carrier: packet.layers[count &- 1])
        }
        if stats.packets & 63 == 0 { sweep(budget: 128) }
    }

    @inlinable
    mutating func update(
        _ packet: borrowing DecodedPacket, layerIndex: Int, frame: RawSpan, time: UInt64, wireLength: UInt64,
        interface: Int
    ) {
        let layer = packet.layers[layerIndex]
        var sourcePort = layer.sourcePort, destinationPort = layer.destinationPort
        if layer.isFragment && layer.protocolNumber != IPProtocol.icmp && layer.protocolNumber != IPProtocol.icmpv6 {
            if layer.isLaterFragment {
                if let ports = fragmentPorts(layer) {
                    sourcePort = ports.0
                    destinationPort = ports.1
                } else {
                    stats.fragmentsWithoutPorts &+= 1
                }
            } else if layer.hasPorts {
                rememberFragment(layer)
            }
        }
        let (key, direction) = FlowKey.normalised(
            source: layer.source, sourcePort: sourcePort, destination: layer.destination,
            destinationPort: destinationPort, protocolNumber: layer.protocolNumber,
            vlanID: layer.vlanID, tunnel: layer.tunnel, tunnelID: layer.tunnelID)
        let hash = key.tableHash
        let isTCP = layer.protocolNumber == IPProtocol.tcp && layer.transportOffset >= 0
        let flags = layer.tcpFlags

        guard var r = findOrInsert(key, hash: hash) else {
            stats.rejectedPackets &+= 1
            return
        }
        stats.flowUpdates &+= 1
        // A new SYN on a finished connection's 5-tuple starts a new connection.
        if !r.isNew && isTCP && flags.contains(.syn) && !flags.contains(.ack) {
            let state = unsafe records[r.index].tcpState
            if state.isTerminal || state == .closing {
                close(r.index, reason: .reused)
                guard let fresh = findOrInsert(key, hash: hash) else {
                    stats.rejectedPackets &+= 1
                    return
                }
                r = fresh
            }
        }
        let f = unsafe records + r.index
        if r.isNew {
            unsafe f.pointee.interface = UInt16(truncatingIfNeeded: interface)
            unsafe f.pointee.lastReport = time
            unsafe f.pointee.clientSide = UInt8(guessClientDirection(layer, direction: direction))
            unsafe f.pointee.carriesTunnel = layerIndex &+ 1 < packet.layerCount
            if layerIndex > 0 && layer.tunnel != .none {
                let outer = packet.layers[layerIndex &- 1]
                unsafe f.pointee.outerSource = outer.source
                unsafe f.pointee.outerDestination = outer.destination
            }
        }
        let previousLast = unsafe f.pointee.directions[direction].lastSeen.nanoseconds
        if unsafe f.pointee.directions[direction].packets == 0 {
            unsafe f.pointee.directions[direction].firstSeen = Timestamp(nanoseconds: time)
        }
        unsafe f.pointee.directions[direction].packets &+= 1
        unsafe f.pointee.directions[direction].ipBytes &+= UInt64(layer.ipLength)
        unsafe f.pointee.directions[direction].wireBytes &+= wireLength
        unsafe f.pointee.directions[direction].lastSeen = Timestamp(nanoseconds: time)

        if isTCP {
            unsafe trackTCP(f, layer, direction: direction, time: time, previousLast: previousLast)
        }
        if layerIndex == packet.layerCount &- 1 {
            if let dns = packet.dns { unsafe trackDNS(f, dns, frame: frame, time: time) }
            if let tls = packet.tls, unsafe (f.pointee.tls == nil) { unsafe trackTLS(f, tls, frame: frame) }
        }
        if r.isNew {
            stats.flowsOpened &+= 1
            if configuration.emitsOpened { unsafe sink.receive(.opened, f.pointee) }
        } else if configuration.timeouts.active != 0,
            case let lastReport = unsafe f.pointee.lastReport,
            time > lastReport && time &- lastReport >= configuration.timeouts.active
        {
            unsafe f.pointee.lastReport = time
            unsafe sink.receive(.updated, f.pointee)
        }
    }

    /// Sender is the client unless the ports say otherwise: the side with the lower port
    /// (servers listen on low and well-known ports; clients use ephemeral ones).
    @inlinable
    func guessClientDirection(_ layer: NetworkLayer, direction: Int) -> Int {
        let receiver = 1 &- direction
        if layer.protocolNumber == IPProtocol.tcp && layer.tcpFlags.contains(.syn) {
            return layer.tcpFlags.contains(.ack) ? receiver : direction
        }
        if layer.protocolNumber == IPProtocol.icmp || layer.protocolNumber == IPProtocol.icmpv6 {
            return layer.icmpType == 0 || layer.icmpType == 129 ? receiver : direction
        }
        if layer.hasPorts && layer.sourcePort < layer.destinationPort { return receiver }
        return direction
    }

    @inlinable
    mutating func trackTCP(
        _ f: UnsafeMutablePointer<FlowRecord>, _ l: NetworkLayer, direction: Int, time: UInt64, previousLast: UInt64
    ) {
        let flags = l.tcpFlags
        unsafe f.pointee.directions[direction].tcpFlags.formUnion(flags)
        let client = Int(unsafe f.pointee.clientSide)
        let state = unsafe f.pointee.tcpState
        let finBit: UInt8 = direction == 0 ? 0x01 : 0x02
        if flags.contains(.syn) {
            if !flags.contains(.ack) {
                if state == .none {
                    unsafe f.pointee.trackerFlags |= 0x80  // the SYN was seen: RTTs can be measured
                    unsafe f.pointee.tcpState = .synSent
                    unsafe f.pointee.clientSide = UInt8(direction)
                    unsafe f.pointee.clientFromHandshake = true
                }
            } else if state == .none || state == .synSent {
                unsafe f.pointee.tcpState = .synReceived
                unsafe f.pointee.clientSide = UInt8(1 &- direction)
                unsafe f.pointee.clientFromHandshake = true
                let synTime = unsafe f.pointee.directions[1 &- direction].firstSeen.nanoseconds
                if state == .synSent && time >= synTime {
                    unsafe f.pointee.serverRTTMicroseconds = Self.microseconds(time &- synTime)
                }
            }
        } else if flags.contains(.rst) {
            if !state.isTerminal {
                let refused = (state == .synSent || state == .synReceived) && direction != client
                unsafe f.pointee.tcpState = refused ? .refused : .reset
            }
        } else {
            if unsafe flags.contains(.fin) && f.pointee.trackerFlags & finBit == 0 {
                unsafe f.pointee.trackerFlags |= finBit
                // Remember who sent the last FIN: its peer's ACK closes the connection.
                if direction == 0 { unsafe f.pointee.trackerFlags &= ~0x40 } else { unsafe f.pointee.trackerFlags |= 0x40 }
                if !state.isTerminal {
                    unsafe f.pointee.tcpState = unsafe (f.pointee.trackerFlags & 0x03) == 0x03 ? .closing : .finWait
                }
            } else if flags.contains(.ack) {
                switch state {
                case .synReceived where direction == client:
                    unsafe f.pointee.tcpState = .established
                    // Set only after a SYN and SYN-ACK were seen, so the client direction has its SYN time.
                    let synTime = unsafe f.pointee.directions[client].firstSeen.nanoseconds
                    if unsafe f.pointee.trackerFlags & 0x80 != 0 && time >= synTime {
                        unsafe f.pointee.handshakeRTTMicroseconds = Self.microseconds(time &- synTime)
                    }
                case .closing:
                    let lastFinDirection = unsafe (f.pointee.trackerFlags & 0x40) != 0 ? 1 : 0
                    if direction != lastFinDirection { unsafe f.pointee.tcpState = .closed }
                case .none, .synSent:
                    unsafe f.pointee.tcpState = .established  // the start was missed
                default: break
                }
            } else if state == .none {
                unsafe f.pointee.tcpState = .established
            }
        }

        // Sequence analysis: retransmissions, reordering (RFC 9293 sequence space, wrapping).
        let segmentLength = l.payloadLength &+ (flags.contains(.syn) ? 1 : 0) &+ (flags.contains(.fin) ? 1 : 0)
        let initBit: UInt8 = direction == 0 ? 0x04 : 0x08
        if flags.contains(.rst) {
            // RST carries no data worth analysing.
        } else if unsafe (f.pointee.trackerFlags & initBit) == 0 {
            unsafe f.pointee.trackerFlags |= initBit
            unsafe f.pointee.nextSequence[direction] = l.sequenceNumber &+ segmentLength
        } else if segmentLength > 0 {
            let expected = unsafe f.pointee.nextSequence[direction]
            let end = l.sequenceNumber &+ segmentLength
            if Int32(bitPattern: l.sequenceNumber &- expected) >= 0 {
                unsafe f.pointee.nextSequence[direction] = end
            } else if Int32(bitPattern: end &- expected) > 0 {
                // Overlaps what was sent and adds more: a repacketised retransmission.
                unsafe f.pointee.directions[direction].retransmissions &+= 1
                unsafe f.pointee.nextSequence[direction] = end
            } else if l.payloadLength <= 1 && l.sequenceNumber == expected &- 1 {
                // Keep-alive: one byte (or none) just below the window edge.
            } else {
                let rtt = UInt64(unsafe f.pointee.handshakeRTTMicroseconds) &* 1000
                let threshold = max(rtt, 3_000_000)
                if time &- previousLast < threshold && time >= previousLast {
                    unsafe f.pointee.directions[direction].outOfOrder &+= 1
                } else {
                    unsafe f.pointee.directions[direction].retransmissions &+= 1
                }
            }
        }
        // Zero window: count the transitions to a zero advertised window.
        let zeroBit: UInt8 = direction == 0 ? 0x10 : 0x20
        if !flags.contains(.syn) && !flags.contains(.rst) && !flags.contains(.fin) {
            if l.window == 0 {
                if unsafe (f.pointee.trackerFlags & zeroBit) == 0 {
                    unsafe f.pointee.trackerFlags |= zeroBit
                    unsafe f.pointee.directions[direction].zeroWindowEvents &+= 1
                }
            } else {
                unsafe f.pointee.trackerFlags &= ~zeroBit
            }
        }
    }

    @inlinable
    mutating func trackDNS(_ f: UnsafeMutablePointer<FlowRecord>, _ d: DNSInfo, frame: RawSpan, time: UInt64) {
        var info = unsafe f.pointee.dns ?? DNSFlowInfo()
        if !d.isResponse {
            info.queries &+= 1
            if info.queryName == 0 && d.nameHash != 0 {
                info.queryName = names.intern(hash: d.nameHash) { DNSMessage.queryName(in: frame, info: d) }
                info.queryType = d.queryType
            }
            info.pendingID = d.id
            info.pendingSince = time
        } else {
            info.responses &+= 1
            info.responseCode = d.responseCode
            info.answers &+= d.answerCount
            if info.queryName == 0 && d.nameHash != 0 {
                info.queryName = names.intern(hash: d.nameHash) { DNSMessage.queryName(in: frame, info: d) }
                info.queryType = d.queryType
            }
            if info.pendingSince != 0 && info.pendingID == d.id {
                if info.latencyMicroseconds == 0 {
                    info.latencyMicroseconds = max(1, Self.microseconds(time &- info.pendingSince))
                }
                info.pendingSince = 0
            }
        }
        unsafe f.pointee.dns = info
    }

    @inlinable
    mutating func trackTLS(_ f: UnsafeMutablePointer<FlowRecord>, _ t: TLSClientHelloInfo, frame: RawSpan) {
        var info = TLSFlowInfo()
        info.offeredVersion = t.offeredVersion
        if t.serverNameOffset >= 0 {
            info.serverName = names.intern(hash: t.serverNameHash) {
                TLSClientHello.text(in: frame, offset: t.serverNameOffset, length: Int(t.serverNameLength))
            }
        }
        if t.alpnOffset >= 0 {
            info.alpn = names.intern(hash: t.alpnHash) {
                TLSClientHello.text(in: frame, offset: t.alpnOffset, length: Int(t.alpnLength))
            }
        }
        unsafe f.pointee.tls = info
    }

    @inlinable
    mutating func attributeICMPError(_ q: QuotedPacket, carrier: NetworkLayer) {
        let (key, _) = FlowKey.normalised(
            source: q.source, sourcePort: q.hasPorts ? q.sourcePort : 0, destination: q.destination,
            destinationPort: q.hasPorts ? q.destinationPort : 0, protocolNumber: q.protocolNumber,
            vlanID: carrier.vlanID, tunnel: carrier.tunnel, tunnelID: carrier.tunnelID)
        guard let i = find(key, hash: key.tableHash) else {
            stats.icmpErrorsUnmatched &+= 1
            return
        }
        stats.icmpErrorsAttributed &+= 1
        unsafe records[i].icmpErrors &+= 1
        unsafe records[i].lastICMPType = carrier.icmpType
        unsafe records[i].lastICMPCode = carrier.icmpCode
    }

    @inlinable static func microseconds(_ ns: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: min(ns / 1000, UInt64(UInt32.max)))
    }

    // MARK: Fragments

    @usableFromInline struct FragmentPorts {
        @usableFromInline var source = IPAddress.zero
        @usableFromInline var destination = IPAddress.zero
        @usableFromInline var identification: UInt32 = 0
        @usableFromInline var protocolNumber: UInt8 = 0
        @usableFromInline var valid = false
        @usableFromInline var sourcePort: UInt16 = 0
        @usableFromInline var destinationPort: UInt16 = 0
        @inlinable init() {}
    }

    @inlinable func fragmentSlot(_ l: NetworkLayer) -> Int {
        var h = l.source.low ^ l.destination.low &* 31 ^ UInt64(l.fragmentIdentification) &* 0x9E37_79B9
        h ^= l.source.high ^ l.destination.high ^ UInt64(l.protocolNumber)
        h = (h ^ h >> 29) &* 0xBF58_476D_1CE4_E5B9
        return Int(truncatingIfNeeded: h >> 32) & fragmentMask
    }

    @inlinable mutating func rememberFragment(_ l: NetworkLayer) {
        var e = FragmentPorts()
        e.source = l.source
        e.destination = l.destination
        e.identification = l.fragmentIdentification
        e.protocolNumber = l.protocolNumber
        e.valid = true
        e.sourcePort = l.sourcePort
        e.destinationPort = l.destinationPort
        unsafe fragments[fragmentSlot(l)] = e
    }

    @inlinable func fragmentPorts(_ l: NetworkLayer) -> (UInt16, UInt16)? {
        let e = unsafe fragments[fragmentSlot(l)]
        guard e.valid, e.identification == l.fragmentIdentification, e.source == l.source,
            e.destination == l.destination, e.protocolNumber == l.protocolNumber
        else { return nil }
        return (e.sourcePort, e.destinationPort)
    }

    // MARK: Table

    @inlinable
    func find(_ key: FlowKey, hash: UInt32) -> Int? {
        var slot = Int(hash) & slotMask
        while true {
            let e = unsafe index[slot]
            if e == 0 { return nil }
            let i = Int(e &- 1)
            if unsafe hashes[i] == hash && records[i].key == key { return i }
            slot = (slot &+ 1) & slotMask
        }
    }

    /// The record of `key`, inserted (zeroed) if absent; nil when the table is full and the
    /// policy rejects new flows.
    @inlinable
    mutating func findOrInsert(_ key: FlowKey, hash: UInt32) -> (index: Int, isNew: Bool)? {
        while true {
            var slot = Int(hash) & slotMask
            while true {
                let e = unsafe index[slot]
                if e == 0 { break }
                let i = Int(e &- 1)
                if unsafe hashes[i] == hash && records[i].key == key { return (i, false) }
                slot = (slot &+ 1) & slotMask
            }
            if freeCount == 0 {
                guard makeRoom() else { return nil }
                continue  // eviction moved index entries: probe again
            }
            freeCount &-= 1
            let i = Int(unsafe free[freeCount])
            unsafe (records + i).initialize(to: FlowRecord(key: key))
            unsafe hashes[i] = hash
            unsafe index[slot] = UInt32(i &+ 1)
            return (i, true)
        }
    }

    @usableFromInline @inline(never)
    mutating func makeRoom() -> Bool {
        guard case .evictIdlest(let sample) = configuration.eviction else { return false }
        var victim = -1
        var oldest = UInt64.max
        for _ in 0..<max(1, sample) {
            sampler ^= sampler << 13
            sampler ^= sampler >> 7
            sampler ^= sampler << 17
            let i = Int(sampler % UInt64(capacity))
            let r = unsafe records[i]
            let age = r.tcpState.isTerminal ? 0 : r.lastSeen.nanoseconds
            if age < oldest {
                oldest = age
                victim = i
            }
        }
        stats.evictions &+= 1
        close(victim, reason: .evicted)
        return true
    }

    /// Emits `closed` for record `i` and frees it.
    @usableFromInline
    mutating func close(_ i: Int, reason: FlowEndReason) {
        unsafe records[i].endReason = reason
        unsafe sink.receive(.closed, records[i])
        stats.flowsClosed &+= 1
        remove(i)
    }

    @usableFromInline
    mutating func remove(_ i: Int) {
        let hash = unsafe hashes[i]
        var slot = Int(hash) & slotMask
        while unsafe index[slot] != UInt32(i &+ 1) { slot = (slot &+ 1) & slotMask }
        // Backward-shift deletion keeps every probe chain unbroken.
        var hole = slot
        var j = slot
        while true {
            j = (j &+ 1) & slotMask
            let e = unsafe index[j]
            if e == 0 { break }
            let home = Int(unsafe hashes[Int(e &- 1)]) & slotMask
            let between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)
            if between { continue }
            unsafe index[hole] = e
            hole = j
        }
        unsafe index[hole] = 0
        unsafe hashes[i] = 0
        unsafe free[freeCount] = UInt32(i)
        freeCount &+= 1
    }

    // MARK: Timeouts

    @inlinable
    func timeout(of r: FlowRecord) -> (UInt64, FlowEndReason) {
        let t = configuration.timeouts
        switch r.key.protocolNumber {
        case IPProtocol.tcp:
            switch r.tcpState {
            case .closed: return (t.tcpFinished, .tcpFinished)
            case .reset, .refused: return (t.tcpFinished, .tcpReset)
            case .synSent, .synReceived: return (t.tcpHandshake, .idleTimeout)
            default: return (t.tcpEstablished, .idleTimeout)
            }
        case IPProtocol.udp: return (t.udp, .idleTimeout)
        case IPProtocol.icmp, IPProtocol.icmpv6: return (t.icmp, .idleTimeout)
        default: return (t.other, .idleTimeout)
        }
    }

    /// Checks up to `budget` records, round robin, against their timeouts at the latest capture time.
    @usableFromInline
    mutating func sweep(budget: Int) {
        for _ in 0..<min(budget, capacity) {
            let i = sweepCursor
            sweepCursor = sweepCursor &+ 1 == capacity ? 0 : sweepCursor &+ 1
            guard unsafe hashes[i] != 0 else { continue }
            let last = unsafe records[i].lastSeen.nanoseconds
            let (limit, reason) = timeout(of: unsafe records[i])
            if now > last && now &- last > limit { close(i, reason: reason) }
        }
    }

    /// Advances the tracker's clock (for live captures that go quiet) and closes every flow
    /// whose timeout has passed.
    public mutating func expire(at time: Timestamp) {
        if time.nanoseconds > now { now = time.nanoseconds }
        sweep(budget: capacity)
        stats.activeFlows = activeFlows
    }

    /// Closes every flow with ``FlowEndReason/endOfCapture`` (end of a file, shutdown).
    public mutating func finish() {
        for i in 0..<capacity where unsafe hashes[i] != 0 {
            close(i, reason: .endOfCapture)
        }
        stats.activeFlows = 0
    }

    /// Visits every tracked flow (for snapshots); the table is unchanged.
    public func forEachFlow(_ body: (FlowRecord) throws -> Void) rethrows {
        for i in 0..<capacity where unsafe hashes[i] != 0 {
            try unsafe body(records[i])
        }
    }

    /// Current counters, with ``FlowTrackerStatistics/activeFlows`` filled in.
    public var currentStatistics: FlowTrackerStatistics {
        var s = statistics
        s.activeFlows = activeFlows
        return s
    }
}
