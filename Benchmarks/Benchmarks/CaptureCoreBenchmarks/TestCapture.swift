import CaptureCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The in-memory capture every per-packet benchmark replays: a classic pcap holding a whole
/// number of thousands of packets, so that each iteration (1,000 packets) starts and ends on
/// a packet boundary and a pass over the capture is a whole number of iterations.
///
/// Where it comes from, first match wins:
/// 1. `PODTAP_BENCH_PCAP=FILE`: that capture (Ethernet, pcap or pcapng).
/// 2. genpcap (bench/gen/genpcap.c): `$PODTAP_GENPCAP`, `${BENCH_BIN:-/tmp/bench/bin}/genpcap`,
///    else compiled with `cc` from `$PODTAP_SHARED/bench/gen/genpcap.c`
///    or `<repo>/../shared/bench/gen/genpcap.c`; run as
///    `genpcap -n $PODTAP_BENCH_PACKETS -f $PODTAP_BENCH_FLOWS -s 1` (defaults 100000 / 2500:
///    byte-identical to bench's k8s-100k.pcap).
/// 3. A synthetic TCP/UDP capture built here in Swift (no DNS, TLS, VLAN or VXLAN); also with
///    `PODTAP_BENCH_SYNTHETIC=1`.
final class TestCapture: @unchecked Sendable {
    static let packetsPerIteration = 1000
    static let shared = TestCapture()

    /// Classic pcap bytes: header + `packets` records.
    let pcap: [UInt8]
    let packets: Int
    /// Nanoseconds from the first to the last packet.
    let span: UInt64
    let origin: String

    private init() {
        let (bytes, origin) = Self.load()
        // Keep the first whole thousand of packets (pcapng input is kept whole: it is only
        // replayed, never cut).
        var count = 0
        var end = 0
        var first = UInt64.max
        var last: UInt64 = 0
        var cutEnd = 0
        var cutCount = 0
        do {
            var reader = try CaptureFileReader(bytes: bytes, name: origin)
            while try reader.advance() {
                let t = reader.packet.timestamp.nanoseconds
                first = min(first, t)
                last = max(last, t)
                count += 1
                end = reader.bytesRead
                if count % Self.packetsPerIteration == 0 { (cutEnd, cutCount) = (end, count) }
            }
            if case .pcapng = reader.format { (cutEnd, cutCount) = (end, count) }
        } catch {
            fatalError("benchmark capture \(origin): \(error)")
        }
        precondition(cutCount >= Self.packetsPerIteration, "benchmark capture \(origin) has fewer than 1000 packets")
        pcap = Array(bytes[0..<cutEnd])
        packets = cutCount
        span = last &- first
        self.origin = "\(origin), \(cutCount) packets used"
        writeToStandardError("CaptureCoreBenchmarks: capture \(self.origin)\n")
    }

    func makeReader() -> CaptureFileReader {
        do {
            return try CaptureFileReader(bytes: pcap, name: "benchmark capture")
        } catch {
            fatalError("benchmark capture: \(error)")
        }
    }

    // MARK: - Sources

    private static func load() -> ([UInt8], String) {
        let env = ProcessInfo.processInfo.environment
        if let path = env["PODTAP_BENCH_PCAP"], !path.isEmpty {
            guard let data = FileManager.default.contents(atPath: path) else { fatalError("cannot read \(path)") }
            return ([UInt8](data), path)
        }
        let packets = Int(env["PODTAP_BENCH_PACKETS"] ?? "") ?? 100_000
        let flows = Int(env["PODTAP_BENCH_FLOWS"] ?? "") ?? 2500
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("podtap-bench-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        if env["PODTAP_BENCH_SYNTHETIC"] == nil, let genpcap = findGenpcap(scratch: dir.path) {
            let out = dir.appendingPathComponent("capture.pcap").path
            if run(genpcap, ["-n", "\(packets)", "-f", "\(flows)", "-s", "1", "-o", out]),
                let data = FileManager.default.contents(atPath: out)
            {
                return ([UInt8](data), "genpcap -n \(packets) -f \(flows) -s 1")
            }
            writeToStandardError("CaptureCoreBenchmarks: \(genpcap) failed; using the synthetic capture\n")
        }
        return (SyntheticCapture.make(packets: packets, flows: flows),
                "synthetic TCP/UDP capture, \(packets) packets, \(flows) flows")
    }

