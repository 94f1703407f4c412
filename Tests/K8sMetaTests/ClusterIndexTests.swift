import CaptureCore
import Foundation
import K8sMeta
import Testing

/// The index over the recorded lists (k8s-fixtures/lists), snapshots, and hand-made objects.
@Suite struct ClusterIndexTests {
    static func decode<R: Decodable>(_ type: R.Type, _ name: String) throws -> [R] {
        try JSONDecoder().decode(List<R>.self, from: Data(contentsOf: fixtures.appendingPathComponent("lists/\(name).json"))).items
    }

    static let listTime = Timestamp(seconds: 1_795_259_491, nanoseconds: 0)

    /// Everything in lists/ applied as relists.
    static func listsIndex(_ configuration: ClusterIndex.Configuration = .init(clusterRanges: [CIDR("10.96.0.0/12")].compactMap { $0 }))
        throws -> ClusterIndex
    {
        var index = ClusterIndex(configuration: configuration)
        let t = listTime
        index.apply(.replaced(try decode(Pod.self, "pods"), resourceVersion: "374"), at: t)
        index.apply(.replaced(try decode(Service.self, "services"), resourceVersion: "374"), at: t)
        index.apply(.replaced(try decode(EndpointSlice.self, "endpointslices"), resourceVersion: "374"), at: t)
        index.apply(.replaced(try decode(Node.self, "nodes"), resourceVersion: "374"), at: t)
        index.apply(.replaced(try decode(ReplicaSet.self, "replicasets"), resourceVersion: "374"), at: t)
        index.apply(.replaced(try decode(Deployment.self, "deployments"), resourceVersion: "375"), at: t)
        index.apply(.replaced(try decode(DaemonSet.self, "daemonsets"), resourceVersion: "376"), at: t)
        return index
    }

    @Test func hostNetworkPodsShareTheNodeAddressUnlessThePortNamesThem() throws {
        let index = try Self.listsIndex()
        #expect(index.name("172.18.0.3") == "node kapi-worker")
        #expect(index.name("172.18.0.2") == "node kapi-control-plane")
        // node-exporter declares containerPort/hostPort 9100.
        let exporter = index.identity(of: address("172.18.0.3"), port: 9100)
        #expect(exporter.kind == .hostNetworkPod)
        #expect(index.objectName(exporter)?.hasPrefix("monitoring/node-exporter-") == true)
        #expect(index.nodeName(exporter) == "kapi-worker")
        #expect(index.workloadName(exporter) == "DaemonSet/node-exporter")
        let onControlPlane = index.identity(of: address("172.18.0.2"), port: 9100)
        #expect(onControlPlane.kind == .hostNetworkPod && onControlPlane != exporter)
        // kube-proxy declares no port: its node-level traffic names the node.
        #expect(index.name("172.18.0.3", port: 10249) == "node kapi-worker")
        #expect(index.name("172.18.0.3", port: 43_122) == "node kapi-worker")
    }

    @Test func aHostNetworkPodOfAnUnknownNodeNamesTheNodeFromItsSpec() throws {
        var index = ClusterIndex()
        let pods = try Self.decode(Pod.self, "pods").filter { $0.spec.hostNetwork == true }
        index.apply(.replaced(pods, resourceVersion: "1"), at: Self.listTime)
        #expect(index.name("172.18.0.3") == "node kapi-worker")
        #expect(index.identity(of: address("172.18.0.3"), port: 9100).kind == .hostNetworkPod)
    }

