// Real TCP and UDP traffic between the pods of a SimulatedNode, with every byte count known in
// advance, and a check of captured flow records against it. Used by the live-capture tests
// (AF_PACKET, libpcap): whatever captures, the flows it reports must match what the
// applications sent, plus header arithmetic.
//
// Servers and clients are python3 scripts with plain sockets, started with `ip netns exec` in
// the pods. TCP: the client connects from a fixed port, writes `requestBytes` (the first 8
// bytes say how many bytes it wants back and how many it sends), shuts down its sending side;
// the server reads to the end, and writes `responseBytes` and closes when it got them all (or
// closes without a word); the client reads to the end, closes and checks the count. UDP: from
// a fixed port, one datagram at a time, each answered by a datagram of the size its first 4
// bytes ask for (one byte more when the datagram's length is not what its next 4 say).
// Either way a byte lost or added between the applications fails `runClients()`.
//
// With TCP timestamps off (``prepare()``), every TCP segment has a 20-byte TCP header except
// the SYN and SYN-ACK, which carry 12 bytes of options (MSS 4, NOP NOP SACK-permitted 4, NOP
// window scale 4). So for each direction of a TCP flow:
//     payload = ipBytes − 40 × packets − 12
// whatever the segmentation (GSO on veths lets one captured "packet" carry many MSS) and
// however many pure ACKs there were. For UDP every count is exact: ipBytes = Σ (size + 28).
public import CaptureCore
import Foundation

public struct NodeTraffic: Sendable {
    public enum Transport: String, Sendable { case tcp, udp }

    /// One conversation the scenario creates.
    public struct Flow: Sendable, CustomStringConvertible {
        public let transport: Transport
        public let clientPod: Int
        public let serverPod: Int
        public let client: String
        public let clientPort: UInt16
        public let server: String
        public let serverPort: UInt16
        /// TCP: bytes the client writes. UDP: the client's datagram sizes.
        public let requests: [Int]
        /// TCP: bytes the server writes. UDP: the server's datagram sizes.
        public let responses: [Int]

        public var protocolNumber: UInt8 { transport == .tcp ? 6 : 17 }
        /// Application bytes client → server and back.
        public var clientPayloadBytes: Int { requests.reduce(0, +) }
        public var serverPayloadBytes: Int { responses.reduce(0, +) }

        /// The key a flow tracker gives this conversation (no VLAN, no tunnel).
        public var key: FlowKey {
            FlowKey.normalised(
                source: IPAddress(client)!, sourcePort: clientPort, destination: IPAddress(server)!,
                destinationPort: serverPort, protocolNumber: protocolNumber, vlanID: 0, tunnel: .none, tunnelID: 0
            ).key
        }

        public var description: String {
            "\(transport) \(client):\(clientPort) → \(server):\(serverPort)"
        }

        /// A conversation between pods `client` and `server` of `node`. Requests are at least 8
        /// bytes (the header the scripts exchange).
        public init(_ transport: Transport, on node: SimulatedNode, client: Int, clientPort: UInt16, server: Int,
                    serverPort: UInt16, requests: [Int], responses: [Int]) {
            precondition(requests.allSatisfy { $0 >= 8 } && requests.count == responses.count && !requests.isEmpty)
            precondition(transport == .udp || requests.count == 1, "one TCP request and response per connection")
            self.transport = transport
            clientPod = client
            serverPod = server
            self.client = node.pods[client].address
            self.clientPort = clientPort
            self.server = node.pods[server].address
            self.serverPort = serverPort
            self.requests = requests
            self.responses = responses
        }

        /// The job argument the client script takes.
        var clientJob: String {
            let r = transport == .tcp ? "\(requests[0])" : requests.map(String.init).joined(separator: "/")
            let s = transport == .tcp ? "\(responses[0])" : responses.map(String.init).joined(separator: "/")
            return "\(transport.rawValue),\(server),\(serverPort),\(clientPort),\(r),\(s)"
        }
    }

    /// Bytes of TCP options on the SYN and on the SYN-ACK with timestamps off.
    public static let synOptionBytes = 12

    public let node: SimulatedNode
    public let flows: [Flow]

    public init(node: SimulatedNode, flows: [Flow]) {
        self.node = node
        self.flows = flows
    }

