import Backends
import CaptureCore
import Foundation
import PodTapTestSupport
import Testing

/// What a start hook hands back: the interface it was started on.
final class FakeCaptureHandle: Sendable {
    let interface: PodInterface
    init(_ interface: PodInterface) { self.interface = interface }
}

/// Every supervisor report and watcher event, with the instant it arrived.
final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var reports: [(at: ContinuousClock.Instant, report: PodInterfaceSupervisor<FakeCaptureHandle>.Report)] = []
    private var stopped: [String] = []

    func record(_ report: PodInterfaceSupervisor<FakeCaptureHandle>.Report) {
        lock.withLock { reports.append((ContinuousClock.now, report)) }
    }

    func recordStop(_ handle: FakeCaptureHandle) { lock.withLock { stopped.append(handle.interface.name) } }
    var stoppedNames: [String] { lock.withLock { stopped } }
    var all: [PodInterfaceSupervisor<FakeCaptureHandle>.Report] { lock.withLock { reports.map(\.report) } }

    /// The instant of the first report after `after` that `match` accepts, waiting up to `timeout`.
    func wait(
        after: ContinuousClock.Instant, timeout: Duration = .seconds(3),
        _ match: (PodInterfaceSupervisor<FakeCaptureHandle>.Report) -> Bool
    ) -> (ContinuousClock.Instant, PodInterfaceSupervisor<FakeCaptureHandle>.Report)? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let hit = lock.withLock({ reports.first { $0.at >= after && match($0.report) } }) { return (hit.at, hit.report) }
            usleep(2_000)
        }
        return nil
    }
}

extension PodInterfaceSupervisor.Report {
    var startedName: String? { if case .started(let i) = self { i.name } else { nil } }
}

final class Gate: @unchecked Sendable {
    private let lock = NSLock()
    private var opened = false
    var isOpen: Bool { lock.withLock { opened } }
    func open() { lock.withLock { opened = true } }
}

func milliseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
}

@Suite("InterfaceWatcher and PodInterfaceSupervisor (real netlink, SimulatedNode)")
@MainActor struct InterfaceWatcherTests {
    @Test("Enumeration finds exactly the pods' host veths, with peer ifindex, netnsid, namespace and address")
    func enumeratesPodInterfaces() throws {
        let node = try SimulatedNode(podCount: 4)
        defer { node.remove() }
        let found = try InterfaceWatcher.podInterfaces(namespacePath: node.namespacePath(node.namespace))

        #expect(found.map(\.name).sorted() == node.pods.map(\.hostInterface).sorted())
        let bridge = try node.exec(["ip", "-o", "link", "show", node.bridge])
        #expect(bridge.contains("\(node.bridge):"), "cni0 exists (and matches cni*) but is not selected")

        // `ip netns list-id` in the node namespace: "nsid 3 (iproute2 netns name: pt…p1)".
        let ids = try node.exec(["ip", "netns", "list-id"])
        var nsidByName: [String: Int32] = [:]
        for line in ids.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count >= 2, words[0] == "nsid", let id = Int32(words[1]), let name = words.last?.dropLast() else { continue }
            nsidByName[String(name)] = id
        }

        for pod in node.pods {
            let interface = try #require(found.first { $0.name == pod.hostInterface })
            // In the pod: "2: eth0@if7: <…>": 2 is the peer's ifindex, 7 the host veth's.
            let line = try node.exec(in: pod.namespace, ["ip", "-o", "link", "show", "eth0"])
            let peerIndex = Int32(line.prefix { $0 != ":" })
            let hostIndex = line.split(separator: "@if").dropFirst().first.flatMap { Int32($0.prefix { $0.isNumber }) }
            // In the node: "7: vethx@if2: <…> link-netns pt…p0" (ip -d shows the kind).
            let hostLine = try node.exec(["ip", "-d", "-o", "link", "show", pod.hostInterface])
            #expect(interface.peerIndex == peerIndex, "\(interface) vs \(line)")
            #expect(interface.index == hostIndex, "\(interface) vs \(line)")
            #expect(hostLine.contains("@if\(peerIndex ?? -1):"))
            #expect(interface.kind == "veth" && hostLine.contains("veth"))
            #expect(interface.peerNamespaceID != nil && interface.peerNamespaceID == nsidByName[pod.namespace], "\(ids)")
            #expect(interface.peerNamespacePath == node.namespacePath(pod.namespace))
            #expect(interface.podAddresses.contains(IPAddress(pod.address)!), "\(interface)")
            #expect(interface.peerAddresses.first { $0.address.isIPv4 }?.prefixLength == 24)
            #expect(interface.state == .up)
            print("found \(interface)")
        }

