import Backends
import CaptureCore
import Foundation
import PodTapTestSupport
import Testing

/// A node with a client pod, a backend pod serving TCP on 8080, and a Service ClusterIP
/// (10.96.0.10:80, or fd00:96::10 port 80 with `ipv6`) that an nftables DNAT rule in the node
/// namespace sends to the backend.
///
/// Both pods hang off the same bridge, as with the CNI bridge plugin. The client's packets to
/// the ClusterIP go to its gateway (the bridge's address), so the node routes them: the nat
/// prerouting chain rewrites the destination and the node forwards them back onto the bridge.
/// The backend's replies are addressed to the client on the same subnet and are *bridged*, not
/// routed; conntrack un-NATs them only because br_netfilter passes bridged packets through the
/// netfilter hooks (`net.bridge.bridge-nf-call-iptables` / `-ip6tables` = 1, per namespace;
/// br_netfilter is built into this kernel: CONFIG_BRIDGE_NETFILTER=y). Kubernetes relies on
/// the same setting.
private final class ServiceFixture {
    let ipv6: Bool
    let node: SimulatedNode
    let directory: TemporaryDirectory
    var server: Process?
    var client: SimulatedNode.Pod { node.pods[0] }
    var backend: SimulatedNode.Pod { node.pods[1] }
    /// The Service's address, and the pods' addresses in the fixture's family.
    let clusterIP: String
    let clientAddressText: String
    let backendAddressText: String

    init(ipv6: Bool = false) throws {
        self.ipv6 = ipv6
        node = try SimulatedNode(podCount: 2)
        directory = try TemporaryDirectory()
        clusterIP = ipv6 ? "fd00:96::10" : "10.96.0.10"
        clientAddressText = ipv6 ? "fd00:10::10" : node.pods[0].address
        backendAddressText = ipv6 ? "fd00:10::11" : node.pods[1].address
        do {
            try node.exec(["sysctl", "-qw", ipv6 ? "net.ipv6.conf.all.forwarding=1" : "net.ipv4.ip_forward=1"])
            let setting = ipv6 ? "net.bridge.bridge-nf-call-ip6tables" : "net.bridge.bridge-nf-call-iptables"
            let bridged = try node.exec(["sysctl", "-n", setting])
            guard bridged.trimmingCharacters(in: .whitespacesAndNewlines) == "1" else {
                throw FixtureError("\(setting) is \(bridged), not 1: bridged replies would not be un-NATed")
            }
            if ipv6 {
                try node.exec(["ip", "-6", "addr", "add", "fd00:10::1/64", "dev", node.bridge, "nodad"])
                for (pod, address) in [(node.pods[0], clientAddressText), (node.pods[1], backendAddressText)] {
                    try node.exec(in: pod.namespace, ["ip", "-6", "addr", "add", "\(address)/64", "dev", "eth0", "nodad"])
                    try node.exec(in: pod.namespace, ["ip", "-6", "route", "add", "default", "via", "fd00:10::1"])
                }
            }
            let rules = directory.path("service.nft")
            let rule = ipv6
                ? "ip6 daddr \(clusterIP) tcp dport 80 dnat to [\(backendAddressText)]:8080"
                : "ip daddr \(clusterIP) tcp dport 80 dnat to \(backendAddressText):8080"
            try """
            table \(ipv6 ? "ip6" : "ip") podtap_service {
                chain prerouting {
                    type nat hook prerouting priority dstnat;
                    \(rule)
                }
            }
            """.write(toFile: rules, atomically: true, encoding: .utf8)
            try node.exec(["nft", "-f", rules])
            // Reads until the client half-closes, then answers with "got N" padded to 2000 bytes.
            server = try node.spawn(in: node.pods[1].namespace, ["python3", "-c", """
                import socket
                s = socket.create_server(("::", 8080), family=socket.AF_INET6, dualstack_ipv6=True, backlog=16)
                while True:
                    c, _ = s.accept(); n = 0
                    while True:
                        d = c.recv(65536)
                        if not d: break
                        n += len(d)
                    c.sendall(("got %d\\n" % n).encode().ljust(2000, b"y")); c.close()
                """])
            try Self.waitUntil(seconds: 5) {
                let listening = try self.node.exec(in: self.node.pods[1].namespace, ["ss", "-Hltn", "sport = :8080"])
                return listening.contains("8080")
            }
        } catch {
            stopServer()
            directory.cleanup()
            node.remove()
            throw error
        }
    }

