import CaptureCore
import Foundation
import Testing

/// Feeds frames to a tracker with explicit capture times (milliseconds).
struct TrackerHarness: ~Copyable {
    var tracker: FlowTracker<CollectingFlowSink>
    let decoder = PacketDecoder()

    init(_ configuration: FlowTrackerConfiguration = FlowTrackerConfiguration()) {
        tracker = FlowTracker(configuration: configuration, sink: CollectingFlowSink())
    }

    mutating func feed(_ frame: [UInt8], atMilliseconds ms: UInt64) {
        var p = DecodedPacket()
        unsafe decoder.decode(frame.span.bytes, linkType: .ethernet, into: &p)
        unsafe tracker.process(&p, frame: frame.span.bytes, timestamp: Timestamp(nanoseconds: ms * 1_000_000),
                               wireLength: frame.count)
    }

    mutating func finish() -> [FlowRecord] {
        tracker.finish()
        return tracker.sink.closed
    }
}

@Suite("Flow tracker")
struct FlowTrackerTests {
    static let c = "10.244.1.5", s = "10.244.2.7"

    /// A full connection: handshake (RTT 3 ms: SYN at 0, SYN-ACK at 1, ACK at 3), a request,
    /// a two-segment response, FIN from the client, FIN from the server, last ACK.
    static func connection(_ h: inout TrackerHarness, base: UInt64 = 0, sport: UInt16 = 40000) {
        h.feed(FrameBuilder.tcp4(c, sport, s, 80, seq: 100, flags: .syn), atMilliseconds: base)
        h.feed(FrameBuilder.tcp4(s, 80, c, sport, seq: 900, ack: 101, flags: [.syn, .ack]), atMilliseconds: base + 1)
        h.feed(FrameBuilder.tcp4(c, sport, s, 80, seq: 101, ack: 901, flags: .ack), atMilliseconds: base + 3)
        h.feed(FrameBuilder.tcp4(c, sport, s, 80, seq: 101, ack: 901, flags: [.ack, .psh], payload: [UInt8](repeating: 1, count: 100)), atMilliseconds: base + 4)
        h.feed(FrameBuilder.tcp4(s, 80, c, sport, seq: 901, ack: 201, flags: .ack, payload: [UInt8](repeating: 2, count: 1000)), atMilliseconds: base + 5)
        h.feed(FrameBuilder.tcp4(s, 80, c, sport, seq: 1901, ack: 201, flags: [.ack, .psh], payload: [UInt8](repeating: 2, count: 500)), atMilliseconds: base + 6)
        h.feed(FrameBuilder.tcp4(c, sport, s, 80, seq: 201, ack: 2401, flags: [.fin, .ack]), atMilliseconds: base + 7)
        h.feed(FrameBuilder.tcp4(s, 80, c, sport, seq: 2401, ack: 202, flags: [.fin, .ack]), atMilliseconds: base + 8)
        h.feed(FrameBuilder.tcp4(c, sport, s, 80, seq: 202, ack: 2402, flags: .ack), atMilliseconds: base + 9)
    }

    @Test("A full TCP connection: client, server, counters, RTT, FIN close")
    func fullConnection() throws {
        var h = TrackerHarness()
        Self.connection(&h)
        #expect(h.tracker.statistics.flowsOpened == 1)
        let flows = h.finish()
        #expect(flows.count == 1)
        let f = try #require(flows.first)
        #expect(f.tcpState == .closed)
        #expect(f.clientFromHandshake)
        let clientIsA = f.key.a == IPAddress(Self.c)
        #expect(f.clientSide == (clientIsA ? 0 : 1))
        #expect(f.client.packets == 5 && f.server.packets == 4)
        #expect(f.client.ipBytes == 5 * 40 + 100)
        #expect(f.server.ipBytes == 4 * 40 + 1500)
        #expect(f.client.wireBytes == 5 * 54 + 100)
        #expect(f.handshakeRTTMicroseconds == 3000)
        #expect(f.serverRTTMicroseconds == 1000)
        #expect(f.client.retransmissions == 0 && f.server.retransmissions == 0)
        #expect(f.client.tcpFlags.isSuperset(of: [.syn, .ack, .psh, .fin]))
        #expect(f.firstSeen == Timestamp(nanoseconds: 0) && f.lastSeen == Timestamp(nanoseconds: 9_000_000))
        #expect(f.endReason == .tcpFinished, "finished before the end of the capture")
    }

