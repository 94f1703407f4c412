#if canImport(Glibc)
import Glibc
#endif

/// Tracks bidirectional flows from decoded packets: counters per direction, TCP state,
/// handshake RTT, retransmissions, reordering, zero windows, DNS and TLS names, and the
/// timeouts that end them. Events go to a ``FlowSink``.
///
/// Memory is fixed at start and nothing is allocated per packet. Per flow of capacity: a
/// 128-byte entry with everything a packet touches (key, counters, last-seen times, TCP
/// sequence state), an 80-byte details record written only on rarer events (first packet of a
/// direction, TCP handshake and anomalies, ICMP errors, DNS or TLS, tunnel endpoints), two
/// 4-byte index slots (open addressing, linear probing, backward-shift deletion), and an
/// eighth of a place in the table of tunnel endpoint addresses (``bytesPerFlow``: 220). A slot
/// holds the entry's number and, in the bits the number does not need, a fingerprint of the
/// key's hash: a probe reads only the entry whose fingerprint matches, and the look-ahead
/// requests that one. Free entries are chained through themselves. One tracker per capture
/// thread: it is not thread-safe, and needs no lock.
///
/// The non-mutating helpers that the per-packet path calls (`probe`, `prefetchEntries`,
/// `guessClientDirection`, …) are `@inline(__always)`: called out of line from a mutating
/// method, Swift lends them the tracker by copying all of it (about 380 bytes) to the stack
/// first, once per call.
public struct FlowTracker<Sink: FlowSink & ~Copyable>: ~Copyable {
    public let configuration: FlowTrackerConfiguration
    public var sink: Sink
    /// Names referenced by ``DNSFlowInfo`` and ``TLSFlowInfo`` IDs.
    public let names: NameTable
    /// Outer (node) addresses of tunnelled flows.
    @usableFromInline let addresses: EndpointAddressTable
    @usableFromInline var stats = FlowTrackerStatistics()
    /// Counters so far (``FlowTrackerStatistics/activeFlows`` as of the last sweep; see ``currentStatistics``).
    public var statistics: FlowTrackerStatistics {
        var s = stats
        s.namesNotKept = names.overflowed
        s.tunnelEndpointsNotKept = addresses.notKept
        return s
    }

    @usableFromInline let capacity: Int
    @usableFromInline var entries: UnsafeMutablePointer<FlowEntry>
    @usableFromInline var details: UnsafeMutablePointer<FlowDetails>
    /// Open-addressing index (linear probing), 0 when empty: entry index + 1 in the bits of
    /// `entryMask`, the hash's ``fingerprint(_:)`` in the others.
    @usableFromInline var index: UnsafeMutablePointer<UInt32>
    @usableFromInline let slotMask: Int
    @usableFromInline let entryMask: UInt32
    /// Entries not in use: those never used start at `nextUnused`; released ones are chained
    /// from `freeHead` (entry number + 1, 0 at the end) through their `nextSequence[0]`.
    @usableFromInline var freeCount: Int
    @usableFromInline var freeHead: UInt32 = 0
    @usableFromInline var nextUnused = 0
    @usableFromInline var sweepCursor = 0
    @usableFromInline var sampler: UInt64 = 0x9E37_79B9_7F4A_7C15
    @usableFromInline var fragments: UnsafeMutablePointer<FragmentPorts>
    @usableFromInline let fragmentMask: Int
    @usableFromInline var now: UInt64 = 0
    /// Capture time of the last sweep step.
    @usableFromInline var lastSweep: UInt64 = 0
    /// Where ``process(frame:linkType:decoder:timestamp:wireLength:interface:)`` decodes a
    /// frame that was not prepared.
    @usableFromInline let scratch: UnsafeMutablePointer<DecodedPacket>
    /// The packet decoded by the last `process(frame:…)`: `scratch` or a lookahead slot.
    @usableFromInline var current: UnsafeMutablePointer<DecodedPacket>
    /// Frames decoded ahead by ``prepare(frame:linkType:decoder:timestamp:wireLength:)``: a ring
    /// of ``lookaheadSlots`` decoded packets and what identifies their frames.
    @usableFromInline let ahead: UnsafeMutablePointer<DecodedPacket>
    @usableFromInline let aheadFrames: UnsafeMutablePointer<PreparedFrame>
    /// Frames prepared so far, and the oldest of them not yet processed (both only grow).
    @usableFromInline var aheadHead = 0
    @usableFromInline var aheadTail = 0