    @Test func ownersResolveToTheTopLevelWorkload() throws {
        let index = try Self.listsIndex()
        #expect(
            index.owners(namespace: "demo", name: "web-qzcnvkfk99-7r2j6").map { "\($0.kind)/\($0.name)" }
                == ["ReplicaSet/web-qzcnvkfk99", "Deployment/web"])
        let web = index.identity(of: address("10.244.1.3"))
        #expect(index.workloadName(web) == "Deployment/web")
        #expect(index.serviceName(web) == "demo/web")
        #expect(index.nodeName(web) == "kapi-worker")
        let proxy = try #require(
            try Self.decode(Pod.self, "pods").first { $0.metadata.name.hasPrefix("kube-proxy-") })
        let info = try #require(index.pod(namespace: "kube-system", name: proxy.metadata.name))
        #expect(index.workloadName(info.identity) == "DaemonSet/kube-proxy")
        #expect(index.owners(namespace: "kube-system", name: proxy.metadata.name).map(\.kind) == ["DaemonSet"])
        let dns = index.identity(of: address("10.244.0.2"))
        #expect(index.workloadName(dns) == "Deployment/coredns")
        #expect(index.serviceName(dns) == "kube-system/kube-dns")
        #expect(index.objectName(index.identity(of: address("10.244.1.5")))?.hasPrefix("shop/api-") == true)
    }

    @Test func jobsNameTheirCronJobAndUnknownOwnersFallBackToTheControllerReference() throws {
        var index = ClusterIndex()
        let t = Self.listTime
        let pod = Pod(
            metadata: ObjectMeta(
                name: "backup-29000000-x7k2p", namespace: "ops", uid: "p1",
                ownerReferences: [OwnerReference(kind: "Job", name: "backup-29000000", uid: "j1", controller: true)]),
            status: .init(podIP: "10.244.2.9"))
        index.apply(.added(pod), at: t)
        #expect(index.workloadName(index.identity(of: address("10.244.2.9"))) == "Job/backup-29000000")
        let job = Job(
            metadata: ObjectMeta(
                name: "backup-29000000", namespace: "ops", uid: "j1",
                ownerReferences: [OwnerReference(kind: "CronJob", name: "backup", uid: "c1", controller: true)]))
        index.apply(.added(job), at: t)
        #expect(index.workloadName(index.identity(of: address("10.244.2.9"))) == "CronJob/backup")
        #expect(index.owners(namespace: "ops", name: "backup-29000000-x7k2p").map(\.name) == ["backup-29000000", "backup"])
        index.apply(.deleted(job), at: t)
        #expect(index.workloadName(index.identity(of: address("10.244.2.9"))) == "Job/backup-29000000")
        let set = StatefulSet(metadata: ObjectMeta(name: "db", namespace: "ops", uid: "s1"))
        var member = pod
        member.metadata = ObjectMeta(
            name: "db-0", namespace: "ops", uid: "p2",
            ownerReferences: [OwnerReference(kind: "StatefulSet", name: "db", uid: "s1", controller: true)])
        member.status = .init(podIP: "10.244.2.10")
        index.apply(.replaced([set], resourceVersion: "1"), at: t)
        index.apply(.added(member), at: t)
        #expect(index.workloadName(index.identity(of: address("10.244.2.10"))) == "StatefulSet/db")
    }

    @Test func servicesNodesAndExternalRanges() throws {
        let index = try Self.listsIndex()
        #expect(index.name("10.96.0.10") == "service kube-system/kube-dns")
        #expect(index.name("10.96.0.1") == "service default/kubernetes")
        #expect(index.serviceName(index.identity(of: address("10.96.24.50"))) == "demo/web")
        #expect(index.servicePorts(namespace: "kube-system", name: "kube-dns")?.map(\.port).contains(53) == true)
        // Learned pod CIDRs (10.244.0/24, .1/24, .9/24) and the configured service range are "cluster".
        #expect(index.name("10.244.9.77") == "cluster")
        #expect(index.name("10.96.200.1") == "cluster")
        #expect(index.name("10.244.5.5") == "world")
        #expect(index.name("8.8.8.8") == "world")
        #expect(index.name("2001:db8::1") == "world")
        #expect(index.clusterRanges.map(\.description).contains("10.244.9.0/24"))
        // Without learning, only the configured ranges count.
        let plain = try Self.listsIndex(.init(clusterRanges: [CIDR("10.244.0.0/16")].compactMap { $0 }, learnsPodCIDRs: false))
        #expect(plain.name("10.244.5.5") == "cluster")
        #expect(plain.name("10.96.200.1") == "world")
        #expect(CIDR("10.244.0.0/33") == nil && CIDR("bogus/8") == nil && CIDR("fd00::/8")?.contains(address("fd12::1")) == true)
    }

    @Test func relistsOfEveryKindRemoveWhatIsGone() throws {
        var index = try Self.listsIndex()
        let later = Timestamp(seconds: 1_795_259_600, nanoseconds: 0)
        let services = try Self.decode(Service.self, "services").filter { $0.metadata.name != "kube-dns" }
        index.apply(.replaced(services, resourceVersion: "500"), at: later)
        #expect(index.name("10.96.0.10") == "cluster")
        #expect(index.name("10.96.0.10", at: Self.listTime) == "service kube-system/kube-dns")
        #expect(index.name("10.96.24.50") == "service demo/web")
        // Without its slice, the web pods back no Service; the other pods keep theirs.
        let slices = try Self.decode(EndpointSlice.self, "endpointslices").filter { $0.serviceName != "web" }
        index.apply(.replaced(slices, resourceVersion: "500"), at: later)
        #expect(index.identity(of: address("10.244.1.3")).serviceName == 0)
        #expect(index.serviceName(index.identity(of: address("10.244.0.2"))) == "kube-system/kube-dns")
        // Without the Deployments, the ReplicaSet's controller reference still names the Deployment;
        // without the ReplicaSets, the pod's own reference is all there is.
        index.apply(.replaced([Deployment](), resourceVersion: "500"), at: later)
        #expect(index.workloadName(index.identity(of: address("10.244.1.3"))) == "Deployment/web")
        index.apply(.replaced([ReplicaSet](), resourceVersion: "500"), at: later)
        #expect(index.workloadName(index.identity(of: address("10.244.1.3"))) == "ReplicaSet/web-qzcnvkfk99")
        #expect(index.owners(namespace: "demo", name: "web-qzcnvkfk99-7r2j6").count == 1)
        // A node gone from the relist: its address and pod CIDR are forgotten, but its
        // hostNetwork pods still name it from their spec.
        let nodes = try Self.decode(Node.self, "nodes").filter { $0.metadata.name != "kapi-control-plane" }
        index.apply(.replaced(nodes, resourceVersion: "500"), at: later)
        #expect(!index.clusterRanges.map(\.description).contains("10.244.0.0/24"))
        #expect(index.name("172.18.0.2") == "node kapi-control-plane")
        index.apply(.replaced([Pod](), resourceVersion: "500"), at: later)
        #expect(index.podCount == 0)
        #expect(index.name("172.18.0.2") == "world")
        #expect(index.name("10.244.1.3") == "cluster")
        #expect(index.name("10.244.1.3", at: Self.listTime) == "pod demo/web-qzcnvkfk99-7r2j6")
    }

    @Test func dualStackPodsHoldBothFamilies() {
        var index = ClusterIndex()
        let pod = Pod(
            metadata: ObjectMeta(name: "v6", namespace: "net", uid: "u6"),
            status: .init(podIP: "10.244.3.4", podIPs: [.init(ip: "10.244.3.4"), .init(ip: "fd00:10:244:3::4")]))
        index.apply(.added(pod), at: Timestamp(nanoseconds: 100))
        #expect(index.name("fd00:10:244:3::4") == "pod net/v6")
        #expect(index.name("10.244.3.4") == "pod net/v6")
        #expect(index.name("fd00:10:244:3::4", at: Timestamp(nanoseconds: 50)) == "world")
        index.apply(.deleted(pod), at: Timestamp(nanoseconds: 200))
        #expect(index.name("fd00:10:244:3::4") == "world")
        #expect(index.name("fd00:10:244:3::4", at: Timestamp(nanoseconds: 150)) == "pod net/v6")
        // A dual-stack node and a hostNetwork pod on it: both families share the node's addresses.
        let node = Node(
            metadata: ObjectMeta(name: "n6", uid: "n6"),
            status: .init(addresses: [.init(type: "InternalIP", address: "172.20.0.5"), .init(type: "InternalIP", address: "fd00:172::5")]))
        index.apply(.added(node), at: Timestamp(nanoseconds: 300))
        let agent = Pod(
            metadata: ObjectMeta(name: "agent", namespace: "net", uid: "agent"),
            spec: .init(nodeName: "n6", hostNetwork: true, containers: [.init(name: "a", ports: [.init(containerPort: 9400)])]),
            status: .init(podIPs: [.init(ip: "172.20.0.5"), .init(ip: "fd00:172::5")]))
        index.apply(.added(agent), at: Timestamp(nanoseconds: 300))
        #expect(index.name("fd00:172::5") == "node n6")
        #expect(index.name("fd00:172::5", port: 9400) == "hostnetwork-pod net/agent")
        #expect(index.name("172.20.0.5", port: 9400) == "hostnetwork-pod net/agent")
        #expect(index.name("172.20.0.5", port: 9401) == "node n6")
        // Many pods: the tables grow and keep every address.
        for i in 0..<3000 {
            let p = Pod(
                metadata: ObjectMeta(name: "p\(i)", namespace: "n", uid: "u\(i)"),
                status: .init(podIPs: [.init(ip: "10.1.\(i / 250).\(i % 250 + 1)"), .init(ip: "fd00::\(String(i + 1, radix: 16))")]))
            index.apply(.added(p), at: Timestamp(nanoseconds: 300))
        }
        for i in stride(from: 0, to: 3000, by: 7) {
            #expect(index.name("10.1.\(i / 250).\(i % 250 + 1)") == "pod n/p\(i)")
            #expect(index.name("fd00::\(String(i + 1, radix: 16))") == "pod n/p\(i)")
        }
    }

    @Test func vethPeerAddressesNameThePod() throws {
        let index = try Self.listsIndex()
        let pod = index.pod(forInterfaceAddresses: [address("fe80::1"), address("127.0.0.1"), address("10.244.1.5")])
        #expect(pod.flatMap { index.objectName($0) }?.hasPrefix("shop/api-") == true)
        #expect(index.pod(forInterfaceAddresses: [address("172.18.0.3")]) == nil)
        #expect(index.pod(forInterfaceAddresses: [address("10.244.1.99")]) == nil)
        #expect(index.pod(forInterfaceAddresses: []) == nil)
    }

    @Test func aSharedIndexHandsOutSnapshotsThatNeverChange() throws {
        let shared = SharedClusterIndex(try Self.listsIndex())
        let before = shared.snapshot()
        let generation = shared.generation
        let pod = Pod(metadata: ObjectMeta(name: "late", namespace: "demo", uid: "late"), status: .init(podIP: "10.244.1.99"))
        shared.update { $0.apply(.added(pod), at: Self.listTime) }
        #expect(shared.generation == generation + 1)
        #expect(before.name("10.244.1.99") == "cluster")
        #expect(shared.snapshot().name("10.244.1.99") == "pod demo/late")
        #expect(shared.identity(of: address("10.244.1.99")).kind == .pod)
    }

    @Test func theEnricherNamesBothEndsOfAFlow() throws {
        let index = try Self.listsIndex()
        let enricher = Enricher(index: index)
        // shop/api pod (client) → kube-dns ClusterIP :53, normalised so that a < b.
        let (key, direction) = FlowKey.normalised(
            source: address("10.244.1.5"), sourcePort: 43_122, destination: address("10.96.0.10"), destinationPort: 53,
            protocolNumber: 17, vlanID: 0, tunnel: .none, tunnelID: 0)
        var flow = FlowRecord(key: key)
        flow.clientSide = UInt8(direction)
        flow.directions[direction].packets = 1
        flow.directions[direction].firstSeen = Self.listTime
        flow.directions[direction].lastSeen = Self.listTime
        let named = enricher.enrich(flow)
        #expect(index.describe(named.client).hasPrefix("pod shop/api-"))
        #expect(index.workloadName(named.client) == "Deployment/api")
        #expect(index.serviceName(named.client) == "shop/api")
        #expect(index.describe(named.server) == "service kube-system/kube-dns")
        // 10.96.0.10 sorts before 10.244.1.5: the key's b end is the client.
        #expect(flow.clientSide == 1 && named.identities.b == named.client && named.identities.a == named.server)
        // A scrape of node-exporter on the worker's address: the server end is the pod, the
        // client end on the same node address with an ephemeral port is the node.
        let scrape = FlowKey(
            a: address("172.18.0.2"), portA: 51_000, b: address("172.18.0.3"), portB: 9100, protocolNumber: 6)
        func at(_ key: FlowKey, _ time: Timestamp) -> FlowRecord {
            var f = FlowRecord(key: key)
            f.directions[0].packets = 3
            f.directions[0].firstSeen = time
            f.directions[0].lastSeen = time
            return f
        }
        // Before the lists were applied, the addresses named nothing (10.244/16 is learned later too).
        #expect(enricher.identities(of: at(scrape, .zero)).b == .world)
        let ends = enricher.identities(of: at(scrape, Self.listTime))
        #expect(ends.a.kind == .node && index.objectName(ends.a) == "kapi-control-plane")
        #expect(ends.b.kind == .hostNetworkPod && index.workloadName(ends.b) == "DaemonSet/node-exporter")
        // ICMP has no ports: node-level.
        let ping = FlowKey(a: address("172.18.0.2"), portA: 9100, b: address("172.18.0.3"), portB: 9100, protocolNumber: 1)
        #expect(enricher.identities(of: at(ping, Self.listTime)).b.kind == .node)
        // Outside the cluster.
        let out = FlowKey(a: address("10.244.1.3"), portA: 40_000, b: address("93.184.216.34"), portB: 443, protocolNumber: 6)
        let outEnds = enricher.identities(of: at(out, Self.listTime))
        #expect(outEnds.b == .world)
        #expect(MemoryLayout<EndpointIdentity>.size <= 32)
    }

    @Test func theEnricherUsesTheFlowsTimeForReusedAddresses() throws {
        let scenario = try ScenarioReplay()
        var index = scenario.initialIndex(.init())
        for e in scenario.events { e.apply(&index, e.arrival) }
        let enricher = Enricher(index: index)
        func flow(at time: Timestamp) -> FlowRecord {
            var f = FlowRecord(key: FlowKey(a: address("10.244.1.3"), portA: 80, b: address("10.244.1.7"), portB: 40_000, protocolNumber: 6))
            f.directions[0].packets = 1
            f.directions[0].firstSeen = time
            f.directions[0].lastSeen = time.adding(milliseconds: 100)
            return f
        }
        #expect(index.describe(enricher.identities(of: flow(at: scenario.time(ofStep: 4))).b) == "pod scenario/probe-a")
        #expect(index.describe(enricher.identities(of: flow(at: scenario.time(ofStep: 10))).b) == "pod scenario/probe-b")
        // A flow whose first packet came just before the informer reported the address is
        // named from its last packet.
        let early = try ScenarioReplay.time("2026-11-21T11:13:20.400Z")
        #expect(index.describe(enricher.identities(of: flow(at: early)).b) == "pod scenario/probe-b")
    }
}