    @Test("Finished connections are emitted after the linger timeout, not before")
    func finishedLinger() {
        var h = TrackerHarness()
        Self.connection(&h)
        h.tracker.expire(at: Timestamp(nanoseconds: 4_000_000_000))
        #expect(h.tracker.sink.closed.isEmpty)
        h.tracker.expire(at: Timestamp(nanoseconds: 5_100_000_000))
        #expect(h.tracker.sink.closed.count == 1)
        #expect(h.tracker.sink.closed.first?.endReason == .tcpFinished)
    }

    @Test("SYN answered by RST is refused; RST after data is reset")
    func refusedAndReset() {
        var h = TrackerHarness()
        h.feed(FrameBuilder.tcp4(Self.c, 1, Self.s, 81, seq: 1, flags: .syn), atMilliseconds: 0)
        h.feed(FrameBuilder.tcp4(Self.s, 81, Self.c, 1, seq: 0, ack: 2, flags: [.rst, .ack]), atMilliseconds: 1)
        h.feed(FrameBuilder.tcp4(Self.c, 2, Self.s, 80, seq: 1, ack: 1, flags: [.ack, .psh], payload: [1]), atMilliseconds: 2)
        h.feed(FrameBuilder.tcp4(Self.s, 80, Self.c, 2, seq: 1, flags: .rst), atMilliseconds: 3)
        let flows = h.finish()
        #expect(flows.first { $0.key.portA == 81 || $0.key.portB == 81 }?.tcpState == .refused)
        #expect(flows.allSatisfy { $0.endReason == .tcpReset })
        let reset = flows.first { $0.key.portA == 2 || $0.key.portB == 2 }
        #expect(reset?.tcpState == .reset)
        #expect(reset?.clientFromHandshake == false)
    }

    @Test("Missed handshake: the side with the higher port is the client")
    func midstream() {
        var h = TrackerHarness()
        h.feed(FrameBuilder.tcp4(Self.s, 5432, Self.c, 51000, seq: 10, ack: 10, flags: .ack, payload: [1, 2, 3]), atMilliseconds: 0)
        let f = h.finish()[0]
        #expect(f.tcpState == .established)
        #expect(!f.clientFromHandshake)
        #expect(f.client.packets == 0 && f.server.packets == 1)
        let clientAddress = f.clientSide == 0 ? f.key.a : f.key.b
        #expect(clientAddress == IPAddress(Self.c))
    }

    @Test("Retransmission, reordering and zero-window events are counted per direction")
    func sequenceAnalysis() {
        var h = TrackerHarness()
        let c = Self.c, s = Self.s
        h.feed(FrameBuilder.tcp4(c, 3, s, 80, seq: 1, flags: .syn), atMilliseconds: 0)
        h.feed(FrameBuilder.tcp4(s, 80, c, 3, seq: 1, ack: 2, flags: [.syn, .ack]), atMilliseconds: 1)
        h.feed(FrameBuilder.tcp4(c, 3, s, 80, seq: 2, ack: 2, flags: .ack), atMilliseconds: 2)
        let data = [UInt8](repeating: 0, count: 100)
        h.feed(FrameBuilder.tcp4(c, 3, s, 80, seq: 2, ack: 2, flags: .ack, payload: data), atMilliseconds: 10)
        h.feed(FrameBuilder.tcp4(c, 3, s, 80, seq: 202, ack: 2, flags: .ack, payload: data), atMilliseconds: 11)  // 102..<202 missing
        h.feed(FrameBuilder.tcp4(c, 3, s, 80, seq: 102, ack: 2, flags: .ack, payload: data), atMilliseconds: 12)  // reordered, 1 ms later
        h.feed(FrameBuilder.tcp4(c, 3, s, 80, seq: 2, ack: 2, flags: .ack, payload: data), atMilliseconds: 500)   // retransmitted, long after
        h.feed(FrameBuilder.tcp4(c, 3, s, 80, seq: 301, ack: 2, flags: .ack), atMilliseconds: 510)                // keep-alive probe
        h.feed(FrameBuilder.tcp4(s, 80, c, 3, seq: 2, ack: 302, flags: .ack, window: 0), atMilliseconds: 520)
        h.feed(FrameBuilder.tcp4(s, 80, c, 3, seq: 2, ack: 302, flags: .ack, window: 0), atMilliseconds: 521)
        h.feed(FrameBuilder.tcp4(s, 80, c, 3, seq: 2, ack: 302, flags: .ack, window: 100), atMilliseconds: 530)
        h.feed(FrameBuilder.tcp4(s, 80, c, 3, seq: 2, ack: 302, flags: .ack, window: 0), atMilliseconds: 540)
        let f = h.finish()[0]
        #expect(f.client.outOfOrder == 1)
        #expect(f.client.retransmissions == 1)
        #expect(f.server.zeroWindowEvents == 2)
        #expect(f.client.zeroWindowEvents == 0)
    }

