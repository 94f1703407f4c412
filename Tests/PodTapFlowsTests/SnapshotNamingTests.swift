import Foundation
import PodTapTestSupport
import Testing

/// `podtap-flows --snapshot`: flow ends named from a kubectl List, checked against the List itself.
@Suite("podtap-flows --snapshot")
@MainActor struct SnapshotNamingTests {
    static let demoSnapshot = Tool.repository.appendingPathComponent("Demo/cluster-snapshot.json").path

    /// address → "namespace/name" of the pod holding it, read straight from a kubectl List.
    static func podsByAddress(_ path: String) throws -> [String: String] {
        let list = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        var result: [String: String] = [:]
        for item in list["items"] as? [[String: Any]] ?? [] where item["kind"] as? String == "Pod" {
            let meta = item["metadata"] as? [String: Any] ?? [:]
            let status = item["status"] as? [String: Any] ?? [:]
            for ip in (status["podIPs"] as? [[String: Any]] ?? []).compactMap({ $0["ip"] as? String }) {
                result[ip] = "\(meta["namespace"] as? String ?? "")/\(meta["name"] as? String ?? "")"
            }
        }
        return result
    }

    @Test("jsonl: both ends of every demo flow name the pod or node the snapshot gives their address")
    func jsonLinesNameEveryEnd() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.cleanup() }
        let r = try Tool.run(["--format", "jsonl", "--snapshot", Self.demoSnapshot, try PodTapFlowsTests.demoCapture(scratch)])
        #expect(r.status == 0)
        let pods = try Self.podsByAddress(Self.demoSnapshot)
        #expect(pods.count > 100)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count > 50)
        var kinds: [String: Int] = [:]
        var services = Set<String>()
        for line in lines {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for (end, k8s) in [("client", "client_k8s"), ("server", "server_k8s")] {
                let ip = try #require((o[end] as? [String: Any])?["ip"] as? String)
                let who = try #require(o[k8s] as? [String: Any])
                let kind = who["kind"] as? String ?? "?"
                kinds[kind, default: 0] += 1
                if kind == "pod" {
                    #expect("\(who["namespace"] as? String ?? "")/\(who["name"] as? String ?? "")" == pods[ip])
                    #expect(who["workload"] is String && who["node"] is String)
                } else {
                    #expect(kind == "node" && ip.hasPrefix("10.0.0."))
                }
                if end == "server", let s = who["service"] as? String { services.insert(s) }
            }
        }
        #expect(kinds["pod", default: 0] > 100 && kinds["node", default: 0] > 0)
        #expect(services == ["web", "api", "gateway", "postgres", "redis", "kube-dns"])
    }

    @Test("table and csv carry the names; the recorded kubectl YAML names the CoreDNS pods")
    func tableCSVAndYAML() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.cleanup() }
        let capture = try PodTapFlowsTests.demoCapture(scratch)
        let table = try Tool.run(["--format", "table", "--limit", "0", "--snapshot", Self.demoSnapshot, capture])
        #expect(table.status == 0)
        #expect(table.stdout.contains("CLIENT IS") && table.stdout.contains("SERVER IS"))
        #expect(table.stdout.contains("(StatefulSet/postgres)") && table.stdout.contains("(CronJob/report)"))
        let csv = try Tool.run(["--format", "csv", "--snapshot", Self.demoSnapshot, capture])
        let rows = csv.stdout.split(separator: "\n")
        #expect(rows.first?.hasSuffix(",a_kind,a_name,a_workload,a_service,a_node,b_kind,b_name,b_workload,b_service,b_node") == true)
        #expect(rows.dropFirst().allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 28 })
        // Without --snapshot the output is unchanged.
        let plain = try Tool.run(["--format", "csv", capture])
        #expect(plain.stdout.split(separator: "\n").first?.hasSuffix(",state,end_reason") == true)

        // The recorded snapshot's CoreDNS pods are 10.244.0.2/.3, like the demo's DNS servers;
        // its nodes' pod CIDRs make 10.244.0/24, .1/24 and .9/24 "cluster", the rest "world".
        let yaml = Tool.shared.appendingPathComponent(
            "k8s-fixtures/snapshot/kubectl-get-pods-services-nodes-endpointslices-replicasets-deployments-A.yaml").path
        let named = try Tool.run(["--format", "jsonl", "--snapshot", yaml, capture])
        #expect(named.status == 0)
        var sawCoreDNS = false
        for line in named.stdout.split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let server = try #require(o["server_k8s"] as? [String: Any])
            let ip = (o["server"] as? [String: Any])?["ip"] as? String ?? ""
            if ip == "10.244.0.2" || ip == "10.244.0.3" {
                #expect((server["name"] as? String)?.hasPrefix("coredns-25lns6h9hk-") == true)
                #expect(server["service"] as? String == "kube-dns" && server["workload"] as? String == "coredns")
                sawCoreDNS = true
            } else if ["10.244.0.", "10.244.1.", "10.244.9."].contains(where: { ip.hasPrefix($0) }) {
                #expect(server["kind"] as? String == "cluster")
            } else {
                #expect(server["kind"] as? String == "world")
            }
        }
        #expect(sawCoreDNS)
    }

    @Test("a snapshot that cannot be read is an error naming the file")
    func badSnapshot() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.cleanup() }
        let capture = try PodTapFlowsTests.demoCapture(scratch)
        let missing = try Tool.run(["--snapshot", "/nonexistent/cluster.json", capture])
        #expect(missing.status == 1 && missing.stderr.contains("/nonexistent/cluster.json"))
        try Data("{\"kind\":\"List\",\"items\":[{\"kind\":\"Pod\"}]}".utf8).write(to: URL(fileURLWithPath: scratch.path("bad.json")))
        let bad = try Tool.run(["--snapshot", scratch.path("bad.json"), capture])
        #expect(bad.status == 1 && bad.stderr.contains("bad.json") && bad.stderr.contains("metadata"))
        let cidr = try Tool.run(["--snapshot", Self.demoSnapshot, "--cluster-cidr", "10.0.0.0/99", capture])
        #expect(cidr.status != 0 && cidr.stderr.contains("10.0.0.0/99"))
    }
}