    /// The standard scenario on a node with at least 4 pods: five TCP connections and two UDP
    /// conversations; pods 0 and 1 serve (pod 0 is also a client of pod 1).
    public static func standard(on node: SimulatedNode) -> NodeTraffic {
        precondition(node.pods.count >= 4, "NodeTraffic.standard needs 4 pods")
        func tcp(_ c: Int, _ cport: UInt16, _ s: Int, _ sport: UInt16, _ req: Int, _ resp: Int) -> Flow {
            Flow(.tcp, on: node, client: c, clientPort: cport, server: s, serverPort: sport, requests: [req], responses: [resp])
        }
        func udp(_ c: Int, _ cport: UInt16, _ s: Int, _ sport: UInt16, _ req: [Int], _ resp: [Int]) -> Flow {
            Flow(.udp, on: node, client: c, clientPort: cport, server: s, serverPort: sport, requests: req, responses: resp)
        }
        return NodeTraffic(node: node, flows: [
            tcp(2, 40001, 0, 8080, 10_000, 3_000),
            tcp(3, 40002, 0, 8080, 2_500, 70_000),
            tcp(2, 40003, 1, 9090, 123, 45_678),
            tcp(3, 40004, 1, 9090, 200_000, 17),
            udp(2, 40005, 1, 7070, [100, 200, 300, 1400], [64, 1000, 8, 512]),
            udp(3, 40006, 0, 7070, [50, 60, 70], [1472, 4, 900]),
            tcp(0, 40007, 1, 9090, 5_000, 5_000),
        ])
    }

    /// The flows pod `index` takes part in (what its own eth0 carries).
    public func flows(involvingPod index: Int) -> [Flow] {
        flows.filter { $0.clientPod == index || $0.serverPod == index }
    }

    /// TCP timestamps off (and SACK and window scaling explicitly on) in every pod, so the
    /// header arithmetic above holds. Tail loss probes off: on a busy machine a late ACK makes
    /// the sender re-send its last segment as a probe (and the receiver answer with a D-SACK),
    /// bytes no application sent.
    public func prepare() throws {
        for pod in node.pods {
            try node.exec(in: pod.namespace, ["sysctl", "-q", "-w", "net.ipv4.tcp_timestamps=0",
                                              "net.ipv4.tcp_sack=1", "net.ipv4.tcp_window_scaling=1",
                                              "net.ipv4.tcp_early_retrans=0"])
        }
    }

    /// Starts the servers, runs every client, stops the servers.
    public func run() throws {
        let servers = try startServers()
        defer { servers.stop() }
        try runClients()
    }

    /// Sends `count` UDP datagrams of `size` bytes from `pod` to `address`:`port`, unanswered,
    /// and returns once they are sent.
    public static func sendDatagrams(on node: SimulatedNode, from pod: SimulatedNode.Pod, to address: String,
                                     port: Int, count: Int, size: Int) throws {
        try node.exec(in: pod.namespace, ["python3", "-c", datagramScript, address, "\(port)", "\(count)", "\(size)"])
    }

    /// Servers running in their pods; `stop()` (or deinit) kills them.
    public final class Servers: @unchecked Sendable {
        private var processes: [Process]
        private let directory: TemporaryDirectory
        init(processes: [Process], directory: TemporaryDirectory) {
            self.processes = processes
            self.directory = directory
        }
        public func stop() {
            for p in processes where p.isRunning {
                // SIGKILL: a child spawned from a test thread inherits its blocked signal mask,
                // SIGTERM included, and would never die of terminate().
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
            processes = []
            directory.cleanup()
        }
        deinit { stop() }
    }

    /// Starts every server and waits until each has bound its sockets (so no client meets a
    /// refusal, which would add RST or ICMP flows).
    public func startServers() throws -> Servers {
        var ports: [Int: Set<String>] = [:]
        for flow in flows { ports[flow.serverPod, default: []].insert("\(flow.transport.rawValue):\(flow.serverPort)") }
        let directory = try TemporaryDirectory()
        var processes: [Process] = []
        var readyFiles: [String] = []
        do {
            for (pod, specs) in ports.sorted(by: { $0.key < $1.key }) {
                let ready = directory.path("ready-\(pod)")
                readyFiles.append(ready)
                processes.append(try node.spawn(in: node.pods[pod].namespace,
                                                ["python3", "-c", Self.serverScript, ready] + specs.sorted()))
            }
            let deadline = Date().addingTimeInterval(10)
            while !readyFiles.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
                if Date() > deadline || processes.contains(where: { !$0.isRunning }) {
                    throw SimulatedNodeError(command: "NodeTraffic servers", output: "a server did not start")
                }
                usleep(5_000)
            }
        } catch {
            Servers(processes: processes, directory: directory).stop()
            throw error
        }
        return Servers(processes: processes, directory: directory)
    }