    @Test("Idle timeouts close flows per protocol; active timeout sends interim updates")
    func timeouts() {
        var configuration = FlowTrackerConfiguration()
        configuration.timeouts.active = 10_000_000_000
        var h = TrackerHarness(configuration)
        let dns = FrameBuilder.udp4(Self.c, 5000, Self.s, 53, payload: FrameBuilder.dns(id: 1, response: false, name: "a.b", type: 1))
        h.feed(dns, atMilliseconds: 0)
        // A long-lived TCP stream with a packet every second for 25 s; the agent's timer calls
        // expire(at:) every second, as a live capture loop does.
        for second in 0..<25 {
            h.feed(FrameBuilder.tcp4(Self.c, 7000, Self.s, 6379, seq: UInt32(1 + second * 10), ack: 1, flags: .ack,
                                     payload: [UInt8](repeating: 0, count: 10)), atMilliseconds: UInt64(second) * 1000)
            h.tracker.expire(at: Timestamp(nanoseconds: UInt64(second) * 1_000_000_000 + 500_000_000))
        }
        // Both flows are alive (UDP idles out after 60 s): each gets an interim record at 10 s and 20 s.
        #expect(h.tracker.sink.updated == 4)
        h.tracker.expire(at: Timestamp(nanoseconds: 59_000_000_000))
        #expect(h.tracker.sink.closed.isEmpty)
        h.tracker.expire(at: Timestamp(nanoseconds: 61_000_000_000))
        #expect(h.tracker.sink.closed.count == 1)
        #expect(h.tracker.sink.closed.first?.key.protocolNumber == 17)
        #expect(h.tracker.sink.closed.first?.endReason == .idleTimeout)
        #expect(h.tracker.activeFlows == 1)
    }

    @Test("A full table evicts (counted) and memory stays fixed; rejectNew counts rejected packets")
    func capacity() {
        var configuration = FlowTrackerConfiguration(capacity: 64)
        var h = TrackerHarness(configuration)
        let before = h.tracker.tableBytes
        for i in 0..<1000 {
            h.feed(FrameBuilder.udp4(Self.c, UInt16(10000 + i), Self.s, 53, payload: []), atMilliseconds: UInt64(i))
        }
        #expect(h.tracker.activeFlows == 64)
        #expect(h.tracker.statistics.evictions == 1000 - 64)
        #expect(h.tracker.sink.closed.count == 1000 - 64)
        #expect(h.tracker.sink.closed.allSatisfy { $0.endReason == .evicted })
        #expect(h.tracker.tableBytes == before)
        // Every surviving flow is still found: eviction kept the index consistent.
        let flows = h.finish()
        #expect(Set(flows.map { $0.key }).count == 1000)

        configuration.eviction = .rejectNew
        var r = TrackerHarness(configuration)
        for i in 0..<100 {
            r.feed(FrameBuilder.udp4(Self.c, UInt16(10000 + i), Self.s, 53, payload: []), atMilliseconds: UInt64(i))
        }
        #expect(r.tracker.activeFlows == 64)
        #expect(r.tracker.statistics.rejectedPackets == 36)
        #expect(r.tracker.statistics.evictions == 0)
    }

    // Capacities of 1, 5 and 256 leave 31, 29 and 23 bits of each index slot to the hash's
    // fingerprint; 1 and 5 also evict all the time.
    @Test("Random insert/remove churn keeps every live flow findable (backward-shift deletion)",
          arguments: [1, 5, 256])
    func churn(capacity: Int) {
        var configuration = FlowTrackerConfiguration(capacity: capacity)
        configuration.timeouts.udp = 50_000_000  // 50 ms
        var h = TrackerHarness(configuration)
        var rng: UInt64 = 42
        var packets = 0
        for t in 0..<20_000 {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            let port = UInt16(truncatingIfNeeded: rng >> 33) % 600
            h.feed(FrameBuilder.udp4(Self.c, 20000 + port, Self.s, 53, payload: []), atMilliseconds: UInt64(t))
            packets += 1
        }
        let flows = h.finish()
        let total = flows.reduce(0) { $0 + Int($1.packets) }
        #expect(total == packets, "every packet counted in exactly one closed flow")
        #expect(h.tracker.statistics.flowsOpened == h.tracker.statistics.flowsClosed)
    }