@Suite struct ClusterSnapshotTests {
    static let directory = fixtures.appendingPathComponent("snapshot")
    static let json = directory.appendingPathComponent("kubectl-get-pods-services-nodes-endpointslices-replicasets-deployments-A.json")
    static let yaml = directory.appendingPathComponent("kubectl-get-pods-services-nodes-endpointslices-replicasets-deployments-A.yaml")

    @Test func jsonAndYAMLLoadTheSameObjects() throws {
        let fromJSON = try ClusterSnapshot(contentsOf: Self.json)
        let fromYAML = try ClusterSnapshot(contentsOf: Self.yaml)
        #expect(fromJSON.count == 28 && fromJSON.skipped.isEmpty)
        #expect(fromJSON.pods.count == 11 && fromJSON.services.count == 4 && fromJSON.nodes.count == 3)
        #expect(fromJSON.endpointSlices.count == 4 && fromJSON.replicaSets.count == 3 && fromJSON.deployments.count == 3)
        #expect(fromJSON.pods == fromYAML.pods)
        #expect(fromJSON.services == fromYAML.services)
        #expect(fromJSON.endpointSlices == fromYAML.endpointSlices)
        #expect(fromJSON.nodes == fromYAML.nodes)
        #expect(fromJSON.replicaSets == fromYAML.replicaSets && fromJSON.deployments == fromYAML.deployments)
    }