    private static func findGenpcap(scratch: String) -> String? {
        let env = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let p = env["PODTAP_GENPCAP"] { candidates.append(p) }
        candidates.append((env["BENCH_BIN"] ?? "/tmp/bench/bin") + "/genpcap")
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            return found
        }
        // <repo>/Benchmarks/Benchmarks/CaptureCoreBenchmarks/TestCapture.swift → <repo>/../shared
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        var sources: [String] = []
        if let shared = env["PODTAP_SHARED"] { sources.append(shared + "/bench/gen/genpcap.c") }
        sources.append(repo.deletingLastPathComponent().appendingPathComponent("shared/bench/gen/genpcap.c").path)
        guard let source = sources.first(where: { FileManager.default.fileExists(atPath: $0) }) else { return nil }
        let binary = scratch + "/genpcap"
        return run("/usr/bin/env", ["cc", "-O2", "-o", binary, source, "-lm"]) ? binary : nil
    }

    private static func run(_ executable: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        } catch {
            return false
        }
    }
}

func writeToStandardError(_ s: String) {
    FileHandle.standardError.write(s.data(using: .utf8)!)
}

/// Resident set size of this process, from /proc/self/statm.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// A deterministic Ethernet/IPv4 capture for machines without genpcap: TCP connections
/// (handshake, a request, a three-segment response, FIN close) and UDP request/response
/// pairs, 64 connections interleaved at a time, 5 µs apart.
enum SyntheticCapture {
    static func make(packets: Int, flows: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(packets * 700 + 24)
        func le32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func le16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        le32(0xA1B2_C3D4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(1)

        var time: UInt64 = 1_700_000_000_000_000  // µs
        var written = 0
        var flow = 0
        while written < packets {
            let batch = 64
            // Steps of one TCP connection: (from client?, flags, payload bytes).
            let tcp: [(Bool, UInt8, Int)] = [
                (true, 0x02, 0), (false, 0x12, 0), (true, 0x10, 0), (true, 0x18, 180),
                (false, 0x10, 1400), (false, 0x10, 1400), (true, 0x10, 0), (false, 0x18, 600),
                (true, 0x11, 0), (false, 0x11, 0), (true, 0x10, 0),
            ]
            for step in 0..<tcp.count {
                for f in flow..<(flow + batch) where written < packets {
                    let id = f % max(flows, 1)
                    let client = (UInt32(10) << 24) | (244 << 16) | (UInt32(id % 16) << 8) | UInt32(2 + id / 16 % 250)
                    let server = (UInt32(10) << 24) | (96 << 16) | UInt32(id % 997 + 1)
                    let clientPort = UInt16(32768 + id % 28000)
                    if id % 5 == 4 {  // UDP request/response: two packets
                        guard step < 2 else { continue }
                        let fromClient = step == 0
                        frame(&out, time: time, src: fromClient ? client : server, dst: fromClient ? server : client,
                              sport: fromClient ? clientPort : 5000, dport: fromClient ? 5000 : clientPort,
                              proto: 17, flags: 0, payload: fromClient ? 60 : 240, seq: 0)
                    } else {
                        let (fromClient, flags, payload) = tcp[step]
                        let port: UInt16 = [80, 443, 8080, 6379][id % 4]
                        frame(&out, time: time, src: fromClient ? client : server, dst: fromClient ? server : client,
                              sport: fromClient ? clientPort : port, dport: fromClient ? port : clientPort,
                              proto: 6, flags: flags, payload: payload, seq: UInt32(step) &* 1400)
                    }
                    written += 1
                    time += 5
                }
            }
            flow += batch
        }
        return out
    }

    private static func frame(
        _ out: inout [UInt8], time: UInt64, src: UInt32, dst: UInt32, sport: UInt16, dport: UInt16,
        proto: UInt8, flags: UInt8, payload: Int, seq: UInt32
    ) {
        let l4 = proto == 6 ? 20 : 8
        let ipLength = 20 + l4 + payload
        let length = 14 + ipLength
        func le32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func be16(_ v: UInt16) { withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) } }
        func be32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) } }
        le32(UInt32(time / 1_000_000)); le32(UInt32(time % 1_000_000)); le32(UInt32(length)); le32(UInt32(length))
        out += [0x0A, 0x58, 0, 0, 0, 1, 0x0A, 0x58, 0, 0, 0, 2]; be16(0x0800)
        out += [0x45, 0]; be16(UInt16(ipLength)); be16(0); be16(0x4000); out += [64, proto]; be16(0)
        be32(src); be32(dst)
        be16(sport); be16(dport)
        if proto == 6 {
            be32(seq); be32(0); out += [0x50, flags]; be16(64240); be16(0); be16(0)
        } else {
            be16(UInt16(8 + payload)); be16(0)
        }
        out += repeatElement(0x61, count: payload)
    }
}