    // A packet of a tracked flow must find that flow's entry, never another's, whatever share
    // of the index slot the fingerprint gets: 31 bits at capacity 1, 15 at 70,000 (2^17 slots,
    // so home slots collide), 8 at 2^24 − 1.
    @Test("Each flow's packets find its own entry, both directions, at every index width",
          arguments: [1, 5, 256, 70_000, (1 << 24) - 1])
    func everyFlowFindsItsEntry(capacity: Int) {
        var h = TrackerHarness(FlowTrackerConfiguration(capacity: capacity))
        let flows = min(capacity, 3000)
        let client = { (i: Int) in "10.\(1 + i / 65_536).\(i / 256 % 256).\(i % 256)" }
        for i in 0..<flows {
            h.feed(FrameBuilder.udp4(client(i), UInt16(1024 + i % 50_000), Self.s, 53, payload: [1]), atMilliseconds: 1)
        }
        for i in (0..<flows).reversed() {
            h.feed(FrameBuilder.udp4(Self.s, 53, client(i), UInt16(1024 + i % 50_000), payload: [1, 2]), atMilliseconds: 2)
        }
        let records = h.finish()
        #expect(h.tracker.statistics.evictions == 0)
        #expect(records.count == flows)
        #expect(records.allSatisfy { $0.packets == 2 && $0.directions[0].packets == 1 && $0.directions[1].packets == 1 })
        #expect(Set(records.map(\.key)).count == flows)
    }

    /// ICMP port unreachable from the server back to the client, quoting the IPv4 header and
    /// UDP header of `udp` (an Ethernet frame from the client).
    static func portUnreachable(quoting udp: [UInt8]) -> [UInt8] {
        var b = FrameBuilder()
        b.ethernet(type: 0x0800)
        let ip = b.ipv4(s, c, proto: 1)
        b.bytes += [3, 3, 0, 0, 0, 0, 0, 0] + Array(udp[14..<(14 + 28)])
        b.finishIPv4(at: ip)
        return b.bytes
    }

    @Test("ICMP errors are attributed to the flow of the packet they quote")
    func icmpAttribution() {
        var h = TrackerHarness()
        let udp = FrameBuilder.udp4(Self.c, 40000, Self.s, 53, payload: [1, 2, 3, 4])
        h.feed(udp, atMilliseconds: 0)
        h.feed(Self.portUnreachable(quoting: udp), atMilliseconds: 1)
        #expect(h.tracker.statistics.icmpErrorsAttributed == 1)
        let flows = h.finish()
        let u = flows.first { $0.key.protocolNumber == 17 }
        #expect(u?.icmpErrors == 1 && u?.lastICMPType == 3 && u?.lastICMPCode == 3)
        #expect(flows.contains { $0.key.protocolNumber == 1 }, "the ICMP packet itself is still counted")
        // The error's own flow is keyed by the ports it quotes: one ICMP flow per flow reported
        // on. A second error about another UDP flow between the same hosts is a second ICMP flow.
        let icmp = flows.first { $0.key.protocolNumber == 1 }
        #expect(icmp.map { Set([$0.key.portA, $0.key.portB]) } == [40000, 53])
        var h2 = TrackerHarness()
        for port: UInt16 in [40000, 40001] {
            let other = FrameBuilder.udp4(Self.c, port, Self.s, 53, payload: [1, 2, 3, 4])
            h2.feed(other, atMilliseconds: 0)
            h2.feed(Self.portUnreachable(quoting: other), atMilliseconds: 1)
        }
        let both = h2.finish()
        #expect(h2.tracker.statistics.icmpErrorsAttributed == 2)
        #expect(both.filter { $0.key.protocolNumber == 1 }.count == 2)
        #expect(both.filter { $0.key.protocolNumber == 17 }.allSatisfy { $0.icmpErrors == 1 })
    }

    @Test("Later IP fragments are counted in the flow of their first fragment")
    func fragmentAttribution() {
        var h = TrackerHarness()
        var first = FrameBuilder()
        first.ethernet(type: 0x0800)
        let ip1 = first.ipv4(Self.c, Self.s, proto: 17, id: 9, moreFragments: true)
        first.udp(1111, 2222, payload: [UInt8](repeating: 0, count: 1472))
        first.put16(UInt16(8 + 2000), at: ip1 + 20 + 4)
        first.finishIPv4(at: ip1)
        var later = FrameBuilder()
        later.ethernet(type: 0x0800)
        let ip2 = later.ipv4(Self.c, Self.s, proto: 17, id: 9, fragmentOffset: 1480)
        later.bytes += [UInt8](repeating: 0, count: 528)
        later.finishIPv4(at: ip2)
        h.feed(first.bytes, atMilliseconds: 0)
        h.feed(later.bytes, atMilliseconds: 1)
        let flows = h.finish()
        #expect(flows.count == 1)
        #expect(flows.first?.packets == 2)
        #expect(flows.first?.ipBytes == UInt64(1500 + 548))
        #expect(h.tracker.statistics.fragmentsWithoutPorts == 0)
    }

