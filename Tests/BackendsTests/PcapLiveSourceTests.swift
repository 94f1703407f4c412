import Backends
import CaptureCore
import Foundation
import PodTapTestSupport
import Testing

@Suite("libpcap live capture")
@MainActor struct PcapLiveSourceTests {
    // Blocking work (captures, apps, polls) runs on a dedicated thread and returns what it saw;
    // the expectations run here, in the test's task, so Swift Testing attributes them.

    @Test("Pod traffic on the bridge, captured from the node's namespace, is counted exactly")
    func bridgeCaptureCountsPodTraffic() async throws {
        let node = try SimulatedNode(podCount: 4)
        defer { node.remove() }
        let traffic = NodeTraffic.standard(on: node)
        var configuration = PcapLiveConfiguration(interface: node.bridge)
        configuration.networkNamespace = node.namespacePath(node.namespace)
        configuration.promiscuous = true  // a bridge passes up forwarded frames only when promiscuous
        configuration.bufferSize = 32 << 20
        let outcome = try await onDedicatedThread { [configuration] in
            try traffic.prepare()
            let capture = try LiveCapture(configuration)
            defer { _ = capture.stop() }
            try traffic.run()
            return capture.stop()
        }

        #expect(outcome.error == nil)
        #expect(NodeTraffic.problems(in: outcome.flows, expected: traffic.flows) == [])
        let s = outcome.statistics
        #expect(s.droppedByKernel == 0, "\(s)")
        #expect(s.delivered == UInt64(outcome.packets) && s.received >= s.delivered, "\(s)")
        #expect(s.batches > 0)
        print("bridge capture: \(outcome.packets) packets, \(outcome.flows.count) flows; \(s)")
        for flow in traffic.flows {
            if let f = outcome.flows.first(where: { $0.key == flow.key }) {
                print("  \(flow): client \(f.client.packets) pkts \(f.client.ipBytes) B, server \(f.server.packets) pkts \(f.server.ipBytes) B, \(f.tcpState)")
            }
        }
    }

