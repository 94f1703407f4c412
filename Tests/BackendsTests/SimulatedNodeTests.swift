import PodTapTestSupport
import Testing

@Suite("Simulated node (test fixture)")
struct SimulatedNodeTests {
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
}
