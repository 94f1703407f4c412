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
}
