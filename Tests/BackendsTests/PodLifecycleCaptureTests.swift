// The node agent's discovery loop end to end on the real kernel: InterfaceWatcher finds pod
// veths in a simulated node, PodInterfaceSupervisor starts one AFPacketCapture per veth that is
// up, pods come and go during the capture, and each capture counts exactly its pod's traffic.
import Backends
import CaptureCore
import Foundation
import PodTapTestSupport
import Synchronization
import Testing

@Suite("Pod lifecycle: watcher + supervisor + AF_PACKET capture (real kernel)")
@MainActor struct PodLifecycleCaptureTests {
    /// What the supervisor did, and each stopped capture's report, by interface name.
    final class Journal: @unchecked Sendable {
        let reports = Mutex<[String]>([])
        let finished = Mutex<[String: AFPacketCapture<TrackingWorker>.Report]>([:])

        func log(_ report: PodInterfaceSupervisor<Running>.Report) {
            reports.withLock { $0.append(report.description) }
        }
        func lines(containing text: String) -> [String] {
            reports.withLock { $0.filter { $0.contains(text) } }
        }
    }

    struct Running: @unchecked Sendable {
        let name: String
        let capture: AFPacketCapture<TrackingWorker>
    }

    /// ICMP echo packets between two addresses in one capture's flows (both directions).
    static func echoPackets(_ flows: [FlowRecord], _ x: String, _ y: String) -> UInt64 {
        let a = IPAddress(x)!, b = IPAddress(y)!
        return flows.filter { $0.key.protocolNumber == 1 && Set([$0.key.a, $0.key.b]) == Set([a, b]) }
            .reduce(0) { $0 + $1.directions[0].packets + $1.directions[1].packets }
    }

    /// The node agent's loop on `node`: a watcher, started, feeding a supervisor that runs an
    /// AF_PACKET capture of `threads` threads (ring blocks of 64 KiB, `configure` sets the
    /// rest) on each pod veth that is up, and records into `journal`. The caller stops both.
    static func superviseCaptures(
        on node: SimulatedNode, threads: Int, journal: Journal,
        configure: @escaping @Sendable (inout AFPacketConfiguration) -> Void
    ) throws -> (supervisor: PodInterfaceSupervisor<Running>, watcher: InterfaceWatcher) {
        let namespace = node.namespacePath(node.namespace)
        let supervisor = PodInterfaceSupervisor<Running>(
            start: { interface in
                var configuration = AFPacketConfiguration(interface: interface.name, namespacePath: namespace)
                configuration.blockSize = 1 << 16
                configure(&configuration)
                let capture = try AFPacketCapture(configuration: configuration, threads: threads, pollTimeoutMilliseconds: 50) { _ in
                    TrackingWorker()
                }
                return Running(name: interface.name, capture: capture)
            },
            stop: { running in
                let report = running.capture.stop()
                journal.finished.withLock { $0[running.name] = report }
            },
            report: journal.log)
        let watcher = InterfaceWatcher(namespacePath: namespace, handler: supervisor.handle)
        do {
            try watcher.start()
        } catch {
            watcher.stop()
            supervisor.stopAll()
            throw error
        }
        return (supervisor, watcher)
    }