    @Test("A tcpdump filter keeps only its port; a bad expression fails naming it and libpcap's reason")
    func filter() async throws {
        let node = try SimulatedNode(podCount: 2)
        defer { node.remove() }
        let kept = NodeTraffic.Flow(.tcp, on: node, client: 0, clientPort: 41001, server: 1, serverPort: 5101,
                                    requests: [20_000], responses: [3_000])
        let traffic = NodeTraffic(node: node, flows: [
            kept,
            NodeTraffic.Flow(.tcp, on: node, client: 1, clientPort: 41002, server: 0, serverPort: 5102,
                             requests: [5_000], responses: [5_000]),
            NodeTraffic.Flow(.udp, on: node, client: 0, clientPort: 41003, server: 1, serverPort: 5101,
                             requests: Array(repeating: 100, count: 5), responses: Array(repeating: 100, count: 5)),
        ])
        var configuration = PcapLiveConfiguration(interface: node.bridge)
        configuration.networkNamespace = node.namespacePath(node.namespace)
        configuration.promiscuous = true
        configuration.bufferSize = 16 << 20
        configuration.filter = "tcp port 5101"
        // Block mode (TPACKET_V3) here; the other tests use immediate mode (TPACKET_V2). Blocks
        // retire after 10 ms, within LiveCapture's final quiet 50 ms.
        configuration.immediate = false
        configuration.bufferTimeoutMilliseconds = 10
        let outcome = try await onDedicatedThread { [configuration] in
            try traffic.prepare()
            let capture = try LiveCapture(configuration) { p in
                p.layerCount == 1 && p.layers[0].protocolNumber == 6
                    && (p.layers[0].sourcePort == 5101 || p.layers[0].destinationPort == 5101)
            }
            defer { _ = capture.stop() }
            try traffic.run()
            return capture.stop()
        }
        #expect(outcome.error == nil)
        #expect(outcome.packets > 0)
        #expect(outcome.rejected == 0, "packets outside 'tcp port 5101' were delivered")
        #expect(outcome.flows.count == 1, "\(outcome.flows.map(\.key))")
        #expect(NodeTraffic.problems(in: outcome.flows, expected: [kept]) == [])
        #expect(outcome.statistics.droppedByKernel == 0)
        print("filter 'tcp port 5101', block mode: \(outcome.packets) packets in \(outcome.statistics.batches) batches, \(outcome.flows.count) flow")

        // Invalid expressions: at open, and when replacing the filter of an open source.
        configuration.interface = "lo"
        configuration.filter = "tcp port nonsense"
        let (atOpen, replaced, valid) = try await onDedicatedThread { [configuration] in
            var configuration = configuration
            let atOpen = Result { () throws(CaptureSourceError) in _ = try PcapLiveSource(configuration) }
            configuration.filter = nil
            let source = try PcapLiveSource(configuration)
            let replaced = Result { () throws(CaptureSourceError) in try source.setFilter("udp and and") }
            let valid = Result { () throws(CaptureSourceError) in try source.setFilter("udp port 53") }
            return (atOpen.failure, replaced.failure, valid.failure)
        }
        #expect(atOpen?.code == .invalidFilter)
        #expect(atOpen?.message == "invalid filter expression 'tcp port nonsense': unknown port 'nonsense'",
                "\(String(describing: atOpen))")
        #expect(replaced?.code == .invalidFilter)
        #expect(replaced?.message.contains("'udp and and'") == true && replaced?.message.contains("syntax error") == true,
                "\(String(describing: replaced))")
        #expect(valid == nil)
        print("bad filters: \(String(describing: atOpen)); \(String(describing: replaced))")
    }

    /// What the down/delete scenario observed.
    struct InterfaceLoss: Sendable {
        var downC: CaptureSourceError?
        var afterUpC = 0
        var beforeA = 0, beforeB = 0
        var down: CaptureSourceError?
        var afterDown = 0
        var deleted: CaptureSourceError?
        var deletedAgain: CaptureSourceError?
        var deletedWhileUp: CaptureSourceError?
        var afterB = 0
        var wrongLength = 0
        var statisticsA = CaptureStatistics()
        var statisticsB = CaptureStatistics()
    }

    @Test("A pod's veth going down or away is reported by poll, and another source keeps capturing")
    func interfaceDownAndDeleted() async throws {
        let node = try SimulatedNode(podCount: 4)
        defer { node.remove() }
        let r = try await onDedicatedThread {
            let ns = node.namespacePath(node.namespace)
            let (p0, p1, p2, p3) = (node.pods[0], node.pods[1], node.pods[2], node.pods[3])
            var a = try PcapLiveSource(interface: p0.hostInterface, networkNamespace: ns, filter: "udp port 6100")
            var b = try PcapLiveSource(interface: p1.hostInterface, networkNamespace: ns, filter: "udp port 6200")
            var c = try PcapLiveSource(interface: p2.hostInterface, networkNamespace: ns, filter: "udp port 6300")
            var r = InterfaceLoss()

            func send(from pod: SimulatedNode.Pod, to target: SimulatedNode.Pod, port: Int, count: Int) throws {
                try NodeTraffic.sendDatagrams(on: node, from: pod, to: target.address, port: port, count: count, size: 100)
            }
            /// Polls until `expected` packets came (or 2 s passed), then once more; counts
            /// packets that are not 14 + 128-byte frames.
            func drain(_ source: inout PcapLiveSource, expected: Int) throws(CaptureSourceError) -> Int {
                var total = 0
                let deadline = Date().addingTimeInterval(2)
                let check: (borrowing PacketRecord) -> Void = { packet in
                    if packet.originalLength != 14 + 128 || packet.capturedLength != packet.originalLength { r.wrongLength += 1 }
                }
                while total < expected, Date() < deadline {
                    total += try source.poll(timeoutMilliseconds: 50, check)
                }
                return total + (try source.poll(timeoutMilliseconds: 20, check))  // nothing more may come
            }
            func failure(_ body: () throws(CaptureSourceError) -> Void) -> CaptureSourceError? {
                Result(catching: body).failure
            }

            // Down and up again: reported once, then the same source captures again.
            try node.exec(["ip", "link", "set", p2.hostInterface, "down"])
            r.downC = failure { () throws(CaptureSourceError) in _ = try c.poll(timeoutMilliseconds: 1000) { _ in } }
            try node.exec(["ip", "link", "set", p2.hostInterface, "up"])
            try send(from: p2, to: p3, port: 6300, count: 3)
            r.afterUpC = try drain(&c, expected: 3)

            try send(from: p0, to: p2, port: 6100, count: 5)
            try send(from: p1, to: p3, port: 6200, count: 5)
            r.beforeA = try drain(&a, expected: 5)
            r.beforeB = try drain(&b, expected: 5)

            // Down: reported once; the source stays open.
            try node.exec(["ip", "link", "set", p0.hostInterface, "down"])
            r.down = failure { () throws(CaptureSourceError) in _ = try a.poll(timeoutMilliseconds: 1000) { _ in } }
            r.afterDown = try a.poll(timeoutMilliseconds: 0) { _ in }
            // Then deleted: noSuchInterface, and again on every later poll.
            try node.exec(["ip", "link", "delete", p0.hostInterface])
            r.deleted = failure { () throws(CaptureSourceError) in _ = try a.poll(timeoutMilliseconds: 1000) { _ in } }
            r.deletedAgain = failure { () throws(CaptureSourceError) in _ = try a.poll(timeoutMilliseconds: 0) { _ in } }
            r.statisticsA = a.statistics
            // Deleted while up (pod 2's veth).
            try node.exec(["ip", "link", "delete", p2.hostInterface])
            r.deletedWhileUp = failure { () throws(CaptureSourceError) in _ = try c.poll(timeoutMilliseconds: 1000) { _ in } }

            // The other pod's capture carries on.
            try send(from: p1, to: p3, port: 6200, count: 10)
            r.afterB = try drain(&b, expected: 10)
            r.statisticsB = b.statistics
            return r
        }
        let veth0 = node.pods[0].hostInterface
        #expect(r.downC?.code == .interfaceDown, "\(String(describing: r.downC))")
        #expect(r.afterUpC == 3, "packets after the interface came back up")
        #expect(r.beforeA == 5 && r.beforeB == 5)
        #expect(r.down?.code == .interfaceDown)
        #expect(r.down?.message.hasPrefix("interface \(veth0) went down") == true, "\(String(describing: r.down))")
        #expect(r.afterDown == 0)
        #expect(r.deleted?.code == .noSuchInterface)
        #expect(r.deleted?.message.hasPrefix("interface \(veth0) no longer exists") == true, "\(String(describing: r.deleted))")
        #expect(r.deletedAgain == r.deleted)
        #expect(r.statisticsA.delivered == 5)
        #expect(r.deletedWhileUp?.code == .noSuchInterface, "\(String(describing: r.deletedWhileUp))")
        #expect(r.afterB == 10, "packets counted after the failures")
        #expect(r.wrongLength == 0)
        let s = r.statisticsB
        #expect(s.delivered == 15 && s.received == 15 && s.droppedByKernel == 0, "\(s)")
        print("down: \(String(describing: r.down))")
        print("deleted: \(String(describing: r.deleted)); deleted while up: \(String(describing: r.deletedWhileUp))")
        print("other veth after the failures: \(r.afterB) packets; \(s)")
    }

    /// What a source delivered of packets sent just before its interface was deleted.
    struct LossAtDeletion: Sendable {
        var delivered = 0
        var failure: CaptureSourceError? = nil
        var pollsAfterSend = 0
    }

    @Test("Packets that arrived before the interface was deleted are delivered before noSuchInterface",
          arguments: [true, false])
    func nothingLostAtDeletion(immediate: Bool) async throws {
        let node = try SimulatedNode(podCount: 2)
        defer { node.remove() }
        let (p0, p1) = (node.pods[0], node.pods[1])
        var configuration = PcapLiveConfiguration(interface: p0.hostInterface)
        configuration.networkNamespace = node.namespacePath(node.namespace)
        configuration.filter = "udp port 6400"
        configuration.immediate = immediate
        configuration.bufferTimeoutMilliseconds = 200
        let r = try await onDedicatedThread { [configuration] in
            var source = try PcapLiveSource(configuration)
            var r = LossAtDeletion()
            // Nothing is read until the veth is gone: the packets are in libpcap's ring (in a
            // partly filled block when not immediate) when the kernel unregisters the interface.
            try NodeTraffic.sendDatagrams(on: node, from: p0, to: p1.address, port: 6400, count: 4, size: 100)
            try node.exec(["ip", "link", "delete", p0.hostInterface])
            let deadline = Date().addingTimeInterval(3)
            while r.failure == nil, Date() < deadline {
                r.pollsAfterSend += 1
                do throws(CaptureSourceError) {
                    // Counted as lent: a poll that throws has delivered what came before.
                    _ = try source.poll(timeoutMilliseconds: 100) { _ in r.delivered += 1 }
                } catch {
                    r.failure = error
                }
            }
            return r
        }
        #expect(r.delivered == 4, "immediate \(immediate): \(r.delivered) of 4 delivered before \(String(describing: r.failure))")
        #expect(r.failure?.code == .noSuchInterface, "\(String(describing: r.failure))")
        print("immediate \(immediate): \(r.delivered) of 4 delivered in \(r.pollsAfterSend) polls, then \(String(describing: r.failure))")
    }

    @Test("Opening: a down interface, a missing one, a missing namespace")
    func openFailures() async throws {
        let node = try SimulatedNode(podCount: 0)
        defer { node.remove() }
        let downPod = try node.addPod(up: false)
        let ns = node.namespacePath(node.namespace)
        let (down, missing, namespace, linkType, sameNamespace) = try await onDedicatedThread {
            func failure(_ body: () throws(CaptureSourceError) -> Void) -> CaptureSourceError? {
                Result(catching: body).failure
            }
            let down = failure { () throws(CaptureSourceError) in _ = try PcapLiveSource(interface: downPod.hostInterface, networkNamespace: ns) }
            let missing = failure { () throws(CaptureSourceError) in _ = try PcapLiveSource(interface: "nosuch0", networkNamespace: ns) }
            let namespace = failure { () throws(CaptureSourceError) in
                _ = try PcapLiveSource(interface: "lo", networkNamespace: "/run/netns/\(node.namespace)-missing")
            }
            // Brought up, the same interface opens; the thread is back in its own namespace.
            try node.exec(["ip", "link", "set", downPod.hostInterface, "up"])
            let source = try PcapLiveSource(interface: downPod.hostInterface, networkNamespace: ns)
            let own = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net")
            let initial = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
            return (down, missing, namespace, source.linkType, own == initial)
        }
        #expect(down?.code == .interfaceDown)
        #expect(down?.message.hasPrefix("interface \(downPod.hostInterface) in network namespace \(ns) is down") == true,
                "\(String(describing: down))")
        #expect(missing?.code == .noSuchInterface)
        #expect(missing?.message.hasPrefix("no interface named 'nosuch0' in network namespace \(ns)") == true,
                "\(String(describing: missing))")
        #expect(namespace?.code == .namespace, "\(String(describing: namespace))")
        #expect(linkType == .ethernet)
        #expect(sameNamespace)
        print("open failures: \(String(describing: down)); \(String(describing: missing)); \(String(describing: namespace))")
    }
}