        // A veth pair with both ends in the node namespace (like cilium_host/cilium_net) is host
        // plumbing, not a pod; a name-pattern-only selector for cni* finds nothing (cni0 is the bridge).
        try node.exec(["ip", "link", "add", "plumbA", "type", "veth", "peer", "name", "plumbB"])
        try node.exec(["ip", "link", "set", "plumbA", "up"])
        let again = try InterfaceWatcher.podInterfaces(namespacePath: node.namespacePath(node.namespace))
        #expect(again.map(\.name).sorted() == node.pods.map(\.hostInterface).sorted())
        let cniOnly = PodInterfaceSelector(criteria: [.namePattern], namePatterns: ["cni*"])
        #expect(try InterfaceWatcher.podInterfaces(namespacePath: node.namespacePath(node.namespace), selector: cniOnly).isEmpty)
        let byName = PodInterfaceSelector(criteria: [.namePattern], namePatterns: ["plumb?"])
        #expect(try InterfaceWatcher.podInterfaces(namespacePath: node.namespacePath(node.namespace), selector: byName)
            .map(\.name).sorted() == ["plumbA", "plumbB"])

        // Default namespace: the calling thread's. A dedicated thread enters the node namespace.
        let fromInside = try onDedicatedThread(inNamespace: node.namespacePath(node.namespace)) {
            try InterfaceWatcher.podInterfaces()
        }
        #expect(fromInside.map(\.name).sorted() == node.pods.map(\.hostInterface).sorted())
        #expect(fromInside.map(\.peerIndex) == found.map(\.peerIndex))
    }

    @Test("A pod namespace with no bind mount (Docker-style) is found through /proc/PID/ns/net")
    func findsNamespaceOfProcess() throws {
        let node = try SimulatedNode(podCount: 0)
        let holder = try node.spawn(in: node.namespace, ["unshare", "--net", "sleep", "30"])
        defer {
            // SIGKILL: the spawned process may inherit a mask that blocks SIGTERM.
            kill(holder.processIdentifier, SIGKILL)
            holder.waitUntilExit()
            node.remove()
        }
        let pid = holder.processIdentifier
        let nodeNamespace = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        let deadline = ContinuousClock.now + .seconds(2)
        var entered = false
        while !entered, ContinuousClock.now < deadline {
            let ns = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")
            let nodeNs = try? runProcess("/usr/bin/stat", ["-L", "-c", "%i", node.namespacePath(node.namespace)]).stdout
            entered = ns != nil && ns != nodeNamespace && !ns!.contains(nodeNs?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "-")
            if !entered { usleep(5_000) }
        }
        try #require(entered, "unshare --net did not run")
        let host = "vethpr\(pid % 100_000)"
        try node.exec(["ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", "\(pid)"])
        try node.exec(["nsenter", "--net=/proc/\(pid)/ns/net", "ip", "addr", "add", "10.77.0.2/24", "dev", "eth0"])
        try node.exec(["nsenter", "--net=/proc/\(pid)/ns/net", "ip", "addr", "add", "fd00:77::2/64", "dev", "eth0", "nodad"])
        let found = try InterfaceWatcher.podInterfaces(namespacePath: node.namespacePath(node.namespace))
        let interface = try #require(found.first { $0.name == host })
        #expect(found.count == 1)
        #expect(interface.peerNamespacePath == "/proc/\(pid)/ns/net", "\(interface)")
        #expect(interface.podAddresses == [IPAddress("10.77.0.2")!, IPAddress("fd00:77::2")!], "\(interface)")
        #expect(interface.state == .down && interface.peerIndex != nil)
    }

    @Test("Pods created, deleted, down then up: started and stopped within 1 s of the change")
    func watchesPodsComeAndGo() throws {
        let node = try SimulatedNode(podCount: 1)
        let recorder = Recorder()
        let supervisor = PodInterfaceSupervisor<FakeCaptureHandle>(
            start: { FakeCaptureHandle($0) }, stop: { recorder.recordStop($0) }, report: { recorder.record($0) })
        let watcher = InterfaceWatcher(namespacePath: node.namespacePath(node.namespace), handler: supervisor.handle)
        try watcher.start()
        defer {
            watcher.stop()
            supervisor.stopAll()
            node.remove()
        }
        // The existing pod was started before start() returned.
        #expect(supervisor.runningInterfaces.map(\.name) == [node.pods[0].hostInterface])

        // A new pod.
        let beforeAdd = ContinuousClock.now
        let pod = try node.addPod()
        let afterAdd = ContinuousClock.now
        let started = try #require(recorder.wait(after: beforeAdd) { $0.startedName == pod.hostInterface })
        let addLatency = beforeAdd.duration(to: started.0)
        #expect(addLatency < .seconds(1))
        // Its address shows up as the pod end is configured (a changed event, no restart).
        let deadline = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < deadline,
            watcher.interfaces.first(where: { $0.name == pod.hostInterface })?.podAddresses.contains(IPAddress(pod.address)!) != true
        {
            usleep(2_000)
        }
        let addressed = watcher.interfaces.first { $0.name == pod.hostInterface }
        #expect(addressed?.podAddresses.contains(IPAddress(pod.address)!) == true, "\(String(describing: addressed))")
        #expect(supervisor.runningInterfaces.contains { $0.name == pod.hostInterface && $0.peerNamespacePath != nil })

        // The pod is deleted.
        let beforeDelete = ContinuousClock.now
        try node.deletePod(pod)
        // The kernel sets the veth down (peerless) before deleting it: still a removal, not "down".
        let stopped = try #require(recorder.wait(after: beforeDelete) {
            if case .stopped(let i, .removed) = $0 { i.name == pod.hostInterface } else { false }
        }, "\(recorder.all)")
        let deleteLatency = beforeDelete.duration(to: stopped.0)
        #expect(deleteLatency < .seconds(1))
        #expect(recorder.stoppedNames.contains(pod.hostInterface))
        #expect(!supervisor.runningInterfaces.contains { $0.name == pod.hostInterface })
        let goneBy = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < goneBy, watcher.interfaces.contains(where: { $0.name == pod.hostInterface }) { usleep(2_000) }
        #expect(!watcher.interfaces.contains { $0.name == pod.hostInterface })
        #expect(!supervisor.knownInterfaces.contains { $0.name == pod.hostInterface })

        // A pod whose veth is down: skipped with a reason, started once it is up, stopped when down.
        let beforeDown = ContinuousClock.now
        let down = try node.addPod(up: false)
        let skipped = try #require(recorder.wait(after: beforeDown) {
            if case .skipped(let i, _) = $0 { i.name == down.hostInterface } else { false }
        })
        if case .skipped(_, let reason) = skipped.1 { #expect(reason.contains("down")) }
        #expect(!supervisor.runningInterfaces.contains { $0.name == down.hostInterface })
        #expect(!recorder.all.contains { $0.startedName == down.hostInterface })
        let beforeUp = ContinuousClock.now
        try node.exec(["ip", "link", "set", down.hostInterface, "up"])
        let upStarted = try #require(recorder.wait(after: beforeUp) { $0.startedName == down.hostInterface })
        let upLatency = beforeUp.duration(to: upStarted.0)
        #expect(upLatency < .seconds(1))
        let beforeSetDown = ContinuousClock.now
        try node.exec(["ip", "link", "set", down.hostInterface, "down"])
        let downStopped = try #require(recorder.wait(after: beforeSetDown) {
            if case .stopped(let i, .down) = $0 { i.name == down.hostInterface } else { false }
        })
        let downLatency = beforeSetDown.duration(to: downStopped.0)
        #expect(downLatency < .seconds(1))

        print(String(format: "latency: created→started %.1f ms (addPod itself took %.1f ms), deleted→stopped %.1f ms, "
                     + "set up→started %.1f ms, set down→stopped %.1f ms",
                     milliseconds(addLatency), milliseconds(beforeAdd.duration(to: afterAdd)), milliseconds(deleteLatency),
                     milliseconds(upLatency), milliseconds(downLatency)))
        #expect(!recorder.all.contains { if case .watcherProblem = $0 { true } else { false } }, "\(recorder.all)")
    }

    @Test("A start hook that throws is reported, retried when the interface comes up again, and the watcher carries on")
    func failingStartIsNotFatal() throws {
        struct HookFailure: Error {}
        let node = try SimulatedNode(podCount: 2)
        let failing = node.pods[0].hostInterface
        let gate = Gate()
        let recorder = Recorder()
        let supervisor = PodInterfaceSupervisor<FakeCaptureHandle>(
            start: { interface in
                if interface.name == failing, !gate.isOpen { throw HookFailure() }
                return FakeCaptureHandle(interface)
            },
            stop: { recorder.recordStop($0) }, report: { recorder.record($0) })
        let watcher = InterfaceWatcher(namespacePath: node.namespacePath(node.namespace), handler: supervisor.handle)
        let beforeStart = ContinuousClock.now
        try watcher.start()
        defer {
            watcher.stop()
            supervisor.stopAll()
            node.remove()
        }
        #expect(recorder.wait(after: beforeStart) {
            if case .startFailed(let i, let e) = $0 { i.name == failing && e is HookFailure } else { false }
        } != nil)
        #expect(supervisor.runningInterfaces.map(\.name) == [node.pods[1].hostInterface])

        // The watcher still works: a new pod is started.
        let beforeAdd = ContinuousClock.now
        let pod = try node.addPod()
        #expect(recorder.wait(after: beforeAdd) { $0.startedName == pod.hostInterface } != nil)

        // Retried on the next up event, and then it succeeds.
        gate.open()
        try node.exec(["ip", "link", "set", failing, "down"])
        let beforeUp = ContinuousClock.now
        try node.exec(["ip", "link", "set", failing, "up"])
        let retried = recorder.wait(after: beforeUp) { $0.startedName == failing }
        #expect(retried != nil)
        #expect(Set(supervisor.runningInterfaces.map(\.name)) == Set([failing, node.pods[1].hostInterface, pod.hostInterface]))
    }
}