    /// SIGKILL: children of test threads inherit a signal mask that blocks SIGTERM and SIGINT.
    private func stopServer() {
        guard let server else { return }
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        self.server = nil
    }

    deinit {
        stopServer()
        directory.cleanup()
        node.remove()
    }

    /// Connects from the client pod to the ClusterIP, sends `bytes`, half-closes, reads the
    /// reply to the end. Returns the client's source port and the reply's length.
    func connect(sending bytes: Int = 1000) throws -> (port: UInt16, replyBytes: Int) {
        let out = try node.exec(in: client.namespace, ["python3", "-c", """
            import socket
            s = socket.create_connection(("\(clusterIP)", 80), timeout=3)
            s.sendall(b"x" * \(bytes)); s.shutdown(socket.SHUT_WR)
            r = b""
            while True:
                d = s.recv(65536)
                if not d: break
                r += d
            print(s.getsockname()[1], len(r), r.split(b"\\n")[0].decode())
            """])
        let fields = out.split(separator: " ")
        guard fields.count >= 4, let port = UInt16(fields[0]), let length = Int(fields[1]),
              fields[3].hasPrefix("\(bytes)")
        else { throw FixtureError("client printed: \(out)") }
        return (port, length)
    }

    var clientAddress: IPAddress { IPAddress(clientAddressText)! }
    var backendAddress: IPAddress { IPAddress(backendAddressText)! }
    var serviceAddress: IPAddress { IPAddress(clusterIP)! }

    /// The key a flow tracker gives the client → ClusterIP flow.
    func serviceSideKey(port: UInt16) -> FlowKey {
        FlowKey.normalised(source: clientAddress, sourcePort: port, destination: serviceAddress, destinationPort: 80,
                           protocolNumber: 6, vlanID: 0, tunnel: .none, tunnelID: 0).key
    }

    /// The key a flow tracker gives the client → backend flow (after DNAT).
    func backendSideKey(port: UInt16) -> FlowKey {
        FlowKey.normalised(source: clientAddress, sourcePort: port, destination: backendAddress, destinationPort: 8080,
                           protocolNumber: 6, vlanID: 0, tunnel: .none, tunnelID: 0).key
    }

    /// Opens a conntrack table in the node's namespace, on a thread of its own (setns is per
    /// thread; a Swift concurrency pool thread must never change namespace).
    func openTable(_ configure: (inout ConntrackConfiguration) -> Void = { _ in }) throws -> ConntrackTable {
        var configuration = ConntrackConfiguration(networkNamespacePath: node.namespacePath(node.namespace))
        configure(&configuration)
        let c = configuration
        return try onDedicatedThread { () throws -> ConntrackTable in try ConntrackTable(configuration: c) }
    }

    /// Deletes the client's conntrack entry for source port `port` (a DESTROY event).
    func deleteEntry(port: UInt16) throws {
        try node.exec(["conntrack", "-D", "-f", ipv6 ? "ipv6" : "ipv4", "-p", "tcp", "--orig-src", clientAddressText,
                       "--sport", "\(port)"])
    }

    /// Polls `condition` every 20 ms until it holds; throws after `seconds`.
    static func waitUntil(seconds: Double, line: Int = #line, _ condition: () throws -> Bool) throws {
        guard try eventually(within: seconds, condition) else {
            throw FixtureError("condition at line \(line) not met within \(seconds) s")
        }
    }
}

private struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// tcpdump writing one interface of the node namespace to a file.
private final class Tcpdump {
    let process = Process()
    let path: String

    init(node: SimulatedNode, interface: String, directory: TemporaryDirectory) throws {
        path = directory.path("\(interface).pcap")
        let log = directory.path("\(interface).log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", node.namespace, "tcpdump", "-i", interface, "-n", "-U", "--immediate-mode", "-w", path, "tcp"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        try ServiceFixture.waitUntil(seconds: 5) {
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("listening on") ?? false
        }
    }

    /// Stops tcpdump and returns the path. SIGKILL, because SIGINT and SIGTERM are blocked in
    /// processes spawned from test threads; `-U` has already written every packet.
    func finish() -> String {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return path
    }

    deinit { _ = finish() }
}

/// Every flow of a capture file, closed at its end, each record stamped with `interface`.
private func flowRecords(ofFile path: String, interface: Int) throws -> [FlowRecord] {
    var tracker = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 256), sink: CollectingFlowSink())
    let decoder = PacketDecoder()
    var packet = DecodedPacket()
    var reader = try CaptureFileReader(path: path)
    while try reader.advance() {
        let record = reader.packet
        decoder.decode(record.bytes, linkType: record.linkType, into: &packet)
        tracker.process(packet, frame: record.bytes, timestamp: record.timestamp,
                        wireLength: record.originalLength, interface: interface)
    }
    tracker.finish()
    return tracker.sink.closed
}