    public init(configuration: FlowTrackerConfiguration = .init(), sink: consuming Sink) {
        precondition(configuration.capacity > 0 && configuration.capacity < Int(UInt32.max / 2),
                     "FlowTracker capacity must be in 1..<2^31")
        self.configuration = configuration
        self.sink = sink
        self.names = NameTable(capacity: configuration.nameCapacity)
        self.addresses = EndpointAddressTable(capacity: configuration.resolvedTunnelEndpointCapacity)
        capacity = configuration.capacity
        var slots = 16
        while slots < capacity * 2 { slots <<= 1 }
        slotMask = slots - 1
        let entryBits = UInt32.bitWidth - UInt32(capacity).leadingZeroBitCount  // holds 1...capacity
        entryMask = (1 << entryBits) &- 1  // capacity < 2^31: at least one fingerprint bit
        // Zeroed anonymous mappings, backed by memory only as flows touch them. All-zero is a
        // free entry (status 0) and an empty slot.
        entries = zeroedAllocation(FlowEntry.self, count: capacity)
        details = zeroedAllocation(FlowDetails.self, count: capacity)
        index = zeroedAllocation(UInt32.self, count: slots)
        freeCount = capacity
        var fragmentSlots = 16
        while fragmentSlots < max(configuration.fragmentCacheSize, 16) { fragmentSlots <<= 1 }
        fragmentMask = fragmentSlots - 1
        fragments = .allocate(capacity: fragmentSlots)
        unsafe fragments.initialize(repeating: FragmentPorts(), count: fragmentSlots)
        scratch = .allocate(capacity: 1)
        unsafe scratch.initialize(to: DecodedPacket())
        current = scratch
        ahead = .allocate(capacity: Self.lookaheadSlots)
        unsafe ahead.initialize(repeating: DecodedPacket(), count: Self.lookaheadSlots)
        aheadFrames = .allocate(capacity: Self.lookaheadSlots)
        unsafe aheadFrames.initialize(repeating: PreparedFrame(), count: Self.lookaheadSlots)
    }

    deinit {
        unsafe releaseZeroedAllocation(entries, count: capacity)
        unsafe releaseZeroedAllocation(details, count: capacity)
        unsafe releaseZeroedAllocation(index, count: slotMask &+ 1)
        unsafe fragments.deallocate()
        unsafe scratch.deallocate()
        unsafe ahead.deallocate()
        unsafe aheadFrames.deallocate()
    }

    /// Bytes of the per-packet entry of one flow (the target is at most 128).
    public static var entryBytes: Int { MemoryLayout<FlowEntry>.stride }
    /// Bytes allocated per flow of capacity: entry, details, two index slots, and the flow's
    /// share of the tunnel endpoint table at its default size (a place per 8 flows).
    public static var bytesPerFlow: Int {
        MemoryLayout<FlowEntry>.stride + MemoryLayout<FlowDetails>.stride + 8
            + (EndpointAddressTable.bytesPerPlace + FlowTrackerConfiguration.flowsPerTunnelEndpoint - 1)
            / FlowTrackerConfiguration.flowsPerTunnelEndpoint
    }
    /// The memory allocated for the table, in bytes (names not counted).
    public var tableBytes: Int {
        capacity * (MemoryLayout<FlowEntry>.stride + MemoryLayout<FlowDetails>.stride) + (slotMask + 1) * 4
            + (fragmentMask + 1) * MemoryLayout<FragmentPorts>.stride + addresses.bytes
    }

    public var activeFlows: Int { capacity - freeCount }

    // MARK: Per packet

