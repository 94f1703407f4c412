import Backends
import CaptureCore
import Foundation
import PodTapTestSupport
import Testing

/// What a capture thread saw: the flows its tracker closed, plus per-packet observations.
struct CaptureOutcome: Sendable {
    var flows: [FlowRecord] = []
    var tracker = FlowTrackerStatistics()
    var inbound = 0
    var outbound = 0
    /// Packets whose direction disagrees with their source address (see `localAddress`).
    var directionMismatches = 0
    /// Frames whose bytes carry an 802.1Q tag (EtherType 0x8100 at offset 12).
    var taggedFrames = 0
    /// Tagged frames whose tag was not the expected one.
    var wrongTag = 0
    /// Frames whose captured length differs from their length on the wire.
    var lengthMismatches = 0
    /// Unicast IP packets from and to `localAddress`.
    var fromLocal = 0
    var toLocal = 0
    /// The longest captured frame.
    var longestCapture = 0
    /// Calls of the worker's `prepare`.
    var prepareCalls = 0
}

/// A flow tracker per capture thread, as the node agent runs it: each packet decoded ahead by
/// `prepare` while earlier ones are processed.
struct TrackingWorker: CaptureWorker, ~Copyable {
    var tracker = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 4096), sink: CollectingFlowSink())
    let decoder: PacketDecoder
    var outcome = CaptureOutcome()
    /// When set, packets from this address must be outbound and all others inbound.
    let localAddress: IPAddress?
    let expectedTag: UInt16
    /// Whether the source is asked to lend packets to `prepare` ahead of `process`.
    let preparing: Bool

    init(localAddress: IPAddress? = nil, expectedTag: UInt16 = 0, preparing: Bool = true,
         decoder: PacketDecoder = PacketDecoder()) {
        self.decoder = decoder
        self.localAddress = localAddress
        self.expectedTag = expectedTag
        self.preparing = preparing
    }

    var preparesAhead: Bool { preparing }

    mutating func prepare(_ upcoming: borrowing PacketRecord) {
        outcome.prepareCalls += 1
        tracker.prepare(frame: upcoming.bytes, linkType: upcoming.linkType, decoder: decoder,
                        timestamp: upcoming.timestamp, wireLength: upcoming.originalLength)
    }

    mutating func process(_ record: borrowing PacketRecord) {
        tracker.process(frame: record.bytes, linkType: record.linkType, decoder: decoder, timestamp: record.timestamp,
                        wireLength: record.originalLength, interface: record.interfaceIndex)
        let packet = tracker.lastPacket
        switch record.direction {
        case .inbound: outcome.inbound += 1
        case .outbound: outcome.outbound += 1
        case .unknown: break
        }
        if record.bytes.byteCount >= 16,
           unsafe record.bytes.unsafeLoadUnaligned(fromByteOffset: 12, as: UInt16.self) == UInt16(0x8100).bigEndian {
            outcome.taggedFrames += 1
            let tci = UInt16(bigEndian: unsafe record.bytes.unsafeLoadUnaligned(fromByteOffset: 14, as: UInt16.self))
            if tci != expectedTag { outcome.wrongTag += 1 }
        }
        if record.bytes.byteCount != record.originalLength { outcome.lengthMismatches += 1 }
        outcome.longestCapture = max(outcome.longestCapture, record.bytes.byteCount)
        if let localAddress, packet.layerCount > 0 {
            // Only unicast to or from the local address decides; multicast and IPv6
            // link-local noise does not.
            let fromHere = packet.layers[0].source == localAddress
            let toHere = packet.layers[0].destination == localAddress
            if (fromHere && record.direction != .outbound) || (toHere && record.direction != .inbound) {
                outcome.directionMismatches += 1
            }
            if fromHere { outcome.fromLocal += 1 }
            if toHere { outcome.toLocal += 1 }
        }
    }

    consuming func finish() -> CaptureOutcome {
        tracker.finish()
        outcome.flows = tracker.sink.closed
        outcome.tracker = tracker.currentStatistics
        return outcome
    }
}

/// A small ring for tests: 16 blocks of 256 KiB (a GSO frame of 64 KiB fits), 10 ms retire.
func testConfiguration(interface: String, namespace: String) -> AFPacketConfiguration {
    var c = AFPacketConfiguration(interface: interface, namespacePath: namespace)
    c.blockSize = 256 << 10
    c.blockCount = 16
    c.blockRetireTimeoutMilliseconds = 10
    return c
}

/// Runs the standard traffic, then lets the last ring blocks retire.
func runStandardTraffic(_ traffic: NodeTraffic) throws {
    try traffic.run()
    usleep(100_000)
}