/// A PcapLiveSource polled on its own thread until `stop()`: every packet decoded and fed to a
/// FlowTracker; `accept` classifies packets (for filter tests).
final class LiveCapture: @unchecked Sendable {
    struct Outcome: Sendable {
        var flows: [FlowRecord] = []
        var statistics = CaptureStatistics()
        var packets = 0
        /// Packets `accept` rejected.
        var rejected = 0
        var error: CaptureSourceError?
    }

    private let lock = NSLock()
    private var stopRequested = false
    private var openError: CaptureSourceError?
    private var outcome = Outcome()
    private let opened = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// Opens the source on the capture thread; returns once it is capturing.
    init(_ configuration: PcapLiveConfiguration,
         accept: @escaping @Sendable (borrowing DecodedPacket) -> Bool = { _ in true }) throws {
        Thread { [self] in run(configuration, accept) }.start()
        opened.wait()
        if let openError { throw openError }
    }

    private func run(_ configuration: PcapLiveConfiguration, _ accept: (borrowing DecodedPacket) -> Bool) {
        defer { finished.signal() }
        var source: PcapLiveSource
        do {
            source = try PcapLiveSource(configuration)
        } catch {
            openError = error
            opened.signal()
            return
        }
        opened.signal()
        var tracker = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 1024), sink: CollectingFlowSink())
        let decoder = PacketDecoder()
        var decoded = DecodedPacket()
        var packets = 0, rejected = 0
        while true {
            let stopping = lock.withLock { stopRequested }
            let n: Int
            do {
                n = try source.poll(timeoutMilliseconds: stopping ? 50 : 20) { packet in
                    decoder.decode(packet.bytes, linkType: packet.linkType, into: &decoded)
                    if !accept(decoded) { rejected += 1 }
                    tracker.process(decoded, frame: packet.bytes, timestamp: packet.timestamp,
                                    wireLength: packet.originalLength, interface: packet.interfaceIndex)
                    packets += 1
                }
            } catch {
                outcome.error = error
                break
            }
            // Stop after a quiet 50 ms once asked to: everything sent before stop() is in.
            if stopping && n == 0 { break }
        }
        tracker.finish()
        outcome.flows = tracker.sink.closed
        outcome.packets = packets
        outcome.rejected = rejected
        outcome.statistics = source.statistics
    }

    /// Drains what is still arriving, closes the source and returns what it saw. Idempotent
    /// (call it in a `defer` too, so a failing test does not leave the thread polling).
    func stop() -> Outcome {
        let first = lock.withLock { () -> Bool in
            defer { stopRequested = true }
            return !stopRequested
        }
        if first { finished.wait() }
        return outcome
    }
}

