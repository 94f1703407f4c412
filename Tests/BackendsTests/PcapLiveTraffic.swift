// Real applications in a SimulatedNode's pods (python3 with plain sockets, run with
// `ip netns exec`) and a PcapLiveSource capture loop on its own thread, for the libpcap tests.
// Self-contained on purpose: Tests/TestSupport/NodeTraffic.swift (another branch) covers the
// same ground for every backend; the two can be unified when the branches meet.
import Backends
import CaptureCore
import Foundation
import PodTapTestSupport

/// Runs blocking work (poll loops, processes, waits) on a fresh `Thread` and awaits it, so no
/// thread of the Swift concurrency pool blocks.
func onDedicatedThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// The pod applications: TCP and UDP clients and servers that send exactly what they are told.
enum PodApps {
    static let script = #"""
import socket, sys
mode = sys.argv[1]
def drain(conn):
    got = 0
    while True:
        data = conn.recv(65536)
        if not data:
            return got
        got += len(data)
if mode == "tcp-server":            # port reply_bytes: read to EOF, reply, close
    port, reply = int(sys.argv[2]), int(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(1); s.settimeout(20)
    print("ready", flush=True)
    conn, _ = s.accept(); conn.settimeout(20)
    got = drain(conn)
    conn.sendall(b"s" * reply); conn.close()
    print(got, flush=True)
elif mode == "tcp-client":          # host port send_bytes: send, half-close, read to EOF
    host, port, send = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    conn = socket.create_connection((host, port), timeout=20)
    conn.sendall(b"c" * send); conn.shutdown(socket.SHUT_WR)
    got = drain(conn); conn.close()
    print(got, flush=True)
elif mode == "udp-server":          # port count reply_size: answer each datagram with one
    port, count, size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port)); s.settimeout(20)
    print("ready", flush=True)
    got = 0
    for _ in range(count):
        data, peer = s.recvfrom(65536); got += len(data)
        s.sendto(b"r" * size, peer)
    print(got, flush=True)
elif mode == "udp-client":          # host port count size: request/response in lockstep
    host, port, count, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(20)
    s.connect((host, port))
    got = 0
    for _ in range(count):
        s.send(b"q" * size); got += len(s.recv(65536))
    print(got, flush=True)
elif mode == "udp-send":            # host port count size: fire and forget
    host, port, count, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(count):
        s.sendto(b"u" * size, (host, port))
    print(count, flush=True)