    @Test func bothNameEveryRecordedPodServiceAndNodeIdentically() throws {
        let a = try ClusterSnapshot(contentsOf: Self.json).index()
        let b = try ClusterSnapshot(contentsOf: Self.yaml).index()
        func label(_ index: ClusterIndex, _ ip: String, _ port: UInt16 = 0) -> String {
            let id = index.identity(of: address(ip), port: port, at: Timestamp(seconds: 1_000, nanoseconds: 0))
            return [index.describe(id), index.workloadName(id) ?? "-", index.serviceName(id) ?? "-", index.nodeName(id) ?? "-"]
                .joined(separator: " | ")
        }
        let pods = try JSONDecoder().decode(List<Pod>.self, from: Data(contentsOf: fixtures.appendingPathComponent("lists/pods.json"))).items
        for pod in pods {
            let ip = try #require(pod.ips.first)
            let port = UInt16(pod.spec.containers?.first?.ports?.first?.containerPort ?? 0)
            #expect(label(a, ip, port) == label(b, ip, port))
            if pod.spec.hostNetwork != true {
                #expect(label(a, ip).hasPrefix("pod \(pod.metadata.namespace ?? "")/\(pod.metadata.name) | Deployment/"))
            } else if port != 0 {
                #expect(label(a, ip, port).hasPrefix("hostnetwork-pod \(pod.metadata.namespace ?? "")/"))
            }
        }
        for (ip, service) in [("10.96.0.1", "default/kubernetes"), ("10.96.0.10", "kube-system/kube-dns"),
                              ("10.96.24.50", "demo/web"), ("10.96.95.222", "shop/api")] {
            #expect(label(a, ip) == "service \(service) | - | \(service) | -")
            #expect(label(b, ip) == label(a, ip))
        }
        #expect(label(a, "172.18.0.2") == "node kapi-control-plane | - | - | kapi-control-plane")
        #expect(label(b, "172.18.0.3") == "node kapi-worker | - | - | kapi-worker")
        // The snapshot has no DaemonSets: their pods fall back to the controller reference.
        #expect(label(a, "172.18.0.3", 9100).contains("DaemonSet/node-exporter"))
        // Valid for all time: also at time 0 and now.
        #expect(a.describe(a.identity(of: address("10.244.1.3"), at: .zero)) == "pod demo/web-qzcnvkfk99-7r2j6")
        #expect(a.describe(a.identity(of: address("10.244.1.3"))) == "pod demo/web-qzcnvkfk99-7r2j6")
    }