    @Test("DNS latency from query to matching response; names interned once")
    func dnsLatency() throws {
        var h = TrackerHarness()
        let name = "redis.cache.svc.cluster.local"
        h.feed(FrameBuilder.udp4(Self.c, 5353, "10.96.0.10", 53, payload: FrameBuilder.dns(id: 7, response: false, name: name, type: 1)), atMilliseconds: 100)
        h.feed(FrameBuilder.udp4("10.96.0.10", 53, Self.c, 5353, payload: FrameBuilder.dns(id: 7, response: true, name: name, type: 1, answers: 2)), atMilliseconds: 103)
        h.feed(FrameBuilder.udp4(Self.c, 6000, "10.96.0.10", 53, payload: FrameBuilder.dns(id: 8, response: false, name: "REDIS.cache.svc.cluster.local", type: 1)), atMilliseconds: 104)
        #expect(h.tracker.names.count == 1)
        let flows = h.finish()
        let d = try #require(flows.first { $0.key.portA == 5353 || $0.key.portB == 5353 }?.dns)
        #expect(d.queries == 1 && d.responses == 1 && d.answers == 2 && d.responseCode == 0)
        #expect(d.latencyMicroseconds == 3000)
        #expect(h.tracker.names[d.queryName] == name)
    }

    /// Resolves the names of every record when it arrives, as the bundled writers do.
    struct NameResolvingSink: FlowSink {
        var names: NameTable? = nil
        /// Closed records: query name or server name, as resolved on arrival.
        var closed: [(key: FlowKey, name: String)] = []
        mutating func receive(_ event: FlowEvent, _ flow: FlowRecord) {
            guard event == .closed, let names else { return }
            closed.append((flow.key, names[flow.dns?.queryName ?? flow.tls?.serverName ?? 0]))
        }
    }