"""#

    /// Makes TCP headers a fixed 20 bytes after the handshake (no timestamps) and pins the
    /// SYN options to MSS + SACK-permitted + window scale: 12 bytes. Tail loss probes are off:
    /// on a busy machine a late ACK makes the sender re-send its last segment as a probe (and
    /// the receiver answer with a D-SACK), bytes no application sent.
    static let synOptionBytes = 12
    static func prepare(_ node: SimulatedNode, _ pod: SimulatedNode.Pod) throws {
        try node.exec(in: pod.namespace, ["sysctl", "-q", "-w", "net.ipv4.tcp_timestamps=0",
                                          "net.ipv4.tcp_sack=1", "net.ipv4.tcp_window_scaling=1",
                                          "net.ipv4.tcp_early_retrans=0"])
    }
}

/// A python app running in a pod; its stdout is read line by line.
final class PodProcess {
    let process = Process()
    let output = Pipe()
    private var buffer = Data()

    init(in namespace: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", namespace, "python3", "-c", PodApps.script] + arguments
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// The next line of output ("" at the end).
    func readLine() -> String {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer = Data(buffer[(newline + 1)...])
                return line
            }
            let more = output.fileHandleForReading.availableData
            if more.isEmpty {
                let rest = String(decoding: buffer, as: UTF8.self)
                buffer = Data()
                return rest
            }
            buffer.append(more)
        }
    }

    /// Waits for the process; its last line as a number (bytes received), -1 if it failed.
    func result() -> Int {
        let line = readLine()
        process.waitUntilExit()
        return process.terminationStatus == 0 ? Int(line.trimmingCharacters(in: .whitespaces)) ?? -1 : -1
    }

    deinit { if process.isRunning { process.terminate() } }
}

/// One conversation between two pods, with exactly known application bytes.
struct Conversation: Sendable, CustomStringConvertible {
    enum Kind: Sendable { case tcp, udp }
    var kind: Kind
    var client: Int
    var server: Int
    var port: UInt16
    /// TCP: bytes the client sends in all. UDP: size of each request datagram.
    var clientBytes: Int
    /// TCP: bytes the server replies. UDP: size of each reply datagram.
    var serverBytes: Int
    /// UDP: datagrams each way.
    var datagrams = 0

    var description: String {
        "\(kind) pod\(client)→pod\(server):\(port) (\(clientBytes)/\(serverBytes)\(kind == .udp ? " ×\(datagrams)" : ""))"
    }

    /// Application bytes each side must have received, as the apps report them.
    var expectedAtServer: Int { kind == .tcp ? clientBytes : clientBytes * datagrams }
    var expectedAtClient: Int { kind == .tcp ? serverBytes : serverBytes * datagrams }
}

/// Runs conversations concurrently (servers first, each reporting ready) and returns what each
/// app received: [(server got, client got)].
func run(_ conversations: [Conversation], on node: SimulatedNode) throws -> [(server: Int, client: Int)] {
    var servers: [PodProcess] = []
    for c in conversations {
        let ns = node.pods[c.server].namespace
        let arguments = c.kind == .tcp
            ? ["tcp-server", "\(c.port)", "\(c.serverBytes)"]
            : ["udp-server", "\(c.port)", "\(c.datagrams)", "\(c.serverBytes)"]
        let server = try PodProcess(in: ns, arguments)
        guard server.readLine() == "ready" else { throw AppNotReady(conversation: c) }
        servers.append(server)
    }
    var clients: [PodProcess] = []
    for c in conversations {
        let host = node.pods[c.server].address
        let arguments = c.kind == .tcp
            ? ["tcp-client", host, "\(c.port)", "\(c.clientBytes)"]
            : ["udp-client", host, "\(c.port)", "\(c.datagrams)", "\(c.clientBytes)"]
        clients.append(try PodProcess(in: node.pods[c.client].namespace, arguments))
    }
    return zip(servers, clients).map { (server: $0.result(), client: $1.result()) }
}

struct AppNotReady: Error, CustomStringConvertible {
    var conversation: Conversation
    var description: String { "the server of \(conversation) did not report ready" }
}

/// A PcapLiveSource polled on its own thread until `stop()`: every packet decoded and fed to a
/// FlowTracker; `accept` classifies packets (for filter tests).
final class LiveCapture: @unchecked Sendable {
    struct Outcome: Sendable {
        var flows: [FlowRecord] = []
        var statistics = CaptureStatistics()
        var packets = 0
        /// Packets `accept` rejected.
        var rejected = 0
        var error: CaptureSourceError?
    }

    private let lock = NSLock()
    private var stopRequested = false
    private var openError: CaptureSourceError?
    private var outcome = Outcome()
    private let opened = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// Opens the source on the capture thread; returns once it is capturing.
    init(_ configuration: PcapLiveConfiguration,
         accept: @escaping @Sendable (borrowing DecodedPacket) -> Bool = { _ in true }) throws {
        Thread { [self] in run(configuration, accept) }.start()
        opened.wait()
        if let openError { throw openError }
    }

    private func run(_ configuration: PcapLiveConfiguration, _ accept: (borrowing DecodedPacket) -> Bool) {
        defer { finished.signal() }
        var source: PcapLiveSource
        do {
            source = try PcapLiveSource(configuration)
        } catch {
            openError = error
            opened.signal()
            return
        }
        opened.signal()
        var tracker = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 1024), sink: CollectingFlowSink())
        let decoder = PacketDecoder()
        var decoded = DecodedPacket()
        var packets = 0, rejected = 0
        while true {
            let stopping = lock.withLock { stopRequested }
            let n: Int
            do {
                n = try source.poll(timeoutMilliseconds: stopping ? 50 : 20) { packet in
                    decoder.decode(packet.bytes, linkType: packet.linkType, into: &decoded)
                    if !accept(decoded) { rejected += 1 }
                    tracker.process(decoded, frame: packet.bytes, timestamp: packet.timestamp,
                                    wireLength: packet.originalLength, interface: packet.interfaceIndex)
                    packets += 1
                }
            } catch {
                outcome.error = error
                break
            }
            // Stop after a quiet 50 ms once asked to: everything sent before stop() is in.
            if stopping && n == 0 { break }
        }
        tracker.finish()
        outcome.flows = tracker.sink.closed
        outcome.packets = packets
        outcome.rejected = rejected
        outcome.statistics = source.statistics
    }

    /// Drains what is still arriving, closes the source and returns what it saw. Idempotent
    /// (call it in a `defer` too, so a failing test does not leave the thread polling).
    func stop() -> Outcome {
        let first = lock.withLock { () -> Bool in
            defer { stopRequested = true }
            return !stopRequested
        }
        if first { finished.wait() }
        return outcome
    }
}

extension FlowRecord {
    /// The client's / server's address.
    var clientAddress: IPAddress { clientSide == 0 ? key.a : key.b }
    var serverAddress: IPAddress { clientSide == 0 ? key.b : key.a }
    var serverPort: UInt16 { clientSide == 0 ? key.portB : key.portA }
}