    @Test func apiListsAndBadInputLoadOrFailWithAReason() throws {
        let pods = try ClusterSnapshot(contentsOf: fixtures.appendingPathComponent("lists/pods.json"))
        #expect(pods.pods.count == 11)
        let mixed = try ClusterSnapshot(json: Data(#"{"kind":"List","items":[{"kind":"ConfigMap","metadata":{"name":"x"}}]}"#.utf8))
        #expect(mixed.count == 0 && mixed.skipped == ["ConfigMap": 1])
        #expect(throws: SnapshotError.self) { try ClusterSnapshot(json: Data("{\"items\": [{\"kind\":\"Pod\"}]}".utf8)) }
        #expect(throws: SnapshotError.self) { try ClusterSnapshot(yaml: "items: [unclosed") }
        do {
            _ = try ClusterSnapshot(contentsOf: URL(fileURLWithPath: "/nonexistent/snap.json"))
            Issue.record("expected an error")
        } catch let error as SnapshotError {
            #expect(error.description.contains("/nonexistent/snap.json"))
        }
        do {
            _ = try ClusterSnapshot(json: Data(#"{"kind":"List","items":[{"kind":"Pod","metadata":{"name":"p"}}]}"#.utf8))
            Issue.record("expected an error")
        } catch let error as SnapshotError {
            #expect(error.description.contains("uid"))
        }
    }
}

/// Informer-side use: events of any resource type through one generic entry point.
@Suite struct IndexableResourceTests {
    /// What an informer generic over its resource does with every event.
    static func deliver<R: IndexableResource>(_ events: [WatchEvent<R>], to shared: SharedClusterIndex) {
        for e in events { shared.apply(e) }
    }

    @Test func eventsOfEveryKindApplyThroughOneGenericPath() throws {
        let shared = SharedClusterIndex()
        let before = ClusterIndex.wallClock()
        Self.deliver([.replaced(try ClusterIndexTests.decode(Pod.self, "pods"), resourceVersion: "374")], to: shared)
        Self.deliver([.replaced(try ClusterIndexTests.decode(Service.self, "services"), resourceVersion: "374")], to: shared)
        Self.deliver([.added(try #require(try ClusterIndexTests.decode(Node.self, "nodes").first { $0.metadata.name == "kapi-worker" }))], to: shared)
        Self.deliver(try ClusterIndexTests.decode(EndpointSlice.self, "endpointslices").map { .added($0) }, to: shared)
        Self.deliver([.replaced(try ClusterIndexTests.decode(ReplicaSet.self, "replicasets"), resourceVersion: "374")], to: shared)
        Self.deliver([.replaced(try ClusterIndexTests.decode(Deployment.self, "deployments"), resourceVersion: "375")], to: shared)
        Self.deliver([WatchEvent<Deployment>.bookmark(resourceVersion: "400")], to: shared)
        let index = shared.snapshot()
        let web = index.identity(of: address("10.244.1.3"))
        #expect(index.describe(web) == "pod demo/web-qzcnvkfk99-7r2j6")
        #expect(index.workloadName(web) == "Deployment/web" && index.serviceName(web) == "demo/web")
        #expect(index.name("172.18.0.3") == "node kapi-worker")
        // Stamped with the wall clock: nothing before the events, everything after.
        #expect(index.name("10.244.1.3", at: Timestamp(nanoseconds: before.nanoseconds - 1_000_000_000)) != "pod demo/web-qzcnvkfk99-7r2j6")
        #expect(ClusterIndex.wallClock() >= before && before.seconds > 1_700_000_000)
    }
}
