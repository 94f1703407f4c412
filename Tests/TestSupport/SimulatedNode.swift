// A Kubernetes node in miniature, built from real kernel objects the way the CNI bridge plugin
// builds them: a "node" network namespace holding a bridge (cni0), and one network namespace
// per "pod" whose eth0 is a veth whose host end (vethXXXX) is enslaved to the bridge.
// Everything lives in namespaces this object creates; `remove()` (or deinit) deletes them, and
// with them every veth and the bridge. Namespace names carry the test process's full pid
// ("pt<pid>x<n>n", "pt<pid>x<n>p<i>"), so leftovers of a crashed run can be told from another
// live run's namespaces (`ip netns list`; the pid no longer runs).
public import Foundation
import Synchronization

public final class SimulatedNode: @unchecked Sendable {
    public struct Pod: Sendable {
        /// The pod's network namespace (`ip netns` name).
        public let namespace: String
        /// The host-side veth in the node namespace.
        public let hostInterface: String
        /// The pod's address on the bridge network.
        public let address: String
    }

    private static let counter = Atomic<Int>(0)

    /// The node's network namespace (`ip netns` name); the bridge and host veths live here.
    public let namespace: String
    /// The bridge, "cni0".
    public let bridge = "cni0"
    /// The bridge's address (the pods' gateway).
    public let gatewayAddress: String
    /// /24 network prefix, e.g. "10.244.1".
    public let subnet: String
    public private(set) var pods: [Pod] = []
    private let prefix: String
    private var removed = false

    /// Creates the node namespace and bridge, then `podCount` pods.
    public init(podCount: Int, subnet: String = "10.244.1") throws {
        _ = Self.leftoversRemoved
        let n = Self.counter.wrappingAdd(1, ordering: .relaxed).newValue
        prefix = "pt\(getpid())x\(n)"
        namespace = prefix + "n"
        self.subnet = subnet
        gatewayAddress = "\(subnet).1"
        do {
            try Self.ip(["netns", "add", namespace])
            try exec(["ip", "link", "set", "lo", "up"])
            try exec(["ip", "link", "add", bridge, "type", "bridge"])
            try exec(["ip", "addr", "add", "\(gatewayAddress)/24", "dev", bridge])
            try exec(["ip", "link", "set", bridge, "up"])
            for _ in 0..<podCount { _ = try addPod() }
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    /// Adds a pod as the CNI bridge plugin does: netns, veth pair, eth0 inside, host end on the
    /// bridge, address and default route. Returns it.
    @discardableResult
    public func addPod(up: Bool = true) throws -> Pod {
        let i = pods.count
        let pod = Pod(namespace: "\(prefix)p\(i)", hostInterface: "veth\(prefix.suffix(6))\(i)",
                      address: "\(subnet).\(10 + i)")
        try Self.ip(["netns", "add", pod.namespace])
        try exec(["ip", "link", "add", pod.hostInterface, "type", "veth", "peer", "name", "eth0", "netns", pod.namespace])
        try exec(["ip", "link", "set", pod.hostInterface, "master", bridge])
        if up { try exec(["ip", "link", "set", pod.hostInterface, "up"]) }
        try exec(in: pod.namespace, ["ip", "link", "set", "lo", "up"])
        try exec(in: pod.namespace, ["ip", "addr", "add", "\(pod.address)/24", "dev", "eth0"])
        try exec(in: pod.namespace, ["ip", "link", "set", "eth0", "up"])
        try exec(in: pod.namespace, ["ip", "route", "add", "default", "via", gatewayAddress])
        pods.append(pod)
        return pod
    }

    /// Deletes a pod's namespace (its veth pair goes with it), as a CNI DEL does.
    public func deletePod(_ pod: Pod) throws {
        try Self.ip(["netns", "delete", pod.namespace])
    }

    /// Runs a command in the node namespace; throws with its output when it fails.
    @discardableResult
    public func exec(_ arguments: [String]) throws -> String {
        try exec(in: namespace, arguments)
    }

    /// Runs a command in namespace `ns`; throws with its output when it fails.
    @discardableResult
    public func exec(in ns: String, _ arguments: [String]) throws -> String {
        try Self.ip(["netns", "exec", ns] + arguments)
    }

    /// Starts a long-running command in namespace `ns` (a server); the caller ends it with
    /// `kill(process.processIdentifier, SIGKILL)`: processes started from a test thread inherit
    /// its blocked signals, so SIGTERM and SIGINT may not reach them.
    public func spawn(in ns: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", ns] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// The bind-mount path of namespace `ns` ("/run/netns/NAME"), as capture sources take it.
    public func namespacePath(_ ns: String) -> String { "/run/netns/\(ns)" }

    /// Deletes the namespaces of test runs that died without removing them ("pt<pid>x…" whose
    /// pid no longer runs: a test that traps never reaches its `defer`), with the veths and
    /// bridges inside them. Namespaces of live runs, this one's included, stay.
    /// - Returns: the names deleted.
    @discardableResult
    public static func removeLeftovers() -> [String] {
        guard let list = try? ip(["netns", "list"]) else { return [] }
        var deleted: [String] = []
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix("pt"), let x = name.firstIndex(of: "x"),
                let pid = Int32(name[name.index(name.startIndex, offsetBy: 2)..<x]), pid > 0
            else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            if (try? ip(["netns", "delete", name])) != nil { deleted.append(name) }
        }
        return deleted
    }

    /// Once per test process, before its first node.
    private static let leftoversRemoved: Void = { removeLeftovers() }()

    /// Deletes every namespace this node created. Idempotent.
    public func remove() {
        guard !removed else { return }
        removed = true
        for pod in pods { _ = try? Self.ip(["netns", "delete", pod.namespace]) }
        _ = try? Self.ip(["netns", "delete", namespace])
    }

    @discardableResult
    static func ip(_ arguments: [String]) throws -> String {
        let r = try runProcess("/usr/sbin/ip", arguments)
        guard r.status == 0 else {
            throw SimulatedNodeError(command: "ip " + arguments.joined(separator: " "), output: r.stdout + r.stderr)
        }
        return r.stdout
    }
}

public struct SimulatedNodeError: Error, CustomStringConvertible {
    public let command: String
    public let output: String
    public var description: String { "\(command) failed: \(output)" }
}