    @Test("A long capture with more distinct names than the name table holds: every flow keeps its names")
    func namesOutliveTheTableCapacity() throws {
        var configuration = FlowTrackerConfiguration()
        // At any time about 8 names belong to tracked flows (SNI and ALPN of the connection,
        // the lookups of the last 5 s): 12 places, for 202 names over the capture.
        configuration.nameCapacity = 12
        configuration.timeouts.udp = 5_000_000_000
        var tracker = FlowTracker(configuration: configuration, sink: NameResolvingSink())
        tracker.sink.names = tracker.names
        let decoder = PacketDecoder()
        func feed(_ frame: [UInt8], second: UInt64) {
            unsafe tracker.process(frame: frame.span.bytes, linkType: .ethernet, decoder: decoder,
                                   timestamp: Timestamp(nanoseconds: second * 1_000_000_000), wireLength: frame.count)
        }
        // One long-lived TLS connection, and a new DNS lookup of a new name every second,
        // each answered; lookups end 5 s after their answer, the connection only at the end.
        let hello = FrameBuilder.clientHello(sni: "api.payments.svc", alpn: "h2", versions: [0x0304])
        feed(FrameBuilder.tcp4(Self.c, 50000, Self.s, 443, seq: 1, ack: 1, flags: [.ack, .psh], payload: hello), second: 1)
        let lookups = 200
        for i in 0..<lookups {
            let second = UInt64(2 + i), port = UInt16(20000 + i), name = "host-\(i).example.org"
            feed(FrameBuilder.udp4(Self.c, port, "10.96.0.10", 53, payload: FrameBuilder.dns(id: UInt16(i), response: false, name: name, type: 1)),
                 second: second)
            feed(FrameBuilder.udp4("10.96.0.10", 53, Self.c, port, payload: FrameBuilder.dns(id: UInt16(i), response: true, name: name, type: 1, answers: 1)),
                 second: second)
            feed(FrameBuilder.tcp4(Self.c, 50000, Self.s, 443, seq: 1 + UInt32(hello.count), ack: 1, flags: .ack), second: second)
            tracker.expire(at: Timestamp(nanoseconds: second * 1_000_000_000))  // as a live capture's timer does
        }
        tracker.finish()
        let records = tracker.sink.closed
        #expect(records.count == lookups + 1)
        var wrong: [String] = []
        for r in records where r.key.portB == 53 || r.key.portA == 53 {
            let port = r.key.portA == 53 ? r.key.portB : r.key.portA
            if r.name != "host-\(Int(port) - 20000).example.org" { wrong.append("\(port): \(r.name)") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) lookups with a wrong or missing name, e.g. \(wrong.prefix(3))")
        #expect(records.first { $0.key.portA == 443 || $0.key.portB == 443 }?.name == "api.payments.svc")
        let s = tracker.statistics
        #expect(s.namesNotKept == 0)
        #expect(tracker.names.count <= 12 && tracker.names.reused >= UInt64(lookups + 2 - 12))
    }

    @Test("When every name belongs to a tracked flow, a new name is not kept and counted")
    func namesNotKeptAreCounted() throws {
        var configuration = FlowTrackerConfiguration()
        configuration.nameCapacity = 2
        var h = TrackerHarness(configuration)
        for i in 0..<3 {
            h.feed(FrameBuilder.udp4(Self.c, UInt16(30000 + i), "10.96.0.10", 53,
                                     payload: FrameBuilder.dns(id: 1, response: false, name: "n\(i).svc", type: 1)),
                   atMilliseconds: UInt64(i))
        }
        #expect(h.tracker.statistics.namesNotKept == 1)
        #expect(h.tracker.currentStatistics.namesNotKept == 1)
        let flows = h.finish()
        #expect(flows.filter { $0.dns?.queryName == 0 }.count == 1)
        #expect(flows.count == 3)
    }

    @Test("TLS SNI and ALPN are kept on the flow")
    func tlsNames() throws {
        var h = TrackerHarness()
        let hello = FrameBuilder.clientHello(sni: "checkout.shop.svc", alpn: "h2", versions: [0x0304])
        h.feed(FrameBuilder.tcp4(Self.c, 50000, Self.s, 443, seq: 1, ack: 1, flags: [.ack, .psh], payload: hello), atMilliseconds: 0)
        let t = try #require(h.finish().first?.tls)
        #expect(h.tracker.names[t.serverName] == "checkout.shop.svc")
        #expect(h.tracker.names[t.alpn] == "h2")
        #expect(t.offeredVersion == 0x0304)
    }

    /// `inner` in flannel's VXLAN (UDP 8472, VNI 1) between nodes `from` and `to`.
    static func vxlan(_ inner: [UInt8], from: String, to: String, sport: UInt16) -> [UInt8] {
        var b = FrameBuilder()
        b.ethernet(type: 0x0800)
        let ip = b.ipv4(from, to, proto: 17)
        b.udp(sport, 8472, payload: [0x08, 0, 0, 0, 0, 0, 1, 0] + inner)
        b.finishIPv4(at: ip)
        return b.bytes
    }

    @Test("A router's error about a VXLAN packet counts on the node-to-node flow and on the pod flow inside it")
    func icmpErrorAboutTunnelPacket() {
        var h = TrackerHarness()
        let data = FrameBuilder.tcp4(Self.c, 1000, Self.s, 80, seq: 1, ack: 1, flags: [.ack, .psh], payload: [UInt8](repeating: 1, count: 1400))
        let outer = Self.vxlan(data, from: "10.0.0.11", to: "10.0.0.12", sport: 40001)
        h.feed(outer, atMilliseconds: 0)
        var b = FrameBuilder()
        b.ethernet(type: 0x0800)
        let ip = b.ipv4("10.0.0.1", "10.0.0.11", proto: 1)
        b.bytes += [3, 4, 0, 0, 0, 0, 0x05, 0x78] + Array(outer[14..<(14 + 548)])
        b.finishIPv4(at: ip)
        h.feed(b.bytes, atMilliseconds: 1)
        // About another pod flow in the same tunnel, never seen: not attributed to it (the
        // outer flow it travelled in is unknown too).
        let unseen = Self.vxlan(FrameBuilder.tcp4(Self.c, 1001, Self.s, 80, seq: 1, flags: .ack), from: "10.0.0.11", to: "10.0.0.12", sport: 40002)
        var u = FrameBuilder()
        u.ethernet(type: 0x0800)
        let uip = u.ipv4("10.0.0.1", "10.0.0.11", proto: 1)
        u.bytes += [3, 4, 0, 0, 0, 0, 0x05, 0x78] + Array(unseen[14...])
        u.finishIPv4(at: uip)
        h.feed(u.bytes, atMilliseconds: 2)
        #expect(h.tracker.statistics.icmpErrorsAttributed == 1 && h.tracker.statistics.icmpErrorsUnmatched == 1)
        let flows = h.finish()
        let pod = flows.first { $0.key.tunnel == .vxlan && $0.key.protocolNumber == 6 }
        let node = flows.first { $0.carriesTunnel && $0.key.protocolNumber == 17 }
        #expect(pod?.icmpErrors == 1 && pod?.lastICMPType == 3 && pod?.lastICMPCode == 4)
        #expect(node?.icmpErrors == 1)
    }

    @Test("VXLAN: the inner flow is one bidirectional flow despite per-direction outer ports; the outer flow is marked")
    func vxlanFlows() {
        var h = TrackerHarness()
        func wrap(_ inner: [UInt8], from: String, to: String, sport: UInt16) -> [UInt8] {
            Self.vxlan(inner, from: from, to: to, sport: sport)
        }
        h.feed(wrap(FrameBuilder.tcp4(Self.c, 1000, Self.s, 80, seq: 1, flags: .syn), from: "10.0.0.11", to: "10.0.0.12", sport: 40001), atMilliseconds: 0)
        h.feed(wrap(FrameBuilder.tcp4(Self.s, 80, Self.c, 1000, seq: 1, ack: 2, flags: [.syn, .ack]), from: "10.0.0.12", to: "10.0.0.11", sport: 50002), atMilliseconds: 1)
        let flows = h.finish()
        let inner = flows.filter { $0.key.tunnel == .vxlan }
        let outer = flows.filter { $0.carriesTunnel }
        #expect(inner.count == 1 && outer.count == 2)
        #expect(inner.first?.packets == 2 && inner.first?.tcpState == .synReceived)
        #expect(inner.first?.outerSource == IPAddress("10.0.0.11"))
        #expect(inner.first?.key.tunnelID == 1)
    }
}

extension FlowTrackerTests {
    @Test("Tunnel endpoints: flows share a node's address; a full table leaves them out and counts them; ended flows free their places")
    func tunnelEndpointsAreSharedAndFreed() throws {
        var configuration = FlowTrackerConfiguration()
        configuration.tunnelEndpointCapacity = 2
        var h = TrackerHarness(configuration)
        func syn(_ sport: UInt16, via nodes: (String, String), at ms: UInt64) {
            h.feed(Self.vxlan(FrameBuilder.tcp4(Self.c, sport, Self.s, 80, seq: 1, flags: .syn), from: nodes.0, to: nodes.1,
                              sport: 40000 &+ sport), atMilliseconds: ms)
        }
        syn(1001, via: ("10.0.0.11", "10.0.0.12"), at: 0)  // takes both places
        syn(1002, via: ("10.0.0.12", "10.0.0.11"), at: 1)  // the same two addresses: kept
        syn(1003, via: ("10.0.0.13", "10.0.0.14"), at: 2)  // no place: left out, counted
        #expect(h.tracker.statistics.tunnelEndpointsNotKept == 2)
        // Long after the handshake timeout the three flows have ended and freed both places.
        h.tracker.expire(at: Timestamp(nanoseconds: 100_000_000_000))
        #expect(h.tracker.sink.closed.filter { $0.key.tunnel == .vxlan }.count == 3)
        syn(1004, via: ("10.0.0.13", "10.0.0.14"), at: 100_001)
        let inner = Dictionary(uniqueKeysWithValues: h.finish().filter { $0.key.tunnel == .vxlan }.map { ($0.key.portA, $0) })
        #expect(inner.count == 4)
        #expect(inner[1001]?.outerSource == IPAddress("10.0.0.11") && inner[1001]?.outerDestination == IPAddress("10.0.0.12"))
        #expect(inner[1002]?.outerSource == IPAddress("10.0.0.12") && inner[1002]?.outerDestination == IPAddress("10.0.0.11"))
        #expect(inner[1003]?.outerSource == IPAddress.zero && inner[1003]?.outerDestination == IPAddress.zero)
        #expect(inner[1004]?.outerSource == IPAddress("10.0.0.13") && inner[1004]?.outerDestination == IPAddress("10.0.0.14"))
        #expect(h.tracker.statistics.tunnelEndpointsNotKept == 2)
    }