@Suite("AF_PACKET TPACKET_V3 capture (real kernel)")
@MainActor struct AFPacketTests {
    @Test("cni0 in the node namespace: 1 thread and 2 flow-fanout threads see every flow exactly, each flow on one thread")
    func bridgeCaptureOneAndTwoThreads() throws {
        let node = try SimulatedNode(podCount: 4)
        defer { node.remove() }
        let traffic = NodeTraffic.standard(on: node)
        try traffic.prepare()
        var config = testConfiguration(interface: node.bridge, namespace: node.namespacePath(node.namespace))
        config.promiscuous = true  // a bridge passes forwarded frames up only when promiscuous
        let single = try AFPacketCapture(configuration: config, threads: 1, pollTimeoutMilliseconds: 20) { _ in TrackingWorker() }
        // The fanout threads do not look ahead: the same flows must come out either way.
        let fanout = try AFPacketCapture(configuration: config, threads: 2, pollTimeoutMilliseconds: 20) { _ in
            TrackingWorker(preparing: false)
        }
        #expect(single.configuration.fanout == nil)
        #expect(fanout.configuration.fanout?.mode == .flow && fanout.configuration.fanout?.defragments == true)
        #expect(fanout.configuration.fanout?.groupID != nil)
        try runStandardTraffic(traffic)
        let one = single.stop(), two = fanout.stop()

        // Every expected flow, exact counts, nothing but IPv6 noise; over both threads together
        // each flow appears exactly once.
        let oneFlows = one.results.flatMap(\.flows), twoFlows = two.results.flatMap(\.flows)
        #expect(NodeTraffic.problems(in: oneFlows, expected: traffic.flows) == [])
        #expect(NodeTraffic.problems(in: twoFlows, expected: traffic.flows) == [])
        // Both captures saw the same packets of every flow (timestamps aside: each socket
        // stamps its own copy).
        for flow in traffic.flows {
            let a = oneFlows.first { $0.key == flow.key }, b = twoFlows.first { $0.key == flow.key }
            for d in 0..<2 {
                #expect(a?.directions[d].packets == b?.directions[d].packets, "\(flow)")
                #expect(a?.directions[d].ipBytes == b?.directions[d].ipBytes, "\(flow)")
                #expect(a?.directions[d].wireBytes == b?.directions[d].wireBytes, "\(flow)")
                #expect(a?.directions[d].tcpFlags == b?.directions[d].tcpFlags, "\(flow)")
            }
        }
        // No flow on both threads. (Noise is left out: MLD reports of several pods from the
        // unspecified address "::" share one tracker key, but the kernel hashes their
        // different flow labels, so they may land on both threads.)
        let keys0 = Set(two.results[0].flows.map(\.key).filter { !NodeTraffic.isNoise($0) })
        let keys1 = Set(two.results[1].flows.map(\.key).filter { !NodeTraffic.isNoise($0) })
        #expect(keys0.isDisjoint(with: keys1))
        let onThread0 = traffic.flows.filter { keys0.contains($0.key) }.count
        print("fanout: \(onThread0) of \(traffic.flows.count) flows on thread 0; statistics \(two.statistics)")
        for flow in traffic.flows {
            guard let r = oneFlows.first(where: { $0.key == flow.key }) else { continue }
            print("  \(flow): client \(r.client.packets) packets \(r.client.ipBytes) B, server \(r.server.packets) packets \(r.server.ipBytes) B, \(r.tcpState)")
        }

        for (n, report) in [one, two].enumerated() {
            #expect(report.errors.allSatisfy { $0 == nil })
            let total = report.total
            #expect(total.droppedByKernel == 0)
            #expect(total.queueFreezes == 0)
            #expect(total.delivered > 100 && total.batches > 0)
            #expect(total.received >= total.delivered)
            // Every packet accounted for: in a flow, or not IP (ARP).
            for outcome in report.results {
                let inFlows = outcome.flows.reduce(0) { $0 + $1.packets }
                #expect(UInt64(outcome.tracker.packets) == inFlows + outcome.tracker.nonIPPackets)
                // Forwarded frames enter the bridge (inbound); the bridge's own IGMP, MLD and
                // neighbour discovery leave it (outbound); nothing is unknown.
                #expect(outcome.inbound + outcome.outbound == Int(outcome.tracker.packets))
                #expect(outcome.lengthMismatches == 0)
                // Looking ahead, the ring lent every packet to `prepare` first, in order: every
                // decode was done ahead and used, none given up. Not looking ahead, none was.
                let preparing = n == 0
                #expect(outcome.tracker.preparedPackets == (preparing ? outcome.tracker.packets : 0))
                #expect(outcome.prepareCalls == (preparing ? Int(outcome.tracker.packets) : 0))
                #expect(outcome.tracker.preparedDiscarded == 0)
            }
            #expect(report.results.reduce(0) { $0 + Int($1.tracker.packets) } == Int(total.delivered))
        }
    }

    /// A fanout mode and the tunnelled traffic sent to it.
    struct TunnelCase: Sendable, CustomTestStringConvertible {
        var mode: AFPacketFanoutMode
        var tunnel = TunnelKind.vxlan
        /// VLAN ids of the tags every frame carries, outermost first (two or more: 802.1ad
        /// outside, 802.1Q inside).
        var tags: [UInt16] = []
        /// IP versions of the inner flows and of the outer packets.
        var inner = 4, outer = 4
        /// VXLAN: the UDP port the frames go to (the decoder unwraps it), and whether the
        /// fanout is told (``AFPacketFanout/useTunnelPorts(of:)``).
        var vxlanPort: UInt16 = 8472
        var fanoutKnowsPort = true
        var testDescription: String {
            "\(mode) \(tunnel) inner IPv\(inner) outer IPv\(outer)\(tags.isEmpty ? "" : " tags \(tags)")"
                + (vxlanPort == 8472 ? "" : " port \(vxlanPort)\(fanoutKnowsPort ? "" : " unknown to the fanout")")
        }
    }