    @Test("Pods added, deleted and down during capture: picked up, stopped cleanly, skipped with a reason")
    func podsComeAndGo() throws {
        let node = try SimulatedNode(podCount: 3)
        defer { node.remove() }
        let journal = Journal()
        let (supervisor, watcher) = try Self.superviseCaptures(on: node, threads: 1, journal: journal) { configuration in
            configuration.blockCount = 8
            // A block stays open for 200 ms after its first packet: every capture's last
            // packets are still in an open block when the pod is deleted or the capture
            // stopped, and must be delivered all the same.
            configuration.blockRetireTimeoutMilliseconds = 200
        }
        defer {
            watcher.stop()
            supervisor.stopAll()
        }
        #expect(Set(supervisor.runningInterfaces.map(\.name)) == Set(node.pods.map(\.hostInterface)))

        // A pod whose veth stays down: skipped, with the reason.
        let down = try node.addPod(up: false)
        #expect(eventually(within: 1) { !journal.lines(containing: "skipped \(down.hostInterface)").isEmpty })
        #expect(journal.lines(containing: "skipped \(down.hostInterface)").first?.contains("down") == true)
        #expect(!supervisor.runningInterfaces.contains { $0.name == down.hostInterface })

        // A pod created during capture: started within a second, and its traffic captured.
        let late = try node.addPod()
        #expect(eventually(within: 1) { supervisor.runningInterfaces.contains { $0.name == late.hostInterface } })
        try node.exec(in: late.namespace, ["ping", "-c", "3", "-i", "0.05", "-W", "1", node.pods[0].address])

        // A pod deleted during capture: its capture stops cleanly; the others keep capturing.
        let gone = node.pods[1]
        try node.exec(in: gone.namespace, ["ping", "-c", "2", "-i", "0.05", "-W", "1", node.pods[2].address])
        try node.deletePod(gone)
        #expect(eventually(within: 1) { journal.finished.withLock { $0[gone.hostInterface] != nil } })
        // The supervisor reports after the stop hook returns: wait for the line, too.
        #expect(eventually(within: 1) {
            !journal.lines(containing: "stopped \(gone.hostInterface): the interface was removed").isEmpty
        })
        try node.exec(in: node.pods[2].namespace, ["ping", "-c", "4", "-i", "0.05", "-W", "1", node.pods[0].address])

        supervisor.stopAll()  // no wait: stopping delivers the open blocks too
        let finished = journal.finished.withLock { $0 }
        func flows(_ pod: SimulatedNode.Pod) -> [FlowRecord] { finished[pod.hostInterface]?.results.first?.flows ?? [] }

        // The late pod's capture saw its 3 echo requests and 3 replies.
        #expect(Self.echoPackets(flows(late), late.address, node.pods[0].address) == 6)
        // The deleted pod's capture ended with the packets it saw before the deletion.
        let goneReport = try #require(finished[gone.hostInterface])
        #expect(Self.echoPackets(flows(gone), gone.address, node.pods[2].address) == 4)
        #expect(goneReport.total.droppedByKernel == 0)
        // Pod 2's capture kept running after the deletion: both conversations are in it.
        #expect(Self.echoPackets(flows(node.pods[2]), gone.address, node.pods[2].address) == 4)
        #expect(Self.echoPackets(flows(node.pods[2]), node.pods[2].address, node.pods[0].address) == 8)
        // Pod 0's capture saw both conversations that reached it.
        #expect(Self.echoPackets(flows(node.pods[0]), late.address, node.pods[0].address) == 6)
        #expect(Self.echoPackets(flows(node.pods[0]), node.pods[2].address, node.pods[0].address) == 8)
        // The down pod was never started.
        #expect(finished[down.hostInterface] == nil)
        for (name, report) in finished where name != gone.hostInterface {
            #expect(report.errors.allSatisfy { $0 == nil }, "\(name): \(report.errors)")
            #expect(report.total.droppedByKernel == 0)
        }
    }

    /// The packet sockets open in a namespace (`/proc/net/packet` read inside it): the
    /// captures' sockets, and nothing another test opens elsewhere.
    static func packetSockets(in node: SimulatedNode) throws -> Int {
        try node.exec(["cat", "/proc/net/packet"]).split(separator: "\n").count - 1
    }

    @Test("Pod churn: 12 pods created, captured and deleted one after another leave no packet socket behind")
    func podChurnLeavesNothingBehind() throws {
        let node = try SimulatedNode(podCount: 1)
        defer { node.remove() }
        let journal = Journal()
        let (supervisor, watcher) = try Self.superviseCaptures(on: node, threads: 2, journal: journal) { configuration in
            configuration.blockCount = 4
        }
        defer {
            watcher.stop()
            supervisor.stopAll()
        }
        let steady = try Self.packetSockets(in: node)
        #expect(steady == 2, "one socket per capture thread of the first pod")
        for _ in 0..<12 {
            let pod = try node.addPod()
            #expect(eventually(within: 1) { supervisor.runningInterfaces.contains { $0.name == pod.hostInterface } })
            #expect(try Self.packetSockets(in: node) == steady + 2)
            try node.exec(in: pod.namespace, ["ping", "-c", "1", "-W", "1", node.pods[0].address])
            try node.deletePod(pod)
            #expect(eventually(within: 1) { journal.finished.withLock { $0[pod.hostInterface] != nil } })
            let report = try #require(journal.finished.withLock { $0[pod.hostInterface] })
            #expect(Self.echoPackets(report.results.flatMap(\.flows), pod.address, node.pods[0].address) == 2)
        }
        #expect(eventually(within: 1) { (try? Self.packetSockets(in: node)) == steady })
        #expect(supervisor.runningInterfaces.map(\.name) == [node.pods[0].hostInterface])
        supervisor.stopAll()
        #expect(try Self.packetSockets(in: node) == 0)
    }
}