/// Without CAP_NET_RAW, opening fails with `.permissionDenied`. Capabilities belong to the
/// process, so the test binary runs itself under `setpriv` with CAP_NET_RAW removed from its
/// bounding set (root then gets no CAP_NET_RAW at exec), selecting only the probe below.
@Suite("libpcap live capture without privilege")
@MainActor struct PcapPermissionTests {
    static let probeVariable = "PODTAP_PCAP_PERMISSION_PROBE"

    @Test("Opening without CAP_NET_RAW throws permissionDenied")
    func permissionDenied() throws {
        guard ProcessInfo.processInfo.environment[Self.probeVariable] == nil else { return }
        let setpriv = try #require(which("setpriv"), "setpriv (util-linux) is needed")
        let r = try runProcess(setpriv, ["--bounding-set=-net_raw", "--", "/usr/bin/env", "\(Self.probeVariable)=1",
                                         CommandLine.arguments[0], "--testing-library", "swift-testing",
                                         "--filter", "PcapPermissionTests/probe"])
        let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("probe: ") }
        #expect(line?.hasPrefix("probe: permissionDenied pcap_activate(lo): capturing on lo needs CAP_NET_RAW") == true,
                "\(r.stdout)\(r.stderr)")
        print(line ?? "no probe output")
    }

    /// Runs only in the child started above.
    @Test("probe") func probe() {
        guard ProcessInfo.processInfo.environment[Self.probeVariable] != nil else { return }
        do {
            _ = try PcapLiveSource(interface: "lo")
            print("probe: opened")
        } catch {
            print("probe: \(error.code) \(error.operation): \(error.message)")
        }
    }
}
