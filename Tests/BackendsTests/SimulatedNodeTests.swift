import Foundation
import PodTapTestSupport
import Testing

@Suite("Simulated node (test fixture)")
@MainActor struct SimulatedNodeTests {
    @Test("Pods reach each other across the bridge, and removal leaves no namespace behind")
    func podsTalk() throws {
        let node = try SimulatedNode(podCount: 2)
        let a = node.pods[0], b = node.pods[1]
        let ping = try node.exec(in: a.namespace, ["ping", "-c", "1", "-W", "2", b.address])
        #expect(ping.contains("1 received"))
        let links = try node.exec(["ip", "-o", "link", "show", "master", node.bridge])
        #expect(links.contains(a.hostInterface) && links.contains(b.hostInterface))
        node.remove()
        let left = try runProcess("/usr/sbin/ip", ["netns", "list"]).stdout
        #expect(!left.contains(node.namespace) && !left.contains(a.namespace))
    }

    @Test("Namespaces left by a test run that died are removed, those of live runs kept")
    func leftoversOfDeadRunsAreRemoved() throws {
        // A pid that no longer runs: a finished child's.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let dead = "pt\(child.processIdentifier)x0n", live = "pt\(getpid())x999999n"
        for name in [dead, live] {
            #expect(try runProcess("/usr/sbin/ip", ["netns", "add", name]).status == 0)
        }
        defer { _ = try? runProcess("/usr/sbin/ip", ["netns", "delete", live]) }
        // Another test's first node may sweep first: what counts is what is left.
        _ = SimulatedNode.removeLeftovers()
        let left = try runProcess("/usr/sbin/ip", ["netns", "list"]).stdout.split(separator: "\n")
            .map { String($0.split(separator: " ").first ?? "") }
        #expect(!left.contains(dead))
        #expect(left.contains(live))
    }
}
