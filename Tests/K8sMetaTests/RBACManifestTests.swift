import Foundation
import K8sMeta
import Testing
import Yams

/// deploy/rbac.yaml grants exactly what the informers use: get, list and watch on the resources
/// of ``ResourceKind/all``, nothing more.
@Suite struct RBACManifestTests {
    @Test func clusterRoleGrantsReadOnlyAccessToExactlyTheIndexedResources() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/rbac.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        var granted: Set<String> = []
        var roles = 0
        for document in try Yams.load_all(yaml: text) {
            guard let object = document as? [String: Any], object["kind"] as? String == "ClusterRole" else { continue }
            roles += 1
            for rule in object["rules"] as? [[String: Any]] ?? [] {
                let verbs = Set(rule["verbs"] as? [String] ?? [])
                #expect(verbs == ["get", "list", "watch"], "read-only verbs only")
                #expect(rule["resourceNames"] == nil && rule["nonResourceURLs"] == nil)
                for group in rule["apiGroups"] as? [String] ?? [] {
                    for resource in rule["resources"] as? [String] ?? [] {
                        #expect(!resource.contains("*") && group != "*", "no wildcards")
                        granted.insert(group.isEmpty ? resource : "\(resource).\(group)")
                    }
                }
            }
        }
        #expect(roles == 1)
        #expect(granted == Set(ResourceKind.all.map(\.description)))
    }
}