    @Test("A flow keeps DNS or TLS, whichever came first; the other kind is counted, not mixed in")
    func dnsAndTLSOnOneFlow() throws {
        var h = TrackerHarness()
        let hello = FrameBuilder.clientHello(sni: "dns.example.net", alpn: "dot", versions: [0x0304])
        let query = FrameBuilder.dns(id: 9, response: false, name: "db.prod.svc", type: 1)
        let overTCP = [UInt8(query.count >> 8), UInt8(query.count & 0xFF)] + query
        h.feed(FrameBuilder.tcp4(Self.c, 41000, "10.96.0.10", 53, seq: 1, ack: 1, flags: [.ack, .psh], payload: hello), atMilliseconds: 0)
        h.feed(FrameBuilder.tcp4(Self.c, 41000, "10.96.0.10", 53, seq: 1 + UInt32(hello.count), ack: 1, flags: [.ack, .psh],
                                 payload: overTCP), atMilliseconds: 1)
        // And the other way round on a second connection.
        h.feed(FrameBuilder.tcp4(Self.c, 41001, "10.96.0.10", 53, seq: 1, ack: 1, flags: [.ack, .psh], payload: overTCP), atMilliseconds: 2)
        h.feed(FrameBuilder.tcp4(Self.c, 41001, "10.96.0.10", 53, seq: 1 + UInt32(overTCP.count), ack: 1, flags: [.ack, .psh],
                                 payload: hello), atMilliseconds: 3)
        #expect(h.tracker.statistics.applicationInfoNotKept == 2)
        let flows = h.finish()
        let tlsFirst = try #require(flows.first { $0.key.portA == 41000 || $0.key.portB == 41000 })
        let dnsFirst = try #require(flows.first { $0.key.portA == 41001 || $0.key.portB == 41001 })
        #expect(tlsFirst.dns == nil && h.tracker.names[tlsFirst.tls?.serverName ?? 0] == "dns.example.net")
        #expect(h.tracker.names[tlsFirst.tls?.alpn ?? 0] == "dot")
        #expect(dnsFirst.tls == nil && h.tracker.names[dnsFirst.dns?.queryName ?? 0] == "db.prod.svc")
        #expect(dnsFirst.dns?.queries == 1 && dnsFirst.dns?.queryType == 1)
    }
}

@Suite("Flow table memory")
struct FlowTableMemoryTests {
    @Test("The per-packet entry is two cache lines; memory per flow is fixed at start")
    func layout() {
        #expect(FlowTracker<DiscardingFlowSink>.entryBytes == 128)
        let small = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 1000), sink: DiscardingFlowSink())
        let large = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 100_000), sink: DiscardingFlowSink())
        print("flow table: entry \(FlowTracker<DiscardingFlowSink>.entryBytes) B, per flow \(FlowTracker<DiscardingFlowSink>.bytesPerFlow) B, 100k flows \(large.tableBytes) B, NetworkLayer \(MemoryLayout<NetworkLayer>.stride) B, DecodedPacket \(MemoryLayout<DecodedPacket>.stride) B")
        // Grows linearly with capacity: entry + details + index slots (2 to 4 per flow, a power
        // of two in all) + a tunnel endpoint place per 8 flows (its own slots 2 to 4 per place);
        // nothing else depends on capacity. bytesPerFlow counts 2 slots each.
        let marginal = Double(large.tableBytes - small.tableBytes) / Double(100_000 - 1000)
        let perFlow = Double(FlowTracker<DiscardingFlowSink>.bytesPerFlow)
        #expect(marginal >= perFlow - 1 && marginal <= perFlow + 8 + 1, "\(marginal) bytes per flow")
        #expect(FlowTracker<DiscardingFlowSink>.bytesPerFlow <= 220)
    }
}

