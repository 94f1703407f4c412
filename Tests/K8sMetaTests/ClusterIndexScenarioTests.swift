import CaptureCore
import Foundation
import K8sMeta
import Testing

func address(_ text: String) -> IPAddress { IPAddress(text) ?? .zero }

extension ClusterIndex {
    /// "pod scenario/probe-a", "node kapi-worker", "service demo/web", "cluster", "world".
    func name(_ ip: String, port: UInt16 = 0, at time: Timestamp? = nil) -> String {
        describe(identity(of: address(ip), port: port, at: time))
    }
}

/// The recorded scenario replayed through the index, event by event at the times the events
/// arrived; after each step the index must answer what the cluster state was.
@Suite struct ClusterIndexScenarioTests {
    static let configuration = ClusterIndex.Configuration(clusterRanges: [CIDR("10.96.0.0/12")].compactMap { $0 })

    @Test func everyStepOfTheRecordedScenario() throws {
        try Self.checkEveryStep(of: try ScenarioReplay())
    }

    /// Applies `scenario` step by step and checks what the index answers after each step: used
    /// with the events decoded from the files here, and with the events the informers delivered
    /// over HTTPS in `InformerIndexScenarioTests`.
    static func checkEveryStep(of scenario: ScenarioReplay) throws {
        #expect(scenario.events.count == 32)
        var index = scenario.initialIndex(configuration)
        var next = 0
        // Checks run after every event that arrived before step n + 1 started.
        func advance(through step: Int) {
            let end = scenario.time(ofStep: step + 1)
            while next < scenario.events.count, scenario.events[next].arrival < end {
                scenario.events[next].apply(&index, scenario.events[next].arrival)
                next += 1
            }
        }
        let t = { (n: Int) in scenario.time(ofStep: n) }

        // Before: the lists. The pod CIDRs of the nodes are learned as cluster ranges.
        #expect(index.name("10.244.1.3") == "pod demo/web-qzcnvkfk99-7r2j6")
        #expect(index.name("10.244.1.7") == "cluster")
        #expect(index.name("10.244.1.4") == "pod demo/web-qzcnvkfk99-tgk9w")
        #expect(index.name("203.0.113.7") == "world")
        #expect(index.pod(namespace: "scenario", name: "probe-a") == nil)

        advance(through: 1)
        let pendingA = try #require(index.pod(namespace: "scenario", name: "probe-a"))
        #expect(pendingA.addresses.isEmpty && pendingA.nodeName == nil && pendingA.phase == "Pending")
        #expect(index.name("10.244.1.7") == "cluster")

        advance(through: 2)
        #expect(index.pod(namespace: "scenario", name: "probe-a")?.nodeName == "kapi-worker")
        #expect(index.pod(namespace: "scenario", name: "probe-a")?.addresses == [])

        advance(through: 3)
        #expect(index.name("10.244.1.7") == "pod scenario/probe-a")
        let a = index.identity(of: address("10.244.1.7"))
        #expect(index.nodeName(a) == "kapi-worker")
        #expect(index.pod(namespace: "scenario", name: "probe-a")?.labels == ["app": "probe"])
        // Before status gave the address, it named no pod.
        #expect(index.name("10.244.1.7", at: t(3)) == "cluster")

        advance(through: 4)
        #expect(index.pod(namespace: "scenario", name: "probe-a")?.labels == ["app": "probe-v2", "version": "v2"])
        #expect(index.name("10.244.1.7") == "pod scenario/probe-a")

        advance(through: 5)
        let terminating = try #require(index.pod(namespace: "scenario", name: "probe-a"))
        #expect(terminating.isTerminating)
        #expect(terminating.addresses == [address("10.244.1.7")])
        #expect(index.name("10.244.1.7") == "pod scenario/probe-a")

        advance(through: 6)
        #expect(index.pod(namespace: "scenario", name: "probe-a") == nil)
        #expect(index.name("10.244.1.7") == "cluster")
        #expect(index.name("10.244.1.7", at: t(4)) == "pod scenario/probe-a")
        #expect(index.name("10.244.1.7", at: t(6)) == "pod scenario/probe-a")

        advance(through: 8)
        #expect(index.pod(namespace: "scenario", name: "probe-b")?.nodeName == "kapi-worker")
        #expect(index.name("10.244.1.7") == "cluster")

        advance(through: 9)
        // IP reuse: the new pod now, the old one for flows of its own lifetime, nobody in between.
        #expect(index.name("10.244.1.7") == "pod scenario/probe-b")
        #expect(index.name("10.244.1.7", at: t(4)) == "pod scenario/probe-a")
        #expect(index.name("10.244.1.7", at: t(8)) == "cluster")
        #expect(index.name("10.244.1.7", at: t(10)) == "pod scenario/probe-b")

        #expect(index.name("10.96.201.75") == "cluster")
        advance(through: 10)
        #expect(index.name("10.96.201.75") == "service scenario/probe")
        #expect(index.servicePorts(namespace: "scenario", name: "probe")?.isEmpty == false)

        advance(through: 11)
        #expect(index.name("10.96.201.75") == "cluster")
        #expect(index.name("10.96.201.75", at: t(11)) == "service scenario/probe")
        #expect(index.name("10.96.201.75", at: t(10)) == "cluster")

        advance(through: 12)
        #expect(index.pod(namespace: "demo", name: "web-qzcnvkfk99-tgk9w")?.isTerminating == true)
        #expect(index.name("10.244.1.4") == "pod demo/web-qzcnvkfk99-tgk9w")

        advance(through: 13)
        var web = index.backends(ofService: "demo", "web")
        #expect(web.count == 3)
        let draining = try #require(web.first { $0.addresses == [address("10.244.1.4")] })
        #expect(draining.podName == "web-qzcnvkfk99-tgk9w")
        #expect(!draining.ready && draining.serving && draining.terminating)
        #expect(index.serviceName(index.identity(of: address("10.244.1.4"))) == "demo/web")

        advance(through: 15)
        #expect(index.pod(namespace: "demo", name: "web-qzcnvkfk99-x5k2m")?.addresses == [])
        #expect(index.name("10.244.1.4") == "pod demo/web-qzcnvkfk99-tgk9w")

        advance(through: 16)
        // Both pods hold 10.244.1.4; the newest holder wins from its start on.
        #expect(index.pod(namespace: "demo", name: "web-qzcnvkfk99-tgk9w")?.addresses == [address("10.244.1.4")])
        #expect(index.pod(namespace: "demo", name: "web-qzcnvkfk99-x5k2m")?.addresses == [address("10.244.1.4")])
        #expect(index.name("10.244.1.4") == "pod demo/web-qzcnvkfk99-x5k2m")
        #expect(index.name("10.244.1.4", at: t(16)) == "pod demo/web-qzcnvkfk99-tgk9w")
        // The slice still lists the old pod for that address: the new one backs no Service yet.
        #expect(index.identity(of: address("10.244.1.4")).serviceName == 0)

        advance(through: 17)
        // Removing the old pod must not drop the new mapping.
        #expect(index.pod(namespace: "demo", name: "web-qzcnvkfk99-tgk9w") == nil)
        #expect(index.name("10.244.1.4") == "pod demo/web-qzcnvkfk99-x5k2m")
        #expect(index.name("10.244.1.4", at: t(13)) == "pod demo/web-qzcnvkfk99-tgk9w")
        #expect(index.name("10.244.1.4", at: t(17)) == "pod demo/web-qzcnvkfk99-x5k2m")

        advance(through: 18)
        web = index.backends(ofService: "demo", "web")
        let replaced = try #require(web.first { $0.addresses == [address("10.244.1.4")] })
        #expect(replaced.podName == "web-qzcnvkfk99-x5k2m" && replaced.ready && !replaced.terminating)
        #expect(index.services(backedBy: "demo", pod: "web-qzcnvkfk99-x5k2m") == ["demo/web"])
        let x5k2m = index.identity(of: address("10.244.1.4"))
        #expect(index.serviceName(x5k2m) == "demo/web")
        // No ReplicaSets were watched: the workload is the pod's controller reference.
        #expect(index.workloadName(x5k2m) == "ReplicaSet/web-qzcnvkfk99")

        advance(through: 20)
        #expect(index.name("172.18.0.3") == "node kapi-worker")
        #expect(index.name("203.0.113.7") == "world")

        advance(through: 21)
        #expect(next == scenario.events.count - 9)  // only bookmarks remain
        #expect(index.name("203.0.113.7") == "node kapi-worker")
        #expect(index.name("172.18.0.3") == "node kapi-worker")
        #expect(index.name("203.0.113.7", at: t(21)) == "world")

        // The remaining events are bookmarks: nothing changes.
        while next < scenario.events.count {
            #expect(scenario.events[next].summary.hasPrefix("BOOKMARK"))
            scenario.events[next].apply(&index, scenario.events[next].arrival)
            next += 1
        }
        #expect(index.name("10.244.1.4") == "pod demo/web-qzcnvkfk99-x5k2m")
        #expect(index.name("10.244.1.7") == "pod scenario/probe-b")

        // Owners learned later re-label the pods: ReplicaSet → Deployment.
        let replicaSets = try JSONDecoder().decode(
            List<ReplicaSet>.self, from: Data(contentsOf: fixtures.appendingPathComponent("lists/replicasets.json"))).items
        index.apply(.replaced(replicaSets, resourceVersion: "374"), at: t(22))
        #expect(index.workloadName(index.identity(of: address("10.244.1.4"))) == "Deployment/web")
        #expect(
            index.owners(namespace: "demo", name: "web-qzcnvkfk99-x5k2m").map { "\($0.kind)/\($0.name)" }
                == ["ReplicaSet/web-qzcnvkfk99", "Deployment/web"])
    }

    @Test func theStateAfterTheScenarioMatchesTheListsTakenAfterIt() throws {
        let scenario = try ScenarioReplay()
        var index = scenario.initialIndex(Self.configuration)
        for e in scenario.events { e.apply(&index, e.arrival) }
        let after = try JSONDecoder().decode(
            List<Pod>.self,
            from: Data(contentsOf: ScenarioReplay.directory.appendingPathComponent("pods.list-after.json"))).items
        #expect(index.podCount == after.count)
        for pod in after {
            let info = try #require(index.pod(namespace: pod.metadata.namespace ?? "", name: pod.metadata.name))
            #expect(info.addresses.map(\.description) == pod.ips)
            for ip in pod.ips where pod.spec.hostNetwork != true {
                #expect(index.name(ip) == "pod \(pod.metadata.namespace ?? "")/\(pod.metadata.name)")
            }
        }
    }

    @Test func aRelistRemovesWhatIsGoneAndPruningForgetsOldHolders() throws {
        let scenario = try ScenarioReplay()
        var index = scenario.initialIndex(Self.configuration)
        for e in scenario.events { e.apply(&index, e.arrival) }
        let end = scenario.time(ofStep: 22)
        // A relist without probe-b (deleted while the watch was down) ends its interval.
        let pods = try JSONDecoder().decode(
            List<Pod>.self,
            from: Data(contentsOf: ScenarioReplay.directory.appendingPathComponent("pods.list-after.json"))).items
        index.apply(.replaced(pods.filter { $0.metadata.name != "probe-b" }, resourceVersion: "460"), at: end)
        #expect(index.pod(namespace: "scenario", name: "probe-b") == nil)
        #expect(index.name("10.244.1.7") == "cluster")
        #expect(index.name("10.244.1.7", at: scenario.time(ofStep: 10)) == "pod scenario/probe-b")
        #expect(index.name("10.244.1.7", at: scenario.time(ofStep: 4)) == "pod scenario/probe-a")
        #expect(index.name("10.244.1.3") == "pod demo/web-qzcnvkfk99-7r2j6")

        // Pruning forgets intervals that ended before a time; live holders stay.
        index.prune(endedBefore: end.adding(milliseconds: 1))
        #expect(index.name("10.244.1.7", at: scenario.time(ofStep: 4)) == "cluster")
        #expect(index.name("10.244.1.7", at: scenario.time(ofStep: 10)) == "cluster")
        #expect(index.name("10.244.1.4") == "pod demo/web-qzcnvkfk99-x5k2m")
        #expect(index.name("10.244.1.4", at: scenario.time(ofStep: 13)) == "cluster")
        #expect(index.name("10.244.1.4", at: scenario.time(ofStep: 17)) == "pod demo/web-qzcnvkfk99-x5k2m")
        // Freed intervals are reused by later holders without disturbing other chains.
        var again = try #require(pods.first { $0.metadata.name == "probe-b" })
        again.metadata.uid = "new-uid"
        index.apply(.added(again), at: end.adding(milliseconds: 5))
        #expect(index.name("10.244.1.7") == "pod scenario/probe-b")
        #expect(index.name("10.244.1.4") == "pod demo/web-qzcnvkfk99-x5k2m")
        #expect(index.name("10.244.1.3") == "pod demo/web-qzcnvkfk99-7r2j6")
    }
}
