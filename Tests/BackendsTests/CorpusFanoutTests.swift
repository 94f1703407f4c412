import Backends
import CaptureCore
import Foundation
import PodTapTestSupport
import Testing

/// Every well-formed Ethernet capture of the shared corpus (real traffic from many sources:
/// tunnels, VLANs, fragments, ICMP, IPv6 extension headers, …) replayed by tcpreplay out of a
/// pod's eth0 and captured with four flow-fanout threads on both ends of its veth (the pod's
/// eth0 sees the frames leave, the host end sees them arrive): no flow is tracked on two
/// threads, except a tunnel's outer flow, which is spread by its inner flows by design. (With
/// four threads a flow hashed two ways lands on two threads three times in four.)
@Suite("Corpus replayed through the flow fanout (real kernel)")
@MainActor struct CorpusFanoutTests {
    static let corpus = Repository.shared.appendingPathComponent("corpus")

    static var ethernetCaptures: [String] {
        let list = (try? String(contentsOf: corpus.appendingPathComponent("MANIFEST.tsv"), encoding: .utf8)) ?? ""
        return list.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count > 8, fields[1] == "wellformed", fields[8] == "1(EN10MB)" else { return nil }
            return String(fields[0])
        }
    }

    @Test func noFlowIsSplitBetweenThreads() throws {
        guard let tcpreplay = which("tcpreplay") else {
            Issue.record("tcpreplay is not installed")
            return
        }
        let files = Self.ethernetCaptures
        #expect(files.count > 40)
        let node = try SimulatedNode(podCount: 1)
        defer { node.remove() }
        let pod = node.pods[0]
        // Jumbo frames of the corpus must fit.
        try node.exec(in: pod.namespace, ["ip", "link", "set", "eth0", "mtu", "65535"])
        try node.exec(["ip", "link", "set", pod.hostInterface, "mtu", "65535"])
        var problems: [String] = []
        var flowsSeen = 0
        for file in files {
            var captures: [AFPacketCapture<TrackingWorker>] = []
            for (interface, ns) in [("eth0", pod.namespace), (pod.hostInterface, node.namespace)] {
                var config = testConfiguration(interface: interface, namespace: node.namespacePath(ns))
                config.fanout = AFPacketFanout(mode: .flow)
                captures.append(try AFPacketCapture(configuration: config, threads: 4, pollTimeoutMilliseconds: 20) { _ in
                    TrackingWorker()
                })
            }
            let path = Self.corpus.appendingPathComponent(file).path
            let replay = try runProcess("/usr/sbin/ip", ["netns", "exec", pod.namespace, tcpreplay, "-q", "-i", "eth0", "--topspeed", path])
            usleep(50_000)
            for (side, capture) in zip(["sent", "received"], captures) {
                let report = capture.stop()
                var threads: [FlowKey: Int] = [:]
                for outcome in report.results {
                    for key in Set(outcome.flows.filter({ !$0.carriesTunnel }).map(\.key)) { threads[key, default: 0] += 1 }
                }
                flowsSeen += threads.count
                let split = threads.filter { $0.value > 1 }.map(\.key)
                if !split.isEmpty {
                    problems.append("\(file) (\(side), replay \(replay.status)): \(split.count) of \(threads.count) flows on several threads, e.g. \(split[0])")
                }
            }
        }
        print("corpus through the fanout: \(files.count) captures, \(flowsSeen) flows tracked")
        #expect(problems == [])
    }
}