/// The three ways in: a packet the caller decoded, lent or passed by reference, and decoding
/// into the tracker's own scratch packet. All must track exactly the same flows.
@Suite struct FlowTrackerEntryPointTests {
    @Test(arguments: Corpus.wellformed + Corpus.malformed.prefix(40), [FileAnalysis.EntryPoint.byReference, .inPlace])
    func everyEntryPointTracksTheSameFlows(file: String, entry: FileAnalysis.EntryPoint) {
        let path = Corpus.root.appendingPathComponent(file).path
        let borrowed = FileAnalysis(path: path)
        let inPlace = FileAnalysis(path: path, entry: entry)
        #expect(borrowed.packets == inPlace.packets)
        #expect(borrowed.decodeStops == inPlace.decodeStops)
        #expect(borrowed.flows.count == inPlace.flows.count)
        for (a, b) in zip(borrowed.flows, inPlace.flows) {
            #expect(a.key == b.key && a.tcpState == b.tcpState && a.endReason == b.endReason)
            for i in 0..<2 {
                #expect(a.directions[i].packets == b.directions[i].packets)
                #expect(a.directions[i].ipBytes == b.directions[i].ipBytes)
                #expect(a.directions[i].retransmissions == b.directions[i].retransmissions)
            }
            #expect(a.dns?.queryName == b.dns?.queryName && a.tls?.serverName == b.tls?.serverName)
        }
    }
}
