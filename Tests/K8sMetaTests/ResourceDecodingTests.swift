import Foundation
import K8sMeta
import Testing

/// The recorded fixtures of a real kube-apiserver, beside the repository.
let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("shared/k8s-fixtures")

struct List<Item: Decodable>: Decodable {
    var items: [Item]
}

@Suite struct ResourceDecodingTests {
    @Test func podsDecodeWithOnlyTheFieldsTheIndexNeeds() throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("lists/pods.json"))
        let pods = try JSONDecoder().decode(List<Pod>.self, from: data).items
        #expect(pods.count == 11)
        let web = try #require(pods.first { $0.metadata.name == "web-qzcnvkfk99-7r2j6" })
        #expect(web.metadata.namespace == "demo")
        #expect(web.ips == ["10.244.1.3"])
        #expect(web.metadata.controller?.kind == "ReplicaSet")
        #expect(web.metadata.controller?.name == "web-qzcnvkfk99")
        let hostNetwork = pods.filter { $0.spec.hostNetwork == true }
        #expect(hostNetwork.count == 4)
    }

    @Test func servicesSlicesAndNodesDecode() throws {
        let services = try JSONDecoder().decode(
            List<Service>.self, from: Data(contentsOf: fixtures.appendingPathComponent("lists/services.json"))).items
        #expect(Set(services.flatMap(\.ips)) == ["10.96.0.1", "10.96.0.10", "10.96.24.50", "10.96.95.222"])
        let slices = try JSONDecoder().decode(
            List<EndpointSlice>.self,
            from: Data(contentsOf: fixtures.appendingPathComponent("lists/endpointslices.json"))).items
        #expect(Set(slices.compactMap(\.serviceName)) == ["kubernetes", "kube-dns", "web", "api"])
        let nodes = try JSONDecoder().decode(
            List<Node>.self, from: Data(contentsOf: fixtures.appendingPathComponent("lists/nodes.json"))).items
        #expect(nodes.first { $0.metadata.name == "kapi-worker" }?.ips == ["172.18.0.3"])
        #expect(nodes.first { $0.metadata.name == "kapi-verify-node" }?.ips == [])
    }
}