    /// Counts one decoded packet in the flow of each of its IP layers.
    ///
    /// To read the packet in place the tracker needs its address, and a borrowed value has
    /// none: Swift copies the packet (672 bytes) to the stack first, about 13 ns per packet
    /// here (`Benchmarks/Tools/entry-bench`). Pass `&packet` to the `inout` overload, which
    /// reads your packet where it is and leaves it unchanged, or let the tracker decode with
    /// ``process(frame:linkType:decoder:timestamp:wireLength:interface:)``.
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
        unsafe withUnsafePointer(to: packet) { p in
            unsafe processDecoded(p, prepared: nil, frame: frame, timestamp: timestamp, wireLength: wireLength,
                                  interface: interface)
        }
    }

    /// Counts one decoded packet, read where it is (no copy); `packet` is not changed. The
    /// same as the borrowing overload otherwise.
    @inlinable
    public mutating func process(
        _ packet: inout DecodedPacket, frame: RawSpan, timestamp: Timestamp, wireLength: Int,
        interface: Int = 0
    ) {
        unsafe withUnsafePointer(to: &packet) { p in
            unsafe processDecoded(p, prepared: nil, frame: frame, timestamp: timestamp, wireLength: wireLength,
                                  interface: interface)
        }
    }

    /// Decodes one frame with `decoder` and counts it: the step every capture loop runs per
    /// packet. The decoded packet lives in the tracker's own memory and is read in place, never
    /// copied (see ``lastPacket``). A frame given to
    /// ``prepare(frame:linkType:decoder:timestamp:wireLength:)`` before is not decoded again.
    /// - Returns: where decoding stopped early, or nil when every layer present was decoded.
    @inlinable @discardableResult
    public mutating func process(
        frame: RawSpan, linkType: LinkType, decoder: PacketDecoder, timestamp: Timestamp, wireLength: Int,
        interface: Int = 0
    ) -> DecodeError? {
        var packet = scratch
        var prepared: UnsafePointer<PreparedFrame>? = nil
        if aheadTail != aheadHead {
            // Normally the oldest prepared frame. Frames prepared before the one found are
            // given up; when none is this frame (it was not prepared), all are kept.
            let identity = PreparedFrame(frame, linkType: linkType, timestamp: timestamp, wireLength: wireLength)
            var n = aheadTail
            while n != aheadHead {
                let slot = n & (Self.lookaheadSlots &- 1)
                if unsafe aheadFrames[slot].isSameFrame(as: identity) {
                    packet = unsafe ahead + slot
                    prepared = unsafe UnsafePointer(aheadFrames + slot)
                    stats.preparedPackets &+= 1
                    stats.preparedDiscarded &+= UInt64(n &- aheadTail)
                    aheadTail = n &+ 1
                    break
                }
                n &+= 1
            }
        }
        if packet == scratch {
            unsafe decoder.decode(frame, linkType: linkType, into: &scratch.pointee)
        }
        current = packet
        unsafe processDecoded(packet, prepared: prepared, frame: frame, timestamp: timestamp, wireLength: wireLength,
                              interface: interface)
        return unsafe packet.pointee.stop
    }

    /// The packet decoded by the last call of ``process(frame:linkType:decoder:timestamp:wireLength:interface:)``.
    public var lastPacket: DecodedPacket { unsafe current.pointee }

    /// How many frames ``prepare(frame:linkType:decoder:timestamp:wireLength:)`` holds at most.
    public static var lookaheadSlots: Int { 8 }

    /// ``prepare(frame:linkType:decoder:timestamp:wireLength:)`` requests the entries of the
    /// frame prepared this many calls before (its index slots have had time to arrive).
    @inlinable static var entryLookahead: Int { 2 }

    /// Decodes a frame that will be processed soon and starts loading the table memory its
    /// flows will touch, so that memory arrives while the frames before it are processed.
    ///
    /// A capture loop that sees its packets in batches (a ring block) calls this for a packet
    /// a few places ahead of the one it processes (AFPacketSource: 4): the index slots of this
    /// frame are requested now, and the entries of the frame prepared ``entryLookahead`` calls
    /// before (whose index slots arrived in the meantime). Processing the same frame later
    /// (same bytes at the same address, same length, link type, timestamp and wire length)
    /// uses this decode. Frames should be processed in the order they were prepared, fewer
    /// than ``lookaheadSlots`` ahead, and their bytes must not change in between. Frames that
    /// were not prepared may come in between; a prepared frame processed out of order, or after
    /// ``lookaheadSlots`` others were prepared, is decoded again, never mixed up with another.
    @inlinable
    public mutating func prepare(
        frame: RawSpan, linkType: LinkType, decoder: PacketDecoder, timestamp: Timestamp, wireLength: Int
    ) {
        let mask = Self.lookaheadSlots &- 1
        if aheadHead &- aheadTail >= Self.entryLookahead {
            unsafe prefetchEntries(of: aheadFrames + ((aheadHead &- Self.entryLookahead) & mask))
        }
        if aheadHead &- aheadTail == Self.lookaheadSlots {  // the oldest is given up
            aheadTail &+= 1
            stats.preparedDiscarded &+= 1
        }
        let slot = aheadHead & mask
        let packet = unsafe ahead + slot
        unsafe decoder.decode(frame, linkType: linkType, into: &packet.pointee)
        var prepared = PreparedFrame(frame, linkType: linkType, timestamp: timestamp, wireLength: wireLength)
        let count = min(unsafe packet.pointee.layerCount, PacketDecoder.maximumNetworkLayers)
        var i = 0
        while i < count {
            let layer = unsafe DecodedPacket.layer(i, of: packet)
            let hash = unsafe FlowKey.normalised(layer.pointee, sourcePort: layer.pointee.sourcePort,
                                                 destinationPort: layer.pointee.destinationPort).key.tableHash
            prepared.hashes[i] = hash
            unsafe prefetchForReading(index + (Int(hash) & slotMask))
            i &+= 1
        }
        unsafe aheadFrames[slot] = prepared
        aheadHead &+= 1
    }

    /// Requests the entries the index slots of a prepared frame point to (both cache lines):
    /// along each probe chain, the first entry whose fingerprint matches.
    @inlinable @inline(__always)
    func prefetchEntries(of prepared: UnsafePointer<PreparedFrame>) {
        var i = 0
        while i < PacketDecoder.maximumNetworkLayers {
            let hash = unsafe prepared.pointee.hashes[i]
            if hash == 0 { break }
            let fingerprint = fingerprint(hash)
            var slot = Int(hash) & slotMask
            var probes = 0
            while probes < Self.prefetchProbes {
                let e = unsafe index[slot]
                if e == 0 { break }
                if e & ~entryMask == fingerprint {
                    let entry = unsafe UnsafeRawPointer(entries + entryNumber(inSlot: e))
                    unsafe prefetchForReading(entry)
                    unsafe prefetchForReading(entry + 64)
                    break
                }
                slot = (slot &+ 1) & slotMask
                probes &+= 1
            }
            i &+= 1
        }
    }

    /// How far along a probe chain ``prefetchEntries(of:)`` looks (chains at the table's load
    /// of at most ½ are rarely longer).
    @inlinable static var prefetchProbes: Int { 8 }

    /// Counts a decoded packet; `prepared`, when the packet was decoded by ``prepare(frame:linkType:decoder:timestamp:wireLength:)``,
    /// holds its layers' hashes.
    @inlinable
    mutating func processDecoded(
        _ packet: UnsafePointer<DecodedPacket>, prepared: UnsafePointer<PreparedFrame>?, frame: RawSpan,
        timestamp: Timestamp, wireLength: Int, interface: Int
    ) {
        stats.packets &+= 1
        if timestamp.nanoseconds > now { now = timestamp.nanoseconds }
        let count = unsafe packet.pointee.layerCount
        if count == 0 {
            stats.nonIPPackets &+= 1
        }
        var i = 0
        while i < count {
            let preparedHash = unsafe prepared?.pointee.hashes[i] ?? 0
            unsafe update(packet, layerIndex: i, preparedHash: preparedHash, frame: frame, time: timestamp.nanoseconds,
                          wireLength: UInt64(wireLength), interface: interface)
            i &+= 1
        }
        if let quoted = unsafe packet.pointee.quoted, count > 0 {
            unsafe attributeICMPError(quoted, carrier: packet.pointee.layers[count &- 1])
        }
        if stats.packets & 255 == 0 { sweepForElapsedTime() }
    }

    /// Seconds modulo 2¹⁶ of a capture time.
    @inlinable static func tick(_ time: UInt64) -> UInt16 { UInt16(truncatingIfNeeded: time / 1_000_000_000) }

    /// Sweeps a share of the table proportional to the capture time since the last sweep, so
    /// the whole table is checked every ``sweepPeriod`` of capture time (and at least 16
    /// entries every 256 packets, so a capture whose clock stands still is swept too).
    @usableFromInline
    mutating func sweepForElapsedTime() {
        let elapsed = now &- min(lastSweep, now)
        lastSweep = now
        let share = Double(elapsed) / Double(Self.sweepPeriod) * Double(capacity)
        sweep(budget: max(16, Int(min(share, Double(capacity)))))
    }

    /// The whole table is checked for timeouts once per this much capture time (2 s).
    @inlinable static var sweepPeriod: UInt64 { 2_000_000_000 }

    /// Counts layer `layerIndex` of `packet` in its flow. `preparedHash` is its key's hash with
    /// the layer's own ports, when already known (0 otherwise).
    @inlinable
    mutating func update(
        _ packet: UnsafePointer<DecodedPacket>, layerIndex: Int, preparedHash: UInt32, frame: RawSpan, time: UInt64,
        wireLength: UInt64, interface: Int
    ) {
        let layer = unsafe DecodedPacket.layer(layerIndex, of: packet)  // read in place, not copied
        var sourcePort = unsafe layer.pointee.sourcePort
        var destinationPort = unsafe layer.pointee.destinationPort
        let protocolNumber = unsafe layer.pointee.protocolNumber
        if unsafe layer.pointee.isFragment && protocolNumber != IPProtocol.icmp && protocolNumber != IPProtocol.icmpv6 {
            if unsafe layer.pointee.isLaterFragment {
                if let ports = unsafe fragmentPorts(layer.pointee) {
                    sourcePort = ports.0
                    destinationPort = ports.1
                } else {
                    stats.fragmentsWithoutPorts &+= 1
                }
            } else if unsafe layer.pointee.hasPorts {
                unsafe rememberFragment(layer.pointee)
            }
        }
        let (key, direction) = unsafe FlowKey.normalised(layer.pointee, sourcePort: sourcePort, destinationPort: destinationPort)
        let hash = unsafe preparedHash != 0 && !layer.pointee.isLaterFragment ? preparedHash : key.tableHash
        let isTCP = unsafe protocolNumber == IPProtocol.tcp && layer.pointee.transportOffset >= 0
        let flags = unsafe layer.pointee.tcpFlags

        guard var r = findOrInsert(key, hash: hash) else {
            stats.rejectedPackets &+= 1
            return
        }
        stats.flowUpdates &+= 1
        // A new SYN on a finished connection's 5-tuple starts a new connection.
        if !r.isNew && isTCP && flags.contains(.syn) && !flags.contains(.ack) {
            let state = unsafe entries[r.index].tcpState
            if state.isTerminal || state == .closing {
                close(r.index, reason: .reused)
                guard let fresh = findOrInsert(key, hash: hash) else {
                    stats.rejectedPackets &+= 1
                    return
                }
                r = fresh
            }
        }
        let e = unsafe entries + r.index
        if r.isNew {
            let d = unsafe details + r.index
            unsafe d.initialize(to: FlowDetails())
            unsafe e.pointee.interface = UInt16(truncatingIfNeeded: interface)
            unsafe e.pointee.reportTick = Self.tick(time)
            if unsafe layerIndex &+ 1 < packet.pointee.layerCount { unsafe e.pointee.status |= FlowEntry.carriesTunnel }
            unsafe e.pointee.clientSide = UInt8(guessClientDirection(layer, direction: direction))
            if unsafe layerIndex > 0 && layer.pointee.tunnel != .none {
                let outer = unsafe DecodedPacket.layer(layerIndex &- 1, of: packet)
                unsafe d.pointee.outerSource = addresses.intern(outer.pointee.source)  // released in remove(_:)
                unsafe d.pointee.outerDestination = addresses.intern(outer.pointee.destination)
            }
        }
        let previousLast = unsafe e.pointee.lastSeen[direction]
        if unsafe e.pointee.packets[direction] == 0 {
            unsafe details[r.index].firstSeen[direction] = time
        }
        unsafe e.pointee.packets[direction] &+= 1
        unsafe e.pointee.ipBytes[direction] &+= UInt64(layer.pointee.ipLength)
        unsafe e.pointee.wireBytes[direction] &+= wireLength
        unsafe e.pointee.lastSeen[direction] = time

        if isTCP {
            unsafe trackTCP(e, r.index, layer, direction: direction, time: time, previousLast: previousLast)
        }
        if unsafe layerIndex == packet.pointee.layerCount &- 1 {
            if let dns = unsafe packet.pointee.dns { unsafe trackDNS(details + r.index, dns, frame: frame, time: time) }
            if let tls = unsafe packet.pointee.tls { unsafe trackTLS(details + r.index, tls, frame: frame) }
        }
        if r.isNew {
            stats.flowsOpened &+= 1
            if configuration.emitsOpened { sink.receive(.opened, record(r.index, endReason: .none)) }
        }
    }

    /// Sender is the client unless the ports say otherwise: the side with the lower port
    /// (servers listen on low and well-known ports; clients use ephemeral ones).
    @inlinable @inline(__always)
    func guessClientDirection(_ layer: UnsafePointer<NetworkLayer>, direction: Int) -> Int {
        let receiver = 1 &- direction
        if unsafe layer.pointee.protocolNumber == IPProtocol.tcp && layer.pointee.tcpFlags.contains(.syn) {
            return unsafe layer.pointee.tcpFlags.contains(.ack) ? receiver : direction
        }
        if unsafe layer.pointee.protocolNumber == IPProtocol.icmp || layer.pointee.protocolNumber == IPProtocol.icmpv6 {
            return unsafe layer.pointee.icmpType == 0 || layer.pointee.icmpType == 129 ? receiver : direction
        }
        if unsafe layer.pointee.hasPorts && layer.pointee.sourcePort < layer.pointee.destinationPort { return receiver }
        return direction
    }

    @inlinable
    mutating func trackTCP(
        _ f: UnsafeMutablePointer<FlowEntry>, _ i: Int, _ l: UnsafePointer<NetworkLayer>, direction: Int, time: UInt64, previousLast: UInt64
    ) {
        let flags = unsafe l.pointee.tcpFlags
        unsafe f.pointee.flagsSeen[direction] |= UInt8(truncatingIfNeeded: flags.rawValue)
        let client = Int(unsafe f.pointee.clientSide)
        let state = unsafe f.pointee.tcpState
        let finBit: UInt8 = direction == 0 ? 0x01 : 0x02
        if flags.contains(.syn) {
            if !flags.contains(.ack) {
                if state == .none {
                    unsafe f.pointee.trackerFlags |= 0x80  // the SYN was seen: RTTs can be measured
                    unsafe f.pointee.tcpState = .synSent
                    unsafe f.pointee.clientSide = UInt8(direction)
                    unsafe f.pointee.status |= FlowEntry.clientFromHandshake
                }
            } else if state == .none || state == .synSent {
                unsafe f.pointee.tcpState = .synReceived
                unsafe f.pointee.clientSide = UInt8(1 &- direction)
                unsafe f.pointee.status |= FlowEntry.clientFromHandshake
                let synTime = unsafe details[i].firstSeen[1 &- direction]
                if state == .synSent && time >= synTime {
                    unsafe details[i].serverRTTMicroseconds = Self.microseconds(time &- synTime)
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
                    // Only after a SYN and SYN-ACK were seen, so the client direction has its SYN time.
                    let synTime = unsafe details[i].firstSeen[client]
                    if unsafe f.pointee.trackerFlags & 0x80 != 0 && time >= synTime {
                        unsafe details[i].handshakeRTTMicroseconds = Self.microseconds(time &- synTime)
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
        let segmentLength = unsafe l.pointee.payloadLength &+ (flags.contains(.syn) ? 1 : 0) &+ (flags.contains(.fin) ? 1 : 0)
        let initBit: UInt8 = direction == 0 ? 0x04 : 0x08
        if flags.contains(.rst) {
            // RST carries no data worth analysing.
        } else if unsafe (f.pointee.trackerFlags & initBit) == 0 {
            unsafe f.pointee.trackerFlags |= initBit
            unsafe f.pointee.nextSequence[direction] = l.pointee.sequenceNumber &+ segmentLength
        } else if segmentLength > 0 {
            let expected = unsafe f.pointee.nextSequence[direction]
            let end = unsafe l.pointee.sequenceNumber &+ segmentLength
            if unsafe Int32(bitPattern: l.pointee.sequenceNumber &- expected) >= 0 {
                unsafe f.pointee.nextSequence[direction] = end
            } else if Int32(bitPattern: end &- expected) > 0 {
                // Overlaps what was sent and adds more: a repacketised retransmission.
                unsafe details[i].retransmissions[direction] &+= 1
                unsafe f.pointee.nextSequence[direction] = end
            } else if unsafe l.pointee.payloadLength <= 1 && l.pointee.sequenceNumber == expected &- 1 {
                // Keep-alive: one byte (or none) just below the window edge.
            } else {
                let rtt = UInt64(unsafe details[i].handshakeRTTMicroseconds) &* 1000
                let threshold = max(rtt, 3_000_000)
                if time &- previousLast < threshold && time >= previousLast {
                    unsafe details[i].outOfOrder[direction] &+= 1
                } else {
                    unsafe details[i].retransmissions[direction] &+= 1
                }
            }
        }
        // Zero window: count the transitions to a zero advertised window.
        let zeroBit: UInt8 = direction == 0 ? 0x10 : 0x20
        if !flags.contains(.syn) && !flags.contains(.rst) && !flags.contains(.fin) {
            if unsafe l.pointee.window == 0 {
                if unsafe (f.pointee.trackerFlags & zeroBit) == 0 {
                    unsafe f.pointee.trackerFlags |= zeroBit
                    unsafe details[i].zeroWindowEvents[direction] &+= 1
                }
            } else {
                unsafe f.pointee.trackerFlags &= ~zeroBit
            }
        }
    }

    /// DNS and TLS share the flow's ``FlowApplicationInfo``: the first kind seen keeps it, and
    /// the other kind's messages on the same flow are counted in
    /// ``FlowTrackerStatistics/applicationInfoNotKept``.
    @inlinable
    mutating func trackDNS(_ f: UnsafeMutablePointer<FlowDetails>, _ d: DNSInfo, frame: RawSpan, time: UInt64) {
        var info = unsafe f.pointee.application
        switch info.kind {
        case .tls:
            stats.applicationInfoNotKept &+= 1
            return
        case .none: info.bits = FlowApplicationInfo.Kind.dns.rawValue
        case .dns: break
        }
        if info.name == 0 && d.nameHash != 0 {
            info.name = names.intern(hash: d.nameHash) { DNSMessage.queryName(in: frame, info: d) }
            names.retain(info.name)  // released in remove(_:)
            info.queryType = d.queryType
        }
        // Microseconds modulo 2³²: latencies are exact up to 35 minutes.
        let micros = UInt32(truncatingIfNeeded: time / 1000)
        if !d.isResponse {
            info.queries &+= 1
            info.pendingID = d.id
            info.pendingSince = micros
            info.isPending = true
        } else {
            info.responses &+= 1
            info.responseCode = d.responseCode
            info.answers &+= d.answerCount
            if info.isPending && info.pendingID == d.id {
                if info.second == 0 {
                    let elapsed = micros &- info.pendingSince
                    info.second = Int32(bitPattern: elapsed) < 0 ? UInt32.max : max(1, elapsed)
                }
                info.isPending = false
            }
        }
        unsafe f.pointee.application = info
    }

    /// Keeps the flow's first ClientHello.
    @inlinable
    mutating func trackTLS(_ f: UnsafeMutablePointer<FlowDetails>, _ t: TLSClientHelloInfo, frame: RawSpan) {
        switch unsafe f.pointee.application.kind {
        case .tls: return
        case .dns:
            stats.applicationInfoNotKept &+= 1
            return
        case .none: break
        }
        var info = FlowApplicationInfo()
        info.bits = FlowApplicationInfo.Kind.tls.rawValue
        info.queries = t.offeredVersion
        if t.serverNameOffset >= 0 {
            info.name = names.intern(hash: t.serverNameHash) {
                TLSClientHello.text(in: frame, offset: t.serverNameOffset, length: Int(t.serverNameLength))
            }
        }
        if t.alpnOffset >= 0 {
            info.second = names.intern(hash: t.alpnHash) {
                TLSClientHello.text(in: frame, offset: t.alpnOffset, length: Int(t.alpnLength))
            }
        }
        names.retain(info.name)  // released in remove(_:)
        names.retain(info.second)
        unsafe f.pointee.application = info
    }

    /// Counts an ICMP error on the flow of the packet it quotes and, when that packet is a
    /// tunnel packet whose inner packet the quote reaches, also on the inner packet's flow
    /// (a router's "fragmentation needed" about a node-to-node VXLAN packet is about the pod
    /// flow inside it). Attributed when either flow is tracked.
    @inlinable
    mutating func attributeICMPError(_ q: QuotedPacket, carrier: NetworkLayer) {
        let (key, _) = FlowKey.normalised(
            source: q.source, sourcePort: q.hasPorts ? q.sourcePort : 0, destination: q.destination,
            destinationPort: q.hasPorts ? q.destinationPort : 0, protocolNumber: q.protocolNumber,
            vlanID: carrier.vlanID, tunnel: carrier.tunnel, tunnelID: carrier.tunnelID)
        var found = countICMPError(on: key, carrier: carrier)
        if let inner = q.inner {
            let (innerKey, _) = FlowKey.normalised(
                source: inner.source, sourcePort: inner.sourcePort, destination: inner.destination,
                destinationPort: inner.destinationPort, protocolNumber: inner.protocolNumber,
                vlanID: inner.vlanID, tunnel: inner.tunnel, tunnelID: inner.tunnelID)
            if countICMPError(on: innerKey, carrier: carrier) { found = true }
        }
        if found {
            stats.icmpErrorsAttributed &+= 1
        } else {
            stats.icmpErrorsUnmatched &+= 1
        }
    }

    /// Counts an ICMP error on `key`'s flow; false when it is not tracked.
    @inlinable
    mutating func countICMPError(on key: FlowKey, carrier: NetworkLayer) -> Bool {
        guard let i = find(key, hash: key.tableHash) else { return false }
        unsafe details[i].icmpErrors &+= 1
        unsafe details[i].lastICMPType = carrier.icmpType
        unsafe details[i].lastICMPCode = carrier.icmpCode
        return true
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

    @inlinable @inline(__always) func fragmentSlot(_ l: NetworkLayer) -> Int {
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

    @inlinable @inline(__always) func fragmentPorts(_ l: NetworkLayer) -> (UInt16, UInt16)? {
        let e = unsafe fragments[fragmentSlot(l)]
        guard e.valid, e.identification == l.fragmentIdentification, e.source == l.source,
            e.destination == l.destination, e.protocolNumber == l.protocolNumber
        else { return nil }
        return (e.sourcePort, e.destinationPort)
    }

    // MARK: Table

    /// The bits of an index slot above `entryMask` for a key with this hash: the high bits of
    /// a multiplicative mix, independent of the low bits that pick the home slot.
    @inlinable @inline(__always)
    func fingerprint(_ hash: UInt32) -> UInt32 {
        UInt32(truncatingIfNeeded: (UInt64(hash) &* 0x9E37_79B9_7F4A_7C15) >> 32) & ~entryMask
    }

    /// The entry a non-empty index slot points to.
    @inlinable @inline(__always)
    func entryNumber(inSlot slot: UInt32) -> Int { Int((slot & entryMask) &- 1) }

    /// Linear probing from `key`'s home slot: its entry index, or the empty slot where it would go.
    /// Entries are read only where the slot's fingerprint matches.
    @inlinable @inline(__always)
    func probe(_ key: FlowKey, hash: UInt32) -> (entry: Int?, slot: Int) {
        let fingerprint = fingerprint(hash)
        var slot = Int(hash) & slotMask
        while true {
            let e = unsafe index[slot]
            if e == 0 { return (nil, slot) }
            if e & ~entryMask == fingerprint {
                let i = entryNumber(inSlot: e)
                if unsafe entries[i].key == key { return (i, slot) }
            }
            slot = (slot &+ 1) & slotMask
        }
    }

    @inlinable @inline(__always)
    func find(_ key: FlowKey, hash: UInt32) -> Int? { probe(key, hash: hash).entry }

    /// The entry of `key`, inserted (zeroed) if absent; nil when the table is full and the
    /// policy rejects new flows.
    @inlinable
    mutating func findOrInsert(_ key: FlowKey, hash: UInt32) -> (index: Int, isNew: Bool)? {
        while true {
            let (existing, slot) = probe(key, hash: hash)
            if let existing { return (existing, false) }
            if freeCount == 0 {
                guard makeRoom() else { return nil }
                continue  // eviction moved index entries: probe again
            }
            freeCount &-= 1
            let i: Int
            if freeHead != 0 {
                i = Int(freeHead &- 1)
                freeHead = unsafe entries[i].nextSequence[0]
            } else {
                i = nextUnused
                nextUnused &+= 1
            }
            unsafe entries[i] = FlowEntry(key: key)
            unsafe index[slot] = fingerprint(hash) | UInt32(i &+ 1)
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
            let e = unsafe entries[i]
            let age = e.tcpState.isTerminal ? 0 : e.lastSeenEither
            if age < oldest {
                oldest = age
                victim = i
            }
        }
        stats.evictions &+= 1
        close(victim, reason: .evicted)
        return true
    }

    /// The public record of entry `i`.
    @usableFromInline
    func record(_ i: Int, endReason: FlowEndReason) -> FlowRecord {
        unsafe FlowRecord(entries[i], details[i], addresses: addresses, endReason: endReason)
    }

    /// Emits `closed` for entry `i` and frees it.
    @usableFromInline
    mutating func close(_ i: Int, reason: FlowEndReason) {
        sink.receive(.closed, record(i, endReason: reason))
        stats.flowsClosed &+= 1
        remove(i)
    }

    @usableFromInline
    mutating func remove(_ i: Int) {
        let hash = unsafe entries[i].key.tableHash
        var slot = Int(hash) & slotMask
        while unsafe entryNumber(inSlot: index[slot]) != i { slot = (slot &+ 1) & slotMask }
        unsafe removeSlot(slot, from: index, slotMask: slotMask) {
            Int(unsafe entries[entryNumber(inSlot: $0)].key.tableHash) & slotMask
        }
        let d = unsafe details + i
        switch unsafe d.pointee.application.kind {
        case .dns: unsafe names.release(d.pointee.application.name)
        case .tls:
            unsafe names.release(d.pointee.application.name)
            unsafe names.release(d.pointee.application.second)
        case .none: break
        }
        unsafe addresses.release(d.pointee.outerSource)
        unsafe addresses.release(d.pointee.outerDestination)
        unsafe entries[i].status = 0
        unsafe entries[i].nextSequence[0] = freeHead
        freeHead = UInt32(i &+ 1)
        freeCount &+= 1
    }

    // MARK: Timeouts

    @inlinable @inline(__always)
    func timeout(protocolNumber: UInt8, state: TCPState) -> (UInt64, FlowEndReason) {
        let t = configuration.timeouts
        switch protocolNumber {
        case IPProtocol.tcp:
            switch state {
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

    /// Checks up to `budget` entries, round robin, against their timeouts at the latest
    /// capture time, and sends interim records of flows due an active-timeout update.
    @usableFromInline
    mutating func sweep(budget: Int) {
        let activeSeconds = configuration.timeouts.active / 1_000_000_000
        let nowTick = Self.tick(now)
        for _ in 0..<min(budget, capacity) {
            let i = sweepCursor
            sweepCursor = sweepCursor &+ 1 == capacity ? 0 : sweepCursor &+ 1
            let e = unsafe entries + i
            guard unsafe e.pointee.isInUse else { continue }
            let last = unsafe e.pointee.lastSeenEither
            let (limit, reason) = unsafe timeout(protocolNumber: e.pointee.key.protocolNumber, state: e.pointee.tcpState)
            if now > last && now &- last > limit {
                close(i, reason: reason)
            } else if activeSeconds != 0, unsafe UInt64(nowTick &- e.pointee.reportTick) >= min(activeSeconds, 65_535) {
                unsafe e.pointee.reportTick = nowTick
                sink.receive(.updated, record(i, endReason: .none))
            }
        }
    }

    /// Advances the tracker's clock (for live captures that go quiet), closes every flow
    /// whose timeout has passed and sends due interim records.
    public mutating func expire(at time: Timestamp) {
        if time.nanoseconds > now { now = time.nanoseconds }
        sweep(budget: capacity)
        stats.activeFlows = activeFlows
    }

    /// Closes every flow (end of a file, shutdown): TCP connections that already finished
    /// with ``FlowEndReason/tcpFinished`` or ``FlowEndReason/tcpReset``, the rest with
    /// ``FlowEndReason/endOfCapture``.
    public mutating func finish() {
        stats.preparedDiscarded &+= UInt64(aheadHead &- aheadTail)  // prepared, never processed
        aheadTail = aheadHead
        for i in 0..<capacity where unsafe entries[i].isInUse {
            let reason: FlowEndReason
            switch unsafe entries[i].tcpState {
            case .closed: reason = .tcpFinished
            case .reset, .refused: reason = .tcpReset
            default: reason = .endOfCapture
            }
            close(i, reason: reason)
        }
        stats.activeFlows = 0
    }

    /// Visits every tracked flow (for snapshots); the table is unchanged.
    public func forEachFlow(_ body: (FlowRecord) throws -> Void) rethrows {
        for i in 0..<capacity where unsafe entries[i].isInUse {
            try body(record(i, endReason: .none))
        }
    }

    /// Current counters, with ``FlowTrackerStatistics/activeFlows`` filled in.
    public var currentStatistics: FlowTrackerStatistics {
        var s = statistics
        s.activeFlows = activeFlows
        return s
    }
}

/// What identifies a frame given to ``FlowTracker/prepare(frame:linkType:decoder:timestamp:wireLength:)``,
/// and the table hashes of its layers' flows (0 past the last).
@usableFromInline
struct PreparedFrame {
    @usableFromInline var address: UInt = 0
    @usableFromInline var length = 0
    @usableFromInline var wireLength = 0
    @usableFromInline var timestamp: UInt64 = 0
    @usableFromInline var linkType: UInt32 = 0
    @usableFromInline var hashes: InlineArray<4, UInt32> = [0, 0, 0, 0]

    @inlinable init() {}

    @inlinable
    init(_ frame: RawSpan, linkType: LinkType, timestamp: Timestamp, wireLength: Int) {
        address = unsafe frame.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        length = frame.byteCount
        self.wireLength = wireLength
        self.timestamp = timestamp.nanoseconds
        self.linkType = linkType.rawValue
    }

    @inlinable
    func isSameFrame(as other: PreparedFrame) -> Bool {
        address == other.address && length == other.length && timestamp == other.timestamp
            && wireLength == other.wireLength && linkType == other.linkType
    }
}

extension FlowKey {
    /// The key of `layer`'s flow with the given ports (a later fragment's come from its first).
    @inlinable
    static func normalised(_ layer: NetworkLayer, sourcePort: UInt16, destinationPort: UInt16) -> (key: FlowKey, direction: Int) {
        normalised(source: layer.source, sourcePort: sourcePort, destination: layer.destination,
                   destinationPort: destinationPort, protocolNumber: layer.protocolNumber, vlanID: layer.vlanID,
                   tunnel: layer.tunnel, tunnelID: layer.tunnelID)
    }
}

/// `count` zeroed values of `T` in an anonymous mapping; traps when memory is exhausted (a
/// capacity the machine cannot hold is a configuration error).
func zeroedAllocation<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
    // An anonymous mapping, not calloc: page-aligned, so a 128-byte entry occupies exactly two
    // cache lines (calloc's 16-byte header put every entry across three), and zero pages are
    // only backed by memory as flows touch them.
    let bytes = max(count &* MemoryLayout<T>.stride, 1)
    let raw = unsafe mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    guard let raw, raw != MAP_FAILED else {
        fatalError("FlowTracker: cannot map \(count) × \(MemoryLayout<T>.stride) bytes (errno \(errno))")
    }
    return unsafe raw.bindMemory(to: T.self, capacity: count)
}

/// Releases memory from ``zeroedAllocation(_:count:)``.
func releaseZeroedAllocation<T>(_ pointer: UnsafeMutablePointer<T>, count: Int) {
    _ = unsafe munmap(UnsafeMutableRawPointer(pointer), max(count &* MemoryLayout<T>.stride, 1))
}
