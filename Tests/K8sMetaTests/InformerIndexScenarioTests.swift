// The whole path a node agent runs: four informers list and watch the recorded scenario over
// real HTTPS, and their events, applied to the index, give the same answers at every step as
// the recorded cluster state.
import CaptureCore
import Foundation
import K8sMeta
@testable import K8sMetaClient
import Testing

@Suite struct InformerIndexScenarioTests {
    @Test func informersOverHTTPSFeedTheIndexStepByStep() async throws {
        let resources = ["pods", "services", "endpointslices", "nodes"]
        var watchLines: [String: [[UInt8]]] = [:]
        for r in resources { watchLines[r] = Reply.lines("watch/scenario/\(r).watch.ndjson") }
        let lines = watchLines
        let server = try await TestAPIServer.start { request, _ in
            guard let resource = resources.first(where: { request.path.hasSuffix("/\($0)") }) else {
                return .body(status: 404, contentType: "text/plain", bytes: Array("404 page not found".utf8), headers: [])
            }
            if !request.isWatch { return .fixture("watch/scenario/\(resource).list-before.json") }
            // The recorded stream from the list's version; later re-watches get nothing new.
            return request.query["resourceVersion"] == "404"
                ? .watch(lines[resource] ?? [], end: .hang) : .stream(chunks: [], end: .hang)
        }
        let client = try KubeClient(configuration: try server.configuration())
        let backoff = Backoff(initial: .milliseconds(5), maximum: .milliseconds(40))
        let pods = InformerRun(Informer<Pod>(client: client, options: .init(watchTimeoutSeconds: 90, backoff: backoff)))
        let services = InformerRun(Informer<Service>(client: client, options: .init(watchTimeoutSeconds: 90, backoff: backoff)))
        let slices = InformerRun(Informer<EndpointSlice>(client: client, options: .init(watchTimeoutSeconds: 90, backoff: backoff)))
        let nodes = InformerRun(Informer<Node>(client: client, options: .init(watchTimeoutSeconds: 90, backoff: backoff)))
        let complete = await waitUntil {
            pods.delivered.count == 1 + (lines["pods"]?.count ?? 0)
                && services.delivered.count == 1 + (lines["services"]?.count ?? 0)
                && slices.delivered.count == 1 + (lines["endpointslices"]?.count ?? 0)
                && nodes.delivered.count == 1 + (lines["nodes"]?.count ?? 0)
        }
        await pods.stop()
        await services.stop()
        await slices.stop()
        await nodes.stop()
        try await client.shutdown()
        await server.shutdown()
        #expect(complete, "pods \(pods.delivered.count), services \(services.delivered.count), slices \(slices.delivered.count), nodes \(nodes.delivered.count)")
        #expect(server.requests.filter(\.isWatch).allSatisfy { $0.query["resourceVersion"] == "404" })

        let scenario = try ScenarioReplay(
            delivered: pods.delivered, services.delivered, slices.delivered, nodes.delivered)
        try ClusterIndexScenarioTests.checkEveryStep(of: scenario)
    }