    /// Runs every client (pods in parallel, each pod's conversations one after the other) and
    /// waits for all; throws when a client saw a wrong byte count or failed.
    public func runClients() throws {
        var jobs: [Int: [String]] = [:]
        for flow in flows { jobs[flow.clientPod, default: []].append(flow.clientJob) }
        var running: [(Process, Pipe, Int)] = []
        for (pod, podJobs) in jobs.sorted(by: { $0.key < $1.key }) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "exec", node.pods[pod].namespace, "python3", "-c", Self.clientScript] + podJobs
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            running.append((process, pipe, pod))
        }
        var failures: [String] = []
        for (process, pipe, pod) in running {
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            if process.terminationStatus != 0 {
                failures.append("pod \(pod): \(String(decoding: output, as: UTF8.self))")
            }
        }
        if !failures.isEmpty {
            throw SimulatedNodeError(command: "NodeTraffic clients", output: failures.joined(separator: "\n"))
        }
    }

    // MARK: - Checking captured flows

    /// True for flows that are not the scenario's but appear on their own: IPv6 neighbour
    /// discovery and MLD (ICMPv6, or hop-by-hop before it) of the link-local addresses, and
    /// IGMP reports of the bridge to 224.0.0.0/24.
    public static func isNoise(_ key: FlowKey) -> Bool {
        if !key.a.isIPv4 { return key.protocolNumber == 58 || key.protocolNumber == 0 }
        return key.protocolNumber == 2 && (key.b.ipv4Value >> 8 == 0xE000_00 || key.a.ipv4Value >> 8 == 0xE000_00)
    }

    /// Compares closed flow records (from one tracker, or several trackers' records put
    /// together) with the `expected` flows. Returns one line per problem, empty when every
    /// expected flow appears exactly once with the right client, server, byte and packet counts
    /// (on the wire: IP bytes + `linkHeaderBytes` per packet, 14 for untagged Ethernet), TCP
    /// close and no retransmission, and every other record is noise (``isNoise(_:)``).
    public static func problems(in records: [FlowRecord], expected: [Flow], linkHeaderBytes: UInt64 = 14) -> [String] {
        var problems: [String] = []
        var byKey: [FlowKey: [FlowRecord]] = [:]
        for r in records { byKey[r.key, default: []].append(r) }
        for flow in expected {
            let found = byKey.removeValue(forKey: flow.key) ?? []
            guard found.count == 1, let r = found.first else {
                problems.append("\(flow): \(found.count) records, expected exactly 1")
                continue
            }
            let clientIsA = r.key.a == IPAddress(flow.client)! && r.key.portA == flow.clientPort
            if r.clientSide != (clientIsA ? 0 : 1) {
                problems.append("\(flow): client side \(r.clientSide), expected \(clientIsA ? 0 : 1)")
            }
            let c = r.directions[clientIsA ? 0 : 1], s = r.directions[clientIsA ? 1 : 0]
            switch flow.transport {
            case .tcp:
                let header = UInt64(40), options = UInt64(synOptionBytes)
                let cPayload = Int64(c.ipBytes) - Int64(header * c.packets + options)
                let sPayload = Int64(s.ipBytes) - Int64(header * s.packets + options)
                if cPayload != Int64(flow.clientPayloadBytes) {
                    problems.append("\(flow): client payload \(cPayload) (ip bytes \(c.ipBytes), \(c.packets) packets), expected \(flow.clientPayloadBytes)")
                }
                if sPayload != Int64(flow.serverPayloadBytes) {
                    problems.append("\(flow): server payload \(sPayload) (ip bytes \(s.ipBytes), \(s.packets) packets), expected \(flow.serverPayloadBytes)")
                }
                // At least SYN, data, FIN (or data+FIN) and the last ACK; SYN-ACK, data, FIN.
                if c.packets < 3 || s.packets < 3 {
                    problems.append("\(flow): \(c.packets)/\(s.packets) packets, too few for a whole connection")
                }
                if !r.clientFromHandshake { problems.append("\(flow): client not taken from the handshake") }
                if r.tcpState != .closed || r.endReason != .tcpFinished {
                    problems.append("\(flow): state \(r.tcpState), end \(r.endReason), expected closed by FIN")
                }
                if !c.tcpFlags.contains(.fin) || !s.tcpFlags.contains(.fin) || !c.tcpFlags.contains(.syn) {
                    problems.append("\(flow): flags \(c.tcpFlags) / \(s.tcpFlags), expected SYN and FIN")
                }
                if c.retransmissions != 0 || s.retransmissions != 0 {
                    problems.append("\(flow): \(c.retransmissions)/\(s.retransmissions) retransmissions, expected none")
                }
            case .udp:
                let cBytes = UInt64(flow.requests.reduce(0) { $0 + $1 + 28 })
                let sBytes = UInt64(flow.responses.reduce(0) { $0 + $1 + 28 })
                if c.packets != UInt64(flow.requests.count) || c.ipBytes != cBytes {
                    problems.append("\(flow): client \(c.packets) packets \(c.ipBytes) bytes, expected \(flow.requests.count) and \(cBytes)")
                }
                if s.packets != UInt64(flow.responses.count) || s.ipBytes != sBytes {
                    problems.append("\(flow): server \(s.packets) packets \(s.ipBytes) bytes, expected \(flow.responses.count) and \(sBytes)")
                }
            }
            for (side, d) in [("client", c), ("server", s)] where d.wireBytes != d.ipBytes + linkHeaderBytes * d.packets {
                problems.append("\(flow): \(side) wire bytes \(d.wireBytes), expected \(d.ipBytes) + \(linkHeaderBytes) × \(d.packets)")
            }
        }
        for (key, rs) in byKey where !isNoise(key) {
            problems.append("unexpected flow \(key) (\(rs.count) records, \(rs.map(\.packets)) packets)")
        }
        return problems
    }

    // MARK: - Scripts

    static let serverScript = """
        import socket, struct, sys, threading
        def handle(c):
            head, got = b"", 0
            while True:
                d = c.recv(65536)
                if not d:
                    break
                got += len(d)
                if len(head) < 8:
                    head += d[:8 - len(head)]
            resp, req = struct.unpack("!II", head)
            if got == req:
                c.sendall(b"s" * resp)
            c.close()
        def serve_tcp(s):
            while True:
                c, _ = s.accept()
                threading.Thread(target=handle, args=(c,), daemon=True).start()
        def serve_udp(u):
            while True:
                d, a = u.recvfrom(65536)
                resp, req = struct.unpack("!II", d[:8])
                u.sendto(b"u" * (resp if len(d) == req else resp + 1), a)
        for spec in sys.argv[2:]:
            proto, port = spec.split(":")
            if proto == "tcp":
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", int(port)))
                s.listen(64)
                threading.Thread(target=serve_tcp, args=(s,), daemon=True).start()
            else:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.bind(("0.0.0.0", int(port)))
                threading.Thread(target=serve_udp, args=(u,), daemon=True).start()
        open(sys.argv[1], "w").close()
        threading.Event().wait()
        """

    static let clientScript = """
        import socket, struct, sys
        for job in sys.argv[1:]:
            kind, ip, port, cport, req, resp = job.split(",")
            if kind == "tcp":
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.settimeout(10)
                s.bind(("0.0.0.0", int(cport)))
                s.connect((ip, int(port)))
                s.sendall(struct.pack("!II", int(resp), int(req)) + b"c" * (int(req) - 8))
                s.shutdown(socket.SHUT_WR)
                got = 0
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    got += len(d)
                s.close()
                if got != int(resp):
                    sys.exit("%s: received %d bytes, expected %s" % (job, got, resp))
            else:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.settimeout(10)
                u.bind(("0.0.0.0", int(cport)))
                for q, r in zip(req.split("/"), resp.split("/")):
                    u.sendto(struct.pack("!II", int(r), int(q)) + b"q" * (int(q) - 8), (ip, int(port)))
                    d, _ = u.recvfrom(65536)
                    if len(d) != int(r):
                        sys.exit("%s: datagram of %d bytes, expected %s" % (job, len(d), r))
                u.close()
        """

    static let datagramScript = """
        import socket, sys
        host, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(count):
            s.sendto(b"u" * size, (host, port))
        """
}