@Suite("Conntrack (netlink, real kernel)")
@MainActor struct ConntrackTests {
    @Test("A ClusterIP connection's backend is found from the initial dump and from NEW events, on either side")
    func serviceToBackend() throws {
        let fixture = try ServiceFixture()
        let before = try fixture.connect()
        #expect(before.replyBytes == 2000)

        let table = try fixture.openTable()
        defer { table.stop() }
        let dumped = try #require(table.lookup(fixture.serviceSideKey(port: before.port)))
        #expect(dumped.side == .service)
        #expect(dumped.translation.client == fixture.clientAddress && dumped.translation.clientPort == before.port)
        #expect(dumped.translation.service == fixture.serviceAddress && dumped.translation.servicePort == 80)
        #expect(dumped.translation.backend == fixture.backendAddress && dumped.translation.backendPort == 8080)
        #expect(dumped.translation.isDestinationNAT && !dumped.translation.isSourceNAT)
        #expect(dumped.translation.protocolNumber == 6 && dumped.translation.conntrackID != 0)
        let fromBackend = try #require(table.lookup(fixture.backendSideKey(port: before.port)))
        #expect(fromBackend.side == .backend && fromBackend.translation == dumped.translation)
        let afterDump = table.statistics
        #expect(afterDump.dumps == 1 && afterDump.dumpedEntries >= 1 && afterDump.newEvents == 0)

        // A connection made while the table follows events.
        let after = try fixture.connect()
        #expect(after.replyBytes == 2000 && after.port != before.port)
        try ServiceFixture.waitUntil(seconds: 3) { table.lookup(fixture.serviceSideKey(port: after.port)) != nil }
        let followed = try #require(table.lookup(fixture.serviceSideKey(port: after.port)))
        #expect(followed.translation.backend == fixture.backendAddress && followed.translation.backendPort == 8080)
        #expect(followed.translation.service == fixture.serviceAddress && followed.translation.servicePort == 80)
        #expect(table.lookup(fixture.backendSideKey(port: after.port))?.side == .backend)
        let stats = table.statistics
        #expect(stats.newEvents >= 1 && stats.updateEvents >= 1)
        #expect(stats.translations == 2 && stats.openTranslations == 2 && stats.droppedWhenFull == 0)
        #expect(stats.overruns == 0 && stats.errors == 0)
        // An unrelated key is not a translation.
        #expect(table.lookup(FlowKey(a: fixture.clientAddress, portA: 1, b: fixture.backendAddress, portB: 8080,
                                     protocolNumber: 6)) == nil)
        print("conntrack: \(followed.translation); \(stats)")
    }

    @Test("IPv6: the ClusterIP's backend is found from the dump and from events")
    func serviceToBackendIPv6() throws {
        let fixture = try ServiceFixture(ipv6: true)
        let before = try fixture.connect()
        let table = try fixture.openTable()
        defer { table.stop() }
        let after = try fixture.connect()
        #expect(before.replyBytes == 2000 && after.replyBytes == 2000)
        try ServiceFixture.waitUntil(seconds: 3) { table.lookup(fixture.serviceSideKey(port: after.port)) != nil }
        for port in [before.port, after.port] {
            let match = try #require(table.lookup(fixture.serviceSideKey(port: port)))
            #expect(match.side == .service && !match.translation.client.isIPv4)
            #expect(match.translation.client == fixture.clientAddress && match.translation.clientPort == port)
            #expect(match.translation.service == fixture.serviceAddress && match.translation.servicePort == 80)
            #expect(match.translation.backend == fixture.backendAddress && match.translation.backendPort == 8080)
            #expect(table.lookup(fixture.backendSideKey(port: port))?.side == .backend)
        }
        print("conntrack IPv6: \(table.lookup(fixture.serviceSideKey(port: after.port))!.translation)")
    }

    @Test("Flow records from the client's and the backend's veth join into one connection, counted once")
    func joinBothSides() throws {
        let fixture = try ServiceFixture()
        let table = try fixture.openTable()
        defer { table.stop() }
        let clientCapture = try Tcpdump(node: fixture.node, interface: fixture.client.hostInterface,
                                        directory: fixture.directory)
        let backendCapture = try Tcpdump(node: fixture.node, interface: fixture.backend.hostInterface,
                                         directory: fixture.directory)
        let connection = try fixture.connect(sending: 1000)
        #expect(connection.replyBytes == 2000)
        try ServiceFixture.waitUntil(seconds: 3) { table.lookup(fixture.serviceSideKey(port: connection.port)) != nil }
        usleep(100_000)  // the last ACKs
        let clientRecords = try flowRecords(ofFile: clientCapture.finish(), interface: 1)
        let backendRecords = try flowRecords(ofFile: backendCapture.finish(), interface: 2)

        // What each veth saw: the client's veth the ClusterIP, the backend's veth the backend.
        let serviceSide = try #require(clientRecords.first { $0.key == fixture.serviceSideKey(port: connection.port) })
        let backendSide = try #require(backendRecords.first { $0.key == fixture.backendSideKey(port: connection.port) })
        #expect(!clientRecords.contains { $0.key == fixture.backendSideKey(port: connection.port) })
        #expect(!backendRecords.contains { $0.key == fixture.serviceSideKey(port: connection.port) })
        #expect(serviceSide.tcpState == .closed && backendSide.tcpState == .closed)
        #expect(serviceSide.client.ipBytes >= 1000 && serviceSide.server.ipBytes >= 2000)

        let joined = table.join(clientRecords + backendRecords)
        let matching = joined.filter { $0.client.port == connection.port || $0.flow.key.portA == connection.port
            || $0.flow.key.portB == connection.port }
        #expect(matching.count == 1)
        let one = try #require(matching.first)
        #expect(one.recordCount == 2)
        #expect(one.client.address == fixture.clientAddress && one.client.port == connection.port)
        #expect(one.service?.address == fixture.serviceAddress && one.service?.port == 80)
        #expect(one.server.address == fixture.backendAddress && one.server.port == 8080)
        #expect(one.serviceSide?.interface == 1 && one.backendSide?.interface == 2)
        // Counts are the client side's, taken once, not the sum of both veths.
        #expect(one.flow.key == serviceSide.key && one.flow.interface == 1)
        #expect(one.flow.packets == serviceSide.packets && one.flow.ipBytes == serviceSide.ipBytes)
        #expect(one.flow.packets < serviceSide.packets + backendSide.packets)
        // Nothing else in either capture belongs to a translation (no second copy of the connection).
        #expect(joined.filter { $0.translation != nil }.count == 1)
        print("joined: \(one.translation!) packets \(one.flow.packets) ipBytes \(one.flow.ipBytes) "
              + "(client veth \(serviceSide.packets)/\(serviceSide.ipBytes), backend veth \(backendSide.packets)/\(backendSide.ipBytes))")
    }

    @Test("DESTROY events close the translation; a re-dump closes entries that die without one")
    func destroy() throws {
        let fixture = try ServiceFixture()
        // Made while events are off in this namespace: the entry gets no event extension and
        // will never send a DESTROY event (what happens to entries created before anyone
        // listened, with the default nf_conntrack_events = 2, when they time out).
        try fixture.node.exec(["sysctl", "-qw", "net.netfilter.nf_conntrack_events=0"])
        let silent = try fixture.connect()
        try fixture.node.exec(["sysctl", "-qw", "net.netfilter.nf_conntrack_events=2"])
        let table = try fixture.openTable { $0.resynchronizeIntervalSeconds = 1 }
        defer { table.stop() }
        let shortLived = try fixture.openTable { $0.closedRetentionSeconds = 0 }
        defer { shortLived.stop() }
        let followed = try fixture.connect()
        try ServiceFixture.waitUntil(seconds: 3) {
            table.lookup(fixture.serviceSideKey(port: followed.port)) != nil
                && shortLived.lookup(fixture.serviceSideKey(port: followed.port)) != nil
        }
        #expect(table.lookup(fixture.serviceSideKey(port: silent.port))?.translation.isClosed == false)
        #expect(table.statistics.openTranslations == 2)

        try fixture.deleteEntry(port: followed.port)
        try ServiceFixture.waitUntil(seconds: 3) {
            table.lookup(fixture.serviceSideKey(port: followed.port))?.translation.isClosed == true
        }
        let closed = try #require(table.lookup(fixture.backendSideKey(port: followed.port)))
        #expect(closed.translation.closedAt != nil && closed.translation.backend == fixture.backendAddress)
        #expect(table.statistics.destroyEvents >= 1)
        // With no retention the translation is gone at the next prune (about a second).
        try ServiceFixture.waitUntil(seconds: 3) { shortLived.lookup(fixture.serviceSideKey(port: followed.port)) == nil }
        #expect(shortLived.statistics.destroyEvents >= 1 && shortLived.statistics.translations == 1)

        // The silent entry's deletion sends no event; the next re-dump (every second) notices.
        let destroysBefore = table.statistics.destroyEvents
        try fixture.deleteEntry(port: silent.port)
        try ServiceFixture.waitUntil(seconds: 4) {
            table.lookup(fixture.serviceSideKey(port: silent.port))?.translation.isClosed == true
        }
        let stats = table.statistics
        #expect(stats.destroyEvents == destroysBefore && stats.dumps >= 2)
        #expect(stats.openTranslations == 0 && stats.translations == 2)
        print("destroy: \(stats)")
    }

    @Test("A full table keeps what fits, counts each dropped connection once, and lets closed ones make room")
    func bounded() throws {
        let fixture = try ServiceFixture()
        // Every entry gets the event extension, so every deletion sends DESTROY (with the
        // default 2, entries older than the first listener die silently).
        try fixture.node.exec(["sysctl", "-qw", "net.netfilter.nf_conntrack_events=1"])
        let first = try fixture.connect(), second = try fixture.connect()
        let table = try fixture.openTable { $0.capacity = 1 }
        defer { table.stop() }
        var stats = table.statistics
        #expect(stats.translations == 1 && stats.droppedWhenFull == 1)
        let kept = table.lookup(fixture.serviceSideKey(port: first.port)) != nil ? first.port : second.port
        #expect(table.lookup(fixture.serviceSideKey(port: kept == first.port ? second.port : first.port)) == nil)

        // Full of open translations: a new connection is counted once (NEW), not at its UPDATEs.
        let third = try fixture.connect()
        try ServiceFixture.waitUntil(seconds: 3) { table.statistics.updateEvents >= 5 }
        #expect(table.lookup(fixture.serviceSideKey(port: third.port)) == nil)
        #expect(table.statistics.droppedWhenFull == 2)

        // Once the kept one is closed, the next connection takes its place.
        try fixture.deleteEntry(port: kept)
        try ServiceFixture.waitUntil(seconds: 3) { table.statistics.openTranslations == 0 }
        let fourth = try fixture.connect()
        try ServiceFixture.waitUntil(seconds: 3) { table.lookup(fixture.serviceSideKey(port: fourth.port)) != nil }
        stats = table.statistics
        #expect(stats.translations == 1 && stats.openTranslations == 1 && stats.droppedWhenFull == 2)
        #expect(table.lookup(fixture.serviceSideKey(port: kept)) == nil)
        print("bounded: \(stats)")
    }

    @Test("Without CAP_NET_ADMIN opening fails with permissionDenied and says which capability")
    func withoutNetAdmin() throws {
        // Capabilities are per thread: drop CAP_NET_ADMIN (12) from this thread's effective set
        // only, with the raw capset(2) glibc exports, then open the table there. The thread ends
        // afterwards; no other thread of the test process is affected.
        let error = #expect(throws: CaptureSourceError.self) {
            _ = try onDedicatedThread { () throws -> ConntrackTable in
                typealias CapCall = @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int32
                guard let get = dlsym(nil, "capget"), let set = dlsym(nil, "capset") else {
                    throw FixtureError("capget/capset not found")
                }
                var header: [UInt32] = [0x2008_0522, 0]  // _LINUX_CAPABILITY_VERSION_3, this thread
                var data = [UInt32](repeating: 0, count: 6)  // 2 × (effective, permitted, inheritable)
                guard unsafeBitCast(get, to: CapCall.self)(&header, &data) == 0 else { throw FixtureError("capget") }
                data[0] &= ~(UInt32(1) << 12)
                guard unsafeBitCast(set, to: CapCall.self)(&header, &data) == 0 else { throw FixtureError("capset") }
                return try ConntrackTable()
            }
        }
        #expect(error?.code == .permissionDenied && error?.errno == EPERM)
        #expect(error?.message.contains("CAP_NET_ADMIN") == true)
        print("without CAP_NET_ADMIN: \(error.map { "\($0)" } ?? "no error")")
    }

    @Test("Opening a namespace that does not exist throws an error a user can act on")
    func missingNamespace() throws {
        let error = #expect(throws: CaptureSourceError.self) {
            _ = try onDedicatedThread {
                try ConntrackTable(configuration: ConntrackConfiguration(networkNamespacePath: "/run/netns/podtap-none"))
            }
        }
        #expect(error?.code == .namespace && error?.errno == ENOENT)
        #expect(error?.message.contains("ip netns list") == true)
    }
}