    /// A watch that gets the in-stream 410 relists; the relist replaces the index's pods, so
    /// afterwards the index names exactly the pods of the newer list.
    @Test func relistAfterIn410LeavesTheIndexEqualToTheNewList() async throws {
        let server = try await TestAPIServer.start { request, index in
            if !request.isWatch {
                return .fixture(index == 0 ? "watch/scenario/pods.list-before.json" : "watch/scenario/pods.list-after.json")
            }
            if request.query["resourceVersion"] == "404" {
                return .watch(Reply.lines("errors/watch-410-too-old-resourceVersion-404.pods.ndjson"), end: .finish)
            }
            return .stream(chunks: [], end: .hang)
        }
        let client = try KubeClient(configuration: try server.configuration())
        let run = InformerRun(Informer<Pod>(
            client: client, options: .init(backoff: Backoff(initial: .milliseconds(5), maximum: .milliseconds(40)))))
        let relisted = await waitUntil { run.delivered.count >= 2 }
        await run.stop()
        try await client.shutdown()
        await server.shutdown()
        #expect(relisted)

        var index = ClusterIndex()
        for (i, event) in run.delivered.enumerated() {
            index.apply(event, at: Timestamp(seconds: 1_000 + UInt64(i), nanoseconds: 0))
        }
        struct PodList: Decodable { var items: [Pod] }
        let before = try JSONDecoder().decode(PodList.self, from: Data(contentsOf: fixtures.appendingPathComponent(
            "watch/scenario/pods.list-before.json"))).items
        let after = try JSONDecoder().decode(PodList.self, from: Data(contentsOf: fixtures.appendingPathComponent(
            "watch/scenario/pods.list-after.json"))).items
        let afterNames = Set(after.map { "\($0.metadata.namespace ?? "")/\($0.metadata.name)" })
        #expect(index.podCount == after.count)
        for pod in before where !afterNames.contains("\(pod.metadata.namespace ?? "")/\(pod.metadata.name)") {
            #expect(index.pod(namespace: pod.metadata.namespace ?? "", name: pod.metadata.name) == nil,
                    "\(pod.metadata.name) is gone from the newer list")
        }
        for pod in after {
            let info = index.pod(namespace: pod.metadata.namespace ?? "", name: pod.metadata.name)
            #expect(info != nil, "\(pod.metadata.name) missing")
            guard pod.spec.hostNetwork != true else { continue }
            for ip in pod.ips {
                #expect(index.name(ip) == "pod \(pod.metadata.namespace ?? "")/\(pod.metadata.name)")
            }
        }
    }

    /// The README's agent loop: a node-local pod informer feeding a SharedClusterIndex, read
    /// through an Enricher on a snapshot.
    @Test func nodeLocalInformerFeedsASharedIndex() async throws {
        let server = try await TestAPIServer.start { request, _ in
            if request.isWatch { return .stream(chunks: [], end: .hang) }
            return request.query["fieldSelector"] == "spec.nodeName=kapi-worker"
                ? .fixture("lists/pods-fieldSelector-nodeName-kapi-worker.json") : .fixture("lists/pods.json")
        }
        let client = try KubeClient(configuration: try server.configuration())
        let shared = SharedClusterIndex()
        let pods = Informer<Pod>(client: client, nodeName: "kapi-worker")
        let task = Task { await pods.run() }
        for await event in pods.events {
            shared.apply(event)
            if case .replaced = event { break }
        }
        task.cancel()
        await task.value
        try await client.shutdown()
        await server.shutdown()

        let list = try #require(server.requests.first { !$0.isWatch })
        #expect(list.query["fieldSelector"] == "spec.nodeName=kapi-worker")
        let index = shared.snapshot()
        #expect(index.podCount == 7)
        #expect(index.name("10.244.1.3") == "pod demo/web-qzcnvkfk99-7r2j6")
        // CoreDNS runs on the control-plane node: not held by a node-local agent on kapi-worker.
        #expect(index.pod(namespace: "kube-system", name: "coredns-25lns6h9hk-6z5gb") == nil)

        var record = FlowRecord(key: FlowKey.normalised(
            source: IPAddress("10.244.1.3")!, sourcePort: 41000, destination: IPAddress("10.244.1.5")!,
            destinationPort: 8080, protocolNumber: 6, vlanID: 0, tunnel: .none, tunnelID: 0).key)
        record.directions[0].firstSeen = ClusterIndex.wallClock()
        record.directions[1].firstSeen = ClusterIndex.wallClock()
        let names = Enricher(index: index).identities(of: record)
        #expect(Set([index.describe(names.a), index.describe(names.b)])
                == ["pod demo/web-qzcnvkfk99-7r2j6", "pod shop/api-phzzl74vsj-kp58t"])
    }
}