    @Test("Flow fanout keeps both directions of a flow inside VXLAN, Geneve, IP in IP or GRE on one thread and spreads flows; the kernel's hash splits them",
          arguments: [
              TunnelCase(mode: .flow), TunnelCase(mode: .hash), TunnelCase(mode: .flow, tags: [100]),
              TunnelCase(mode: .flow, tags: [100, 200]), TunnelCase(mode: .flow, tags: [100, 200, 300]),
              TunnelCase(mode: .flow, tags: [100, 200, 300, 400]),
              TunnelCase(mode: .flow, tunnel: .geneve), TunnelCase(mode: .hash, tunnel: .geneve),
              TunnelCase(mode: .flow, inner: 6), TunnelCase(mode: .flow, tunnel: .geneve, inner: 6, outer: 6),
              TunnelCase(mode: .flow, outer: 6),
              TunnelCase(mode: .flow, tunnel: .ipInIP), TunnelCase(mode: .flow, tunnel: .ipInIP, inner: 6, outer: 6),
              TunnelCase(mode: .flow, tunnel: .gre), TunnelCase(mode: .flow, tunnel: .gre, inner: 6, outer: 6),
              TunnelCase(mode: .flow, vxlanPort: 4790), TunnelCase(mode: .flow, vxlanPort: 4790, fanoutKnowsPort: false),
          ])
    func tunnelFlowsStayOnOneThread(_ test: TunnelCase) throws {
        let (mode, tags) = (test.mode, test.tags)
        let node = try SimulatedNode(podCount: 2)
        defer { node.remove() }
        let a = node.pods[0], b = node.pods[1]
        // Flannel-style VXLAN frames (UDP 8472, VNI 1), or Geneve frames (UDP 6081, VNI 1, 8
        // bytes of options) between pods a and b: 32 inner TCP flows, 3 packets each way, each
        // direction in outer packets with its own source port, as two nodes with different
        // hash seeds send them. Pod a writes one direction (the
        // capture sees it leave, link header included), pod b the other (it arrives, link
        // header already taken off), step by step, so each flow's handshake comes in order.
        // Tagged: every frame carries the tags; pod a's eth0 takes the outermost out of the
        // frames it receives (the others stay in the payload) but not of those it sends.
        let flows = 32, packets = 3
        let macA = try Self.macAddress(a, on: node), macB = try Self.macAddress(b, on: node)
        var decoder = PacketDecoder()
        decoder.vxlanPorts.0 = test.vxlanPort == 8472 ? 4789 : test.vxlanPort
        var fanout = AFPacketFanout(mode: mode)
        if test.fanoutKnowsPort { fanout.useTunnelPorts(of: decoder) }
        let report = try Self.captureFirstPod(of: node, fanout: fanout, decoder: decoder) {
            for step in 0..<2 * packets {
                let (from, to) = step % 2 == 0 ? (a, macB) : (b, macA)
                try node.exec(in: from.namespace,
                              ["python3", "-c", Self.tunnelSender, to, "\(flows)", "\(packets)", "\(step)",
                               tags.isEmpty ? "0" : tags.map(String.init).joined(separator: ","),
                               "\(test.tunnel)", "\(test.inner)", "\(test.outer)", "\(test.vxlanPort)"])
            }
        }

        // The inner flows each thread tracked, with its packets per direction.
        let perThread = report.results.map { outcome in
            outcome.flows.filter {
                $0.key.tunnel == test.tunnel && $0.key.protocolNumber == 6 && $0.key.a.isIPv4 == (test.inner == 4)
            }
        }
        let keys = perThread.map { Set($0.map(\.key)) }
        #expect(keys[0].union(keys[1]).count == flows)
        let split = keys[0].intersection(keys[1]).count
        print("fanout \(test.testDescription): inner flows on thread 0: \(keys[0].count), thread 1: \(keys[1].count), on both: \(split)")
        // The plain IPv6 flows.
        let perThread6 = report.results.map { outcome in
            outcome.flows.filter { $0.key.tunnel == .none && $0.key.protocolNumber == 6 && !$0.key.a.isIPv4 }
        }
        let keys6 = perThread6.map { Set($0.map(\.key)) }
        #expect(keys6[0].union(keys6[1]).count == flows)
        // The tag was on the frames both ways (inner VXLAN flows key on the inner frame's
        // VLAN, so the plain flows show it).
        #expect(keys6[0].union(keys6[1]).allSatisfy { $0.vlanID == tags.last ?? 0 })
        switch mode {
        case .flow where test.fanoutKnowsPort:
            // Each flow whole on one thread, both directions complete; both threads used (with
            // more than three VLAN tags the program sends everything to member 0).
            let spread = tags.count <= 3
            #expect(split == 0)
            #expect(!keys[0].isEmpty && keys[1].isEmpty == !spread)
            for record in perThread.joined() {
                #expect(record.directions[0].packets == UInt64(packets) && record.directions[1].packets == UInt64(packets),
                        "\(record.key)")
                #expect(record.clientFromHandshake && record.tcpState == .established, "\(record.key)")
            }
            #expect(keys6[0].isDisjoint(with: keys6[1]))
            #expect(!keys6[0].isEmpty && keys6[1].isEmpty == !spread)
            for record in perThread6.joined() {
                #expect(record.directions[0].packets == UInt64(packets) && record.directions[1].packets == UInt64(packets),
                        "\(record.key)")
            }
        default:
            // The kernel hashes the outer 5-tuple, whose source port differs per direction (as
            // does the program when it does not know the tunnel's port):
            // with 32 flows, some land half on each thread (all 32 together: 1 in 2^32).
            #expect(split > 0)
        }
    }

    /// Fragments the fanout's defragmentation flag does not reassemble (it reassembles IPv4,
    /// not IPv6, and not the inner packets of a tunnel) carry no ports after the first one.
    /// IPv4 is sent with the flag (the member gets each datagram reassembled: one packet) and
    /// without it ("ipv4-fragments": the fragments, as on the wire).
    @Test("Flow fanout keeps UDP flows whose datagrams travel in fragments (IPv6, IPv4, inside VXLAN) whole on one thread",
          arguments: ["ipv6", "vxlan4", "vxlan6", "ipv4", "ipv4-fragments"])
    func fragmentedFlowsStayOnOneThread(kind: String) throws {
        let node = try SimulatedNode(podCount: 2)
        defer { node.remove() }
        let reassembled = kind == "ipv4"
        let sent = kind == "ipv4-fragments" ? "ipv4" : kind
        let flows = 32
        // Pod a sends each flow's request whole, pod b the response in two fragments.
        let fanout = AFPacketFanout(mode: .flow, defragments: kind != "ipv4-fragments")
        let report = try Self.captureFirstPod(of: node, fanout: fanout) {
            try Self.exchange(Self.fragmentSender, on: node, flows: flows, kind: sent)
        }
        let perThread = report.results.map { outcome in
            outcome.flows.filter { $0.key.protocolNumber == 17 && $0.key.portB == 53 }
        }
        let keys = perThread.map { Set($0.map(\.key)) }
        let split = keys[0].intersection(keys[1]).count
        print("fanout fragments \(kind): flows on thread 0: \(keys[0].count), thread 1: \(keys[1].count), on both: \(split)")
        #expect(keys[0].union(keys[1]).count == flows)
        #expect(split == 0)
        #expect(!keys[0].isEmpty && !keys[1].isEmpty)
        for record in perThread.joined() {
            // The request one way, the response the other: its two fragments (IP bytes: two
            // headers), or the datagram the kernel reassembled from them.
            #expect(record.directions[0].packets == 1, "\(record.key)")
            if reassembled {
                #expect(record.directions[1].packets == 1 && record.directions[1].ipBytes == 20 + 1200, "\(record.key)")
            } else {
                #expect(record.directions[1].packets == 2, "\(record.key)")
            }
        }
        for outcome in report.results {
            #expect(outcome.tracker.fragmentsWithoutPorts == 0)
        }
    }

    /// An ICMP error reaches the capture thread of the flow it reports on, so that thread's
    /// tracker attributes it: the fanout program hashes the packet an error quotes.
    /// "udp4-kernel": pod a sends UDP from 32 ports to a closed port of pod b, whose kernel
    /// answers each with port unreachable. "udp6": the same over IPv6, the errors written by
    /// hand (UDP over IPv6 hashes its addresses only, which the errors share: this case holds
    /// without the program's ICMP rule too, and checks the errors' own flows). "tcp4-router" / "tcp6-router": TCP SYNs from pod a, each answered by
    /// "fragmentation needed" / "packet too big" from a router address (not the flow's
    /// destination). "tcp4-vxlan" / "tcp6-vxlan": TCP SYNs between pods of two nodes inside
    /// flannel VXLAN, each answered inside VXLAN by "host unreachable" / "address unreachable"
    /// from the remote node's bridge address, in outer packets with their own source ports.
    /// "tcp4-underlay": the same SYNs inside VXLAN, each outer packet answered by "fragmentation
    /// needed" from an underlay router, about the outer packet: attributed to the outer flow
    /// and to the pod flow inside it.
    @Test("Flow fanout sends ICMP errors to the thread of the flow they report on",
          arguments: ["udp4-kernel", "udp6", "tcp4-router", "tcp6-router", "tcp4-vxlan", "tcp6-vxlan", "tcp4-underlay"])
    func icmpErrorsReachTheirFlowsThread(kind: String) throws {
        let node = try SimulatedNode(podCount: 2)
        defer { node.remove() }
        let a = node.pods[0], b = node.pods[1]
        let flows = 32
        let report = try Self.captureFirstPod(of: node, fanout: AFPacketFanout(mode: .flow)) {
            if kind == "udp4-kernel" {
                _ = try node.exec(in: b.namespace, ["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"])
                try node.exec(in: a.namespace, ["python3", "-c", """
                    import socket
                    for i in range(\(flows)):
                        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        s.bind(("", 40000 + i))
                        s.sendto(b"x" * 10, ("\(b.address)", 9))
                        s.close()
                    """])
            } else {
                try Self.exchange(Self.icmpErrorSender, on: node, flows: flows, kind: kind)
            }
        }
        let reported: UInt8 = kind.hasPrefix("tcp") ? 6 : 17
        let perThread = report.results.map { outcome in
            outcome.flows.filter { f in
                f.key.protocolNumber == reported && [f.key.portA, f.key.portB].contains { (40000..<40000 + UInt16(flows)).contains($0) }
            }
        }
        let keys = perThread.map { Set($0.map(\.key)) }
        let attributed = report.results.reduce(0) { $0 + $1.tracker.icmpErrorsAttributed }
        let unmatched = report.results.reduce(0) { $0 + $1.tracker.icmpErrorsUnmatched }
        print("fanout ICMP errors \(kind): flows on thread 0: \(keys[0].count), thread 1: \(keys[1].count); errors attributed \(attributed), unmatched \(unmatched)")
        #expect(keys[0].union(keys[1]).count == flows)
        #expect(keys[0].isDisjoint(with: keys[1]))
        #expect(!keys[0].isEmpty && !keys[1].isEmpty)
        #expect(attributed == UInt64(flows) && unmatched == 0)
        for record in perThread.joined() {
            #expect(record.icmpErrors == 1, "\(record.key)")
        }
        // Each error's own flow (keyed by the ports it quotes; the namespaces' own neighbour
        // discovery and MLD have none) is on the thread of the flow it quotes (for
        // "tcp4-underlay" the outer flow, which travels with its pod flow).
        var errorFlows = 0
        for outcome in report.results {
            let isICMP = { (f: FlowRecord) in f.key.protocolNumber == 1 || f.key.protocolNumber == 58 }
            let quoting = outcome.flows.filter { isICMP($0) && $0.key.portA | $0.key.portB != 0 }
            let quoted = outcome.flows.filter { !isICMP($0) }.map { Set([$0.key.portA, $0.key.portB]) }
            errorFlows += quoting.count
            for e in quoting {
                #expect(quoted.contains(Set([e.key.portA, e.key.portB])), "\(e.key)")
            }
        }
        if kind == "tcp4-underlay" {
            // The outer flows each carried one error too.
            let outer = report.results.flatMap(\.flows).filter { $0.carriesTunnel }
            #expect(outer.count == flows && outer.allSatisfy { $0.icmpErrors == 1 })
        }
        #expect(errorFlows == flows)
    }

    /// Sends one side of N exchanges whose answers are ICMP errors: side 0 the packets (kind
    /// "udp6": UDP fd00::1:(i+2) port 40000+i to fd00::2:9 port 9; "tcp4-router": a TCP SYN
    /// 10.250.1.(i+2):40000+i to 10.250.2.9:443; "tcp6-router": the same from fd00::1:(i+2) to
    /// fd00::2:9), side 1 the errors (ICMPv6 port unreachable from fd00::2:9; ICMP
    /// fragmentation needed from the router 10.250.9.1; ICMPv6 packet too big from the router
    /// fd00::9:1), each quoting its packet; "tcp4-vxlan" / "tcp6-vxlan": the SYN from
    /// 10.244.1.(i+2) (fd00:244:1::(i+2)) to 10.244.2.9 (fd00:244:2::9), and an unreachable
    /// from 10.244.2.1 (fd00:244:2::1), inside VXLAN (UDP 8472, VNI 1) between 192.0.2.1 and
    /// 192.0.2.2, outer source port 30000+7i one way and 50000+13i back; "tcp4-underlay": the
    /// SYN inside VXLAN as in "tcp4-vxlan", and "fragmentation needed" from the router
    /// 192.0.2.254 quoting the whole outer packet. argv = destination MAC, N, side, kind.
    static let icmpErrorSender = exchangeSender + """
        def vxlan(six, packet, i, sender=None):
            frame = b"\\x02\\x00\\x00\\x00\\x00\\x01\\x02\\x00\\x00\\x00\\x00\\x02" + (b"\\x86\\xdd" if six else b"\\x08\\x00") + packet
            tun = struct.pack("!BxxxI", 0x08, 1 << 8) + frame
            oa, ob, osp = ("192.0.2.1", "192.0.2.2", 30000 + 7 * i) if (side if sender is None else sender) == 0 else ("192.0.2.2", "192.0.2.1", 50000 + 13 * i)
            return b"\\x08\\x00" + ip4(17, oa, ob, struct.pack("!HHHH", osp, 8472, 8 + len(tun), 0) + tun)
        for i in range(n):
            syn = struct.pack("!HHIIBBHHH", 40000 + i, 443, 1000, 0, 5 << 4, 0x02, 65535, 0, 0)
            if kind == "tcp4-underlay":
                packet = vxlan(False, ip4(6, "10.244.1.%d" % (i + 2), "10.244.2.9", syn), i, 0)[2:]
                if side == 0:
                    s.send(head + b"\\x08\\x00" + packet)
                else:
                    s.send(head + b"\\x08\\x00" + ip4(1, "192.0.2.254", "192.0.2.1", struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + packet))
            elif kind == "tcp4-vxlan":
                a, b = "10.244.1.%d" % (i + 2), "10.244.2.9"
                packet = ip4(6, a, b, syn)
                error = ip4(1, "10.244.2.1", a, struct.pack("!BBHI", 3, 1, 0, 0) + packet[:28])
                s.send(head + vxlan(False, packet if side == 0 else error, i))
            elif kind == "tcp6-vxlan":
                a, b = "fd00:244:1::%x" % (i + 2), "fd00:244:2::9"
                packet = ip6(6, a, b, syn)
                error = ip6(58, "fd00:244:2::1", a, struct.pack("!BBHI", 1, 3, 0, 0) + packet)
                s.send(head + vxlan(True, packet if side == 0 else error, i))
            elif kind == "tcp6-router":
                packet = ip6(6, "fd00::1:%x" % (i + 2), "fd00::2:9", syn)
                if side == 0:
                    s.send(head + b"\\x86\\xdd" + packet)
                else:
                    s.send(head + b"\\x86\\xdd" + ip6(58, "fd00::9:1", "fd00::1:%x" % (i + 2),
                                                      struct.pack("!BBHI", 2, 0, 0, 1280) + packet))
            elif kind == "udp6":
                a, b = "fd00::1:%x" % (i + 2), "fd00::2:9"
                packet = ip6(17, a, b, struct.pack("!HHHH", 40000 + i, 9, 18, 0) + b"x" * 10)
                if side == 0:
                    s.send(head + b"\\x86\\xdd" + packet)
                else:
                    s.send(head + b"\\x86\\xdd" + ip6(58, b, a, struct.pack("!BBHI", 1, 4, 0, 0) + packet))
            else:
                a, b = "10.250.1.%d" % (i + 2), "10.250.2.9"
                packet = ip4(6, a, b, syn)
                if side == 0:
                    s.send(head + b"\\x08\\x00" + packet)
                else:
                    s.send(head + b"\\x08\\x00" + ip4(1, "10.250.9.1", a, struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + packet[:28]))
        """

    /// Captures the node's first pod's eth0 with two fanout threads, each tracking flows, while
    /// `traffic` runs; stops once the ring's last blocks have retired, and expects the capture
    /// to have run clean (no error, no kernel drop).
    static func captureFirstPod(of node: SimulatedNode, fanout: AFPacketFanout, decoder: PacketDecoder = PacketDecoder(),
                                during traffic: () throws -> Void) throws -> AFPacketCapture<TrackingWorker>.Report {
        var config = testConfiguration(interface: "eth0", namespace: node.namespacePath(node.pods[0].namespace))
        config.fanout = fanout
        let capture = try AFPacketCapture(configuration: config, threads: 2, pollTimeoutMilliseconds: 20) { _ in
            TrackingWorker(decoder: decoder)
        }
        try traffic()
        usleep(100_000)
        let report = capture.stop()
        #expect(report.errors.allSatisfy { $0 == nil })
        #expect(report.total.droppedByKernel == 0)
        return report
    }

    /// The MAC address of a pod's eth0.
    static func macAddress(_ pod: SimulatedNode.Pod, on node: SimulatedNode) throws -> String {
        try node.exec(in: pod.namespace, ["cat", "/sys/class/net/eth0/address"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs side 0 of a sender script in the first pod (frames to the second pod's MAC), then
    /// side 1 in the second (to the first's): argv = destination MAC, flows, side, kind.
    static func exchange(_ script: String, on node: SimulatedNode, flows: Int, kind: String) throws {
        let a = node.pods[0], b = node.pods[1]
        let macA = try macAddress(a, on: node), macB = try macAddress(b, on: node)
        try node.exec(in: a.namespace, ["python3", "-c", script, macB, "\(flows)", "0", kind])
        try node.exec(in: b.namespace, ["python3", "-c", script, macA, "\(flows)", "1", kind])
    }

    /// Python that starts a sender run by ``exchange(_:on:flows:kind:)``: its arguments, a raw
    /// socket on eth0 and the Ethernet header of its frames (`head`, before the EtherType).
    static let exchangeSender = ipHeaders + """
        dst, n, side, kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind(("eth0", 0))
        head = bytes.fromhex(dst.replace(":", "")) + s.getsockname()[4]

        """

    /// Python for the senders below: ip4 (identification and flags/fragment offset
    /// optional) and ip6 build a packet around a payload.
    static let ipHeaders = """
        import socket, struct, sys
        def ip4(proto, a, b, payload, ident=1, frag=0):
            h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0,
                            socket.inet_aton(a), socket.inet_aton(b))
            c = sum(struct.unpack("!10H", h)); c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
            return h[:10] + struct.pack("!H", ~c & 0xffff) + h[12:] + payload
        def ip6(proto, a, b, payload):
            return struct.pack("!IHBB16s16s", 6 << 28, len(payload), proto, 64, socket.inet_pton(socket.AF_INET6, a),
                               socket.inet_pton(socket.AF_INET6, b)) + payload

        """

    /// Sends one side of N UDP exchanges out of eth0 to the given MAC: side 0 the requests
    /// (20 bytes, whole) from port 40000+i to port 53, side 1 the responses (1,200 bytes, in two
    /// fragments: the first with the UDP header, the second without). Kind "ipv6": plain IPv6
    /// fd00::1:(i+2) <-> fd00::2:9 (the response in IPv6 fragment headers); "ipv4": plain IPv4
    /// 10.250.1.(i+2) <-> 10.250.2.9. Kind "vxlan4" /
    /// "vxlan6": the same exchange between 10.244.1.(i+2) and 10.244.2.9 (or fd00:244:1::(i+2)
    /// and fd00:244:2::9) inside flannel VXLAN (UDP 8472, VNI 1) between 192.0.2.1 and
    /// 192.0.2.2, each inner fragment in its own outer packet, outer source port 30000+7i one
    /// way and 50000+13i back. argv = destination MAC, N, side, kind.
    static let fragmentSender = exchangeSender + """
        def udp(sp, dp, data):
            return struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data
        def packets(six, a, b, sp, dp, data, ident):
            # The IP packets of one datagram: whole when short, else two fragments.
            d = udp(sp, dp, data)
            if len(d) <= 1000:
                return [ip6(17, a, b, d) if six else ip4(17, a, b, d, ident)]
            first, rest = d[:1000], d[1000:]
            if six:
                return [ip6(44, a, b, struct.pack("!BBHI", 17, 0, 0 | 1, ident) + first),
                        ip6(44, a, b, struct.pack("!BBHI", 17, 0, (1000 // 8) << 3, ident) + rest)]
            return [ip4(17, a, b, first, ident, 0x2000), ip4(17, a, b, rest, ident, 1000 // 8)]
        for i in range(n):
            six = kind not in ("vxlan4", "ipv4")
            if kind == "vxlan4":
                pod, peer = "10.244.1.%d" % (i + 2), "10.244.2.9"
            elif kind == "vxlan6":
                pod, peer = "fd00:244:1::%x" % (i + 2), "fd00:244:2::9"
            elif kind == "ipv4":
                pod, peer = "10.250.1.%d" % (i + 2), "10.250.2.9"
            else:
                pod, peer = "fd00::1:%x" % (i + 2), "fd00::2:9"
            if side == 0:
                inner = packets(six, pod, peer, 40000 + i, 53, b"q" * 20, i + 1)
                oa, ob, osp = "192.0.2.1", "192.0.2.2", 30000 + 7 * i
            else:
                inner = packets(six, peer, pod, 53, 40000 + i, b"r" * 1192, i + 1)
                oa, ob, osp = "192.0.2.2", "192.0.2.1", 50000 + 13 * i
            for packet in inner:
                ethertype = b"\\x86\\xdd" if six else b"\\x08\\x00"
                if kind in ("ipv6", "ipv4"):
                    s.send(head + ethertype + packet)
                    continue
                frame = b"\\x02\\x00\\x00\\x00\\x00\\x01\\x02\\x00\\x00\\x00\\x00\\x02" + ethertype + packet
                tun = struct.pack("!BxxxI", 0x08, 1 << 8) + frame
                s.send(head + b"\\x08\\x00" + ip4(17, oa, ob, udp(osp, 8472, tun)))
        """

    /// Sends step S of a scripted exchange out of eth0 to the given MAC. Exchange: for each of
    /// N inner TCP flows 10.244.1.(i+2):(40000+i) <-> 10.244.2.9:80 (inner IPv6:
    /// fd00:244:1::(i+2) <-> fd00:244:2::9) in VXLAN (UDP to the given port, VNI 1), Geneve (UDP 6081,
    /// VNI 1, one 8-byte option), IP in IP (protocol 4, or 41 for inner IPv6) or GRE (key 7;
    /// even flows the IP packet with a sequence number, odd ones the Ethernet frame, with a
    /// checksum field), a SYN, SYN-ACK, ACK, then data, alternating directions, P
    /// packets each way (P ≥ 2); outer packets 192.0.2.1 -> 192.0.2.2 (outer IPv6:
    /// 2001:db8::1 -> 2001:db8::2) from source port 30000+7i one way, back from 50000+13i.
    /// Then N plain IPv6 TCP flows fd00::1:(i+2):(40000+i) <-> fd00::2:9:80, P data packets
    /// each way. Even steps go from the first endpoint, odd ones back. VLAN ids V (comma
    /// separated; 0: none) put a tag with each in every frame, outermost first (802.1ad for
    /// the outermost of several, 802.1Q for the others): argv = destination MAC, N, P, S, V, tunnel
    /// ("vxlan", "geneve", "ipip" or "gre"), inner IP version, outer IP version, VXLAN port.
    static let tunnelSender = ipHeaders + """
        dst, n, p, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        vlans = [int(v) for v in sys.argv[5].split(",") if v != "0"]
        tunnel, inner6, outer6, vxlan_port = sys.argv[6], sys.argv[7] == "6", sys.argv[8] == "6", int(sys.argv[9])
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind(("eth0", 0))
        src = s.getsockname()[4]
        head = bytes.fromhex(dst.replace(":", "")) + src + b"".join(
            struct.pack("!HH", 0x88a8 if j == 0 and len(vlans) > 1 else 0x8100, v) for j, v in enumerate(vlans))
        def ip(proto, a, b, payload, six):
            return ip6(proto, a, b, payload) if six else ip4(proto, a, b, payload)
        def tcp(sp, dp, seq, ack, flags, data):
            return struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
        for i in range(n):
            pod, peer = ("fd00:244:1::%x" % (i + 2), "fd00:244:2::9") if inner6 else ("10.244.1.%d" % (i + 2), "10.244.2.9")
            sport = 40000 + i
            steps = [(0, 0x02, b""), (1, 0x12, b""), (0, 0x10, b"")]
            steps += [(1 - k % 2, 0x18, b"d" * 10) for k in range(2 * p - 3)]
            cseq, sseq = 1000, 5000
            for k, (d, flags, data) in enumerate(steps):
                if d == 0:
                    inner = ip(6, pod, peer, tcp(sport, 80, cseq, sseq if flags != 0x02 else 0, flags, data), inner6)
                    cseq += len(data) + (1 if flags == 0x02 else 0)
                    oa, ob, osp = "192.0.2.1", "192.0.2.2", 30000 + 7 * i
                else:
                    inner = ip(6, peer, pod, tcp(80, sport, sseq, cseq, flags, data), inner6)
                    sseq += len(data) + (1 if flags == 0x12 else 0)
                    oa, ob, osp = "192.0.2.2", "192.0.2.1", 50000 + 13 * i
                if k != step:
                    continue
                if outer6:
                    oa, ob = oa.replace("192.0.2.", "2001:db8::"), ob.replace("192.0.2.", "2001:db8::")
                frame = b"\\x02\\x00\\x00\\x00\\x00\\x01\\x02\\x00\\x00\\x00\\x00\\x02" + (b"\\x86\\xdd" if inner6 else b"\\x08\\x00") + inner
                if tunnel == "ipip":
                    s.send(head + (b"\\x86\\xdd" if outer6 else b"\\x08\\x00") + ip(41 if inner6 else 4, oa, ob, inner, outer6))
                    continue
                if tunnel == "gre":
                    if i % 2 == 0:
                        g = struct.pack("!HHII", 0x3000, 0x86dd if inner6 else 0x0800, 7, k) + inner
                    else:
                        g = struct.pack("!HHHHI", 0xa000, 0x6558, 0, 0, 7) + frame
                    s.send(head + (b"\\x86\\xdd" if outer6 else b"\\x08\\x00") + ip(47, oa, ob, g, outer6))
                    continue
                if tunnel == "geneve":
                    option = struct.pack("!HBB", 0x0102, 0x80, 1) + b"\\xaa" * 4
                    tun, port = struct.pack("!BBHI", len(option) // 4, 0, 0x6558, 1 << 8) + option + frame, 6081
                else:
                    tun, port = struct.pack("!BxxxI", 0x08, 1 << 8) + frame, vxlan_port
                udp = struct.pack("!HHHH", osp, port, 8 + len(tun), 0) + tun
                s.send(head + (b"\\x86\\xdd" if outer6 else b"\\x08\\x00") + ip(17, oa, ob, udp, outer6))
        for i in range(n):
            pod, peer, sport = "fd00::1:%x" % (i + 2), "fd00::2:9", 40000 + i
            d = step % 2
            seg = tcp(sport, 80, 1000 + step, 0, 0x18, b"s" * 10) if d == 0 else tcp(80, sport, 5000 + step, 0, 0x18, b"s" * 10)
            sa, da = (pod, peer) if d == 0 else (peer, pod)
            s.send(head + b"\\x86\\xdd" + ip6(6, sa, da, seg))
        """

    @Test("A pod's eth0 captured from inside its namespace: only that pod's flows, directions right")
    func podNamespaceCapture() throws {
        let node = try SimulatedNode(podCount: 4)
        defer { node.remove() }
        let traffic = NodeTraffic.standard(on: node)
        try traffic.prepare()
        let pod = node.pods[0]
        let config = testConfiguration(interface: "eth0", namespace: node.namespacePath(pod.namespace))
        let capture = try AFPacketCapture(configuration: config, pollTimeoutMilliseconds: 20) { _ in
            TrackingWorker(localAddress: IPAddress(pod.address)!)
        }
        try runStandardTraffic(traffic)
        let report = capture.stop()
        let outcome = report.results[0]
        #expect(NodeTraffic.problems(in: outcome.flows, expected: traffic.flows(involvingPod: 0)) == [])
        #expect(traffic.flows(involvingPod: 0).count == 4)
        #expect(outcome.directionMismatches == 0)
        #expect(outcome.fromLocal > 20 && outcome.toLocal > 20)
        #expect(outcome.inbound > 0 && outcome.outbound > 0)
        #expect(report.total.droppedByKernel == 0 && report.total.delivered > 0)
        // eth0 has index 2 or more in the pod (lo is 1); records carry it.
        #expect(outcome.flows.allSatisfy { $0.interface >= 2 })
    }

    @Test("Filter \"tcp port 8080\" keeps exactly the port-8080 connections, cut at the snap length")
    func filterKeepsOnlyThatPort() throws {
        let node = try SimulatedNode(podCount: 4)
        defer { node.remove() }
        let traffic = NodeTraffic.standard(on: node)
        try traffic.prepare()
        var config = testConfiguration(interface: node.bridge, namespace: node.namespacePath(node.namespace))
        config.promiscuous = true
        config.filter = "tcp port 8080"
        config.snapLength = 96  // the filter program returns 96: headers only
        let capture = try AFPacketCapture(configuration: config, pollTimeoutMilliseconds: 20) { _ in TrackingWorker() }
        try runStandardTraffic(traffic)
        let report = capture.stop()
        let outcome = report.results[0]
        let expected = traffic.flows.filter { $0.serverPort == 8080 }
        #expect(expected.count == 2)
        #expect(NodeTraffic.problems(in: outcome.flows, expected: expected) == [])
        #expect(outcome.flows.count == 2)  // no noise either: ARP and ICMPv6 are filtered out
        #expect(outcome.tracker.nonIPPackets == 0)
        let packets = outcome.flows.reduce(0) { $0 + $1.packets }
        #expect(report.total.delivered == packets)
        #expect(report.total.received == packets)  // the kernel counts only what the filter accepted
        #expect(outcome.longestCapture == 96 && outcome.lengthMismatches > 0)
    }

    @Test("Invalid filters name the expression and the offset where they fail")
    func invalidFilters() throws {
        let cases: [(String, Int, String)] = [
            ("tcp prot 80", 4, "\"prot\""),
            ("port", 4, "incomplete"),
            ("tcp port 99999", 9, "\"99999\""),
            ("tcp port 80 and (udp or", 23, "incomplete"),
            ("host 10.0.0.1 and tcp[13] & 2 != 0 xx", 35, "\"xx\""),
        ]
        for (expression, offset, detail) in cases {
            let error = #expect(throws: CaptureSourceError.self) {
                _ = try PacketFilter(expression: expression)
            }
            #expect(error?.code == .invalidFilter)
            let message = error?.message ?? ""
            #expect(message.contains("\"\(expression)\""), "\(message)")
            #expect(message.contains("at offset \(offset) "), "\(message)")
            #expect(message.contains(detail), "\(message)")
        }
        // A source with a bad filter fails before it opens anything.
        var config = AFPacketConfiguration(interface: "lo")
        config.filter = "tcp prot 80"
        let error = #expect(throws: CaptureSourceError.self) { _ = try AFPacketSource(configuration: config) }
        #expect(error?.code == .invalidFilter && error?.message.contains("offset 4") == true)
        // Good ones compile to a program that ends in a return.
        let good = try PacketFilter(expression: "tcp port 80", snapLength: 128)
        #expect(good.instructions.count > 4)
        #expect(good.instructions.last?.code == 0x06 && good.instructions.contains { $0.k == 128 })
        #expect(try PacketFilter(expression: "").instructions.count == 1)
    }

    @Test("Stripped 802.1Q tags are restored, directions follow the packet type, statistics add up")
    func vlanRestoreAndDirection() throws {
        let node = try SimulatedNode(podCount: 2)
        defer { node.remove() }
        let a = node.pods[0], b = node.pods[1]
        // Two sources on pod a's eth0 at once: one restoring tags, one showing frames as the
        // kernel has them.
        let config = testConfiguration(interface: "eth0", namespace: node.namespacePath(a.namespace))
        var raw = config
        raw.restoresVLANTags = false
        let local = IPAddress(a.address)!
        let tag: UInt16 = 3 << 13 | 100  // priority 3, VLAN 100
        let restoring = try AFPacketCapture(configuration: config, pollTimeoutMilliseconds: 20) { _ in
            TrackingWorker(localAddress: local, expectedTag: tag)
        }
        let plain = try AFPacketCapture(configuration: raw, pollTimeoutMilliseconds: 20) { _ in
            TrackingWorker(localAddress: local, expectedTag: tag)
        }
        // Pod b sends 5 802.1Q-tagged UDP frames to pod a (this kernel has no VLAN devices, so
        // they are written raw). Pod a's eth0 strips each tag into the packet's metadata on
        // receive, before any packet socket sees it.
        let mac = try node.exec(in: a.namespace, ["cat", "/sys/class/net/eth0/address"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try node.exec(in: b.namespace, ["python3", "-c", Self.taggedSender, mac, b.address, a.address, "\(tag)", "5", "60"])
        // And untagged traffic both ways.
        let ping = try node.exec(in: a.namespace, ["ping", "-c", "3", "-i", "0.05", "-W", "2", b.address])
        #expect(ping.contains("3 received"))
        usleep(100_000)
        let r = restoring.stop(), p = plain.stop()
        let o = r.results[0]

        // Every tagged frame was copied once with its tag (priority included) back in place;
        // nothing else was copied; lengths include the tag.
        #expect(o.taggedFrames == 5)
        #expect(r.vlanTagsRestored == [5])
        #expect(o.wrongTag == 0 && o.lengthMismatches == 0)
        let tagged = o.flows.filter { $0.key.protocolNumber == 17 && $0.key.vlanID == 100 }
        #expect(tagged.count == 1)
        #expect(tagged.first?.packets == 5 && tagged.first?.ipBytes == 5 * (20 + 8 + 60))
        // The kernel had stripped the tags: without restoring, no frame carries one and the
        // flow has no VLAN id.
        let po = p.results[0]
        #expect(po.taggedFrames == 0 && p.vlanTagsRestored == [0])
        // Restored frames share one buffer, so they skip `prepare`; every other packet was
        // decoded ahead, and nothing prepared was given up.
        #expect(o.tracker.preparedPackets == o.tracker.packets - 5 && o.tracker.preparedDiscarded == 0)
        #expect(po.tracker.preparedPackets == po.tracker.packets && po.tracker.preparedDiscarded == 0)
        #expect(po.flows.contains { $0.key.protocolNumber == 17 && $0.key.vlanID == 0 && $0.packets == 5 })
        // Directions: to a's address inbound (PACKET_HOST), from it outbound (PACKET_OUTGOING).
        let icmp = o.flows.filter { $0.key.protocolNumber == 1 }
        #expect(icmp.count == 1 && icmp.first?.client.packets == 3 && icmp.first?.server.packets == 3)
        #expect(o.directionMismatches == 0)
        #expect(o.fromLocal == 3 && o.toLocal == 3 + 5)
        // Statistics: packets delivered and blocks, the kernel's count, no drops.
        let s = r.statistics[0]
        #expect(s.delivered >= 11 && s.batches >= 1 && s.received >= s.delivered)
        #expect(s.droppedByKernel == 0 && s.queueFreezes == 0)
    }

    /// Sends N 802.1Q-tagged IPv4/UDP frames out of eth0: argv = destination MAC, source IP,
    /// destination IP, TCI, count, payload bytes.
    static let taggedSender = """
        import socket, struct, sys
        dst, src_ip, dst_ip, tci, count, size = sys.argv[1:7]
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind(("eth0", 0))
        src = s.getsockname()[4]
        payload = b"v" * int(size)
        udp = struct.pack("!HHHH", 5000, 6000, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
        c = sum(struct.unpack("!10H", ip))
        c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
        ip = ip[:10] + struct.pack("!H", ~c & 0xffff) + ip[12:]
        frame = bytes.fromhex(dst.replace(":", "")) + src + struct.pack("!HHH", 0x8100, int(tci), 0x0800) + ip + udp
        for _ in range(int(count)):
            s.send(frame)
        """

    @Test("A capture thread survives its interface going down and up, and ends with .noSuchInterface when it is removed")
    func interfaceDownUpRemoved() throws {
        let node = try SimulatedNode(podCount: 2)
        defer { node.remove() }
        let pod = node.pods[0], peer = node.pods[1]
        let config = testConfiguration(interface: pod.hostInterface, namespace: node.namespacePath(node.namespace))
        let capture = try AFPacketCapture(configuration: config, pollTimeoutMilliseconds: 20) { _ in TrackingWorker() }
        try node.exec(["ip", "link", "set", pod.hostInterface, "down"])
        usleep(50_000)
        try node.exec(["ip", "link", "set", pod.hostInterface, "up"])
        let ping = try node.exec(in: pod.namespace, ["ping", "-c", "2", "-i", "0.05", "-W", "2", peer.address])
        #expect(ping.contains("2 received"))
        usleep(50_000)
        #expect(capture.activeThreads == 1)
        try node.deletePod(pod)  // the veth pair goes with the pod's namespace
        // Namespace teardown is asynchronous in the kernel: wait for the thread to end.
        let deadline = Date().addingTimeInterval(5)
        while capture.activeThreads > 0 && Date() < deadline { usleep(10_000) }
        #expect(capture.activeThreads == 0)
        let report = capture.stop()
        let error = try #require(report.errors[0])
        #expect(error.code == .noSuchInterface)
        #expect(error.message.contains(pod.hostInterface), "\(error)")
        // The pings after the interface came back up were captured.
        let icmp = report.results[0].flows.filter { $0.key.protocolNumber == 1 }
        #expect(icmp.count == 1 && icmp.first?.packets == 4)
    }

    @Test("No BPF program runs per packet unless a filter or a shorter snap length asks for one")
    func filterProgramOnlyWhenNeeded() throws {
        func instructions(_ configure: (inout AFPacketConfiguration) -> Void) throws -> Int {
            var configuration = AFPacketConfiguration(interface: "lo")
            configuration.blockCount = 2
            configure(&configuration)
            let source = try AFPacketSource(configuration: configuration)
            return source.filterInstructionCount
        }
        #expect(try instructions { _ in } == 0)
        #expect(try instructions { $0.snapLength = 96 } == 1)  // ret #96
        #expect(try instructions { $0.filter = "tcp port 80" } > 4)
    }

    @Test("Configuration and opening errors are specific")
    func openingErrors() throws {
        var bad = AFPacketConfiguration(interface: "eth0")
        bad.blockSize = 1000
        #expect(throws: CaptureSourceError.self) { try bad.validate() }
        do {
            try bad.validate()
        } catch {
            #expect(error.code == .invalidConfiguration && error.message.contains("block size 1000"))
        }
        bad = AFPacketConfiguration(interface: "eth0")
        bad.frameSize = 100
        #expect(throws: CaptureSourceError.self) { try bad.validate() }
        bad = AFPacketConfiguration(interface: nil)
        bad.promiscuous = true
        #expect(throws: CaptureSourceError.self) { try bad.validate() }

        let node = try SimulatedNode(podCount: 1)
        defer { node.remove() }
        let missing = #expect(throws: CaptureSourceError.self) {
            _ = try AFPacketSource(configuration: AFPacketConfiguration(
                interface: "nosuch0", namespacePath: node.namespacePath(node.namespace)))
        }
        #expect(missing?.code == .noSuchInterface && missing?.message.contains("nosuch0") == true)
        let noNamespace = #expect(throws: CaptureSourceError.self) {
            _ = try AFPacketSource(configuration: AFPacketConfiguration(interface: "lo", namespacePath: "/run/netns/podtap-none"))
        }
        #expect(noNamespace?.code == .namespace)
        // A down interface is reported as such.
        try node.exec(["ip", "link", "add", "ptdown0", "type", "veth", "peer", "name", "ptdown1"])
        let down = #expect(throws: CaptureSourceError.self) {
            _ = try AFPacketSource(configuration: AFPacketConfiguration(
                interface: "ptdown0", namespacePath: node.namespacePath(node.namespace)))
        }
        #expect(down?.code == .interfaceDown)
        // An idle loopback: a poll without waiting returns nothing.
        var source = try AFPacketSource(configuration: testConfiguration(interface: "lo", namespace: node.namespacePath(node.namespace)))
        #expect(try source.poll(timeoutMilliseconds: 0) { _ in } == 0)
        #expect(source.interfaceIndex == 1)
    }
}
