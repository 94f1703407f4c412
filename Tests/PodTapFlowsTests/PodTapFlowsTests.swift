import Foundation
import PodTapTestSupport
import Testing

/// Drives the built `podtap-flows` binary the way a user does.
enum Tool {
    static let repository = Repository.root
    static let shared = Repository.shared

    /// The binary next to the test runner (SwiftPM builds executables into the same folder).
    static let binary: String = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("podtap-flows").path,
            repository.appendingPathComponent(".build/debug/podtap-flows").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }()

    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runProcess(binary, arguments)
    }
}

@Suite("podtap-flows command line")
@MainActor struct PodTapFlowsTests {
    @Test("--help explains usage with examples")
    func help() throws {
        let r = try Tool.run(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("USAGE: podtap-flows"))
        #expect(r.stdout.contains("EXAMPLES:"))
        #expect(r.stdout.contains("--format"))
    }

    @Test("--help fits an 80-column terminal and reflows its paragraphs on a wider one")
    func helpWidth() throws {
        let narrow = try runProcess("/usr/bin/env", ["COLUMNS=80", Tool.binary, "--help"])
        #expect(narrow.status == 0)
        let long = narrow.stdout.split(separator: "\n").filter { $0.count > 80 }
        #expect(long.isEmpty, "lines over 80 columns: \(long)")
        // A paragraph is one line when the terminal is wide enough, not the source's lines.
        let wide = try runProcess("/usr/bin/env", ["COLUMNS=240", Tool.binary, "--help"])
        let first = wide.stdout.split(separator: "\n").first { $0.hasPrefix("Decodes every packet") }
        #expect(first?.contains("VXLAN on 4789") == true, "first paragraph: \(first ?? "missing")")
    }

    @Test("An unreadable file exits non-zero with a message naming it")
    func unreadable() throws {
        let r = try Tool.run(["--format", "jsonl", "/nonexistent/capture.pcap"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/capture.pcap"))
        let scratch = try TemporaryDirectory()
        defer { scratch.cleanup() }
        try Data("this is not a capture file at all".utf8).write(to: URL(fileURLWithPath: scratch.path("text.pcap")))
        let t = try Tool.run(["--format", "jsonl", scratch.path("text.pcap")])
        #expect(t.status == 1)
        #expect(t.stderr.contains("text.pcap"))
    }

    @Test("- reads standard input, and a FIFO or pipe path is streamed: the same flows as the file; an empty input is an error naming it")
    func standardInput() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.cleanup() }
        let demo = try Self.demoCapture(scratch)
        let file = try Tool.run(["--format", "csv", demo])
        #expect(file.status == 0)
        let piped = try runProcess("/bin/sh", ["-c", "cat '\(demo)' | '\(Tool.binary)' --format csv -"])
        #expect(piped.status == 0)
        #expect(piped.stdout == file.stdout)
        #expect(piped.stdout.split(separator: "\n").count > 50)
        // A FIFO or pipe named by path (`<(tcpdump -w -)`, `/dev/stdin`) is streamed the same way.
        let fifo = scratch.path("capture.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let named = try runProcess("/bin/sh", ["-c", "cat '\(demo)' > '\(fifo)' & exec '\(Tool.binary)' --format csv '\(fifo)'"])
        #expect(named.status == 0)
        #expect(named.stdout == file.stdout)
        let devStdin = try runProcess("/bin/sh", ["-c", "cat '\(demo)' | '\(Tool.binary)' --format csv /dev/stdin"])
        #expect(devStdin.stdout == file.stdout)
        let empty = try runProcess("/bin/sh", ["-c", "'\(Tool.binary)' --format csv - < /dev/null"])
        #expect(empty.status == 1)
        #expect(empty.stderr.contains("standard input: byte offset 0: empty file"), "\(empty.stderr)")
    }

    @Test("A capture cut short: flows before the cut are printed, the error names the offset, exit 1")
    func truncated() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.cleanup() }
        let demo = try Self.demoCapture(scratch)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: demo))
        let cut = scratch.path("cut.pcap")
        try bytes.prefix(bytes.count / 2 + 7).write(to: URL(fileURLWithPath: cut))
        let r = try Tool.run(["--format", "jsonl", cut])
        #expect(r.status == 1)
        #expect(r.stderr.contains("cut.pcap"))
        #expect(r.stderr.contains("offset"))
        #expect(r.stdout.split(separator: "\n").count > 10)
    }

    @Test("jsonl: one valid JSON object per flow, oriented client to server, no payload")
    func jsonLines() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.cleanup() }
        let r = try Tool.run(["--format", "jsonl", try Self.demoCapture(scratch)])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count > 50)
        var sawDNS = false, sawTLS = false, sawTunnel = false
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["event"] as? String == "closed")
            #expect(object["client"] is [String: Any] && object["server"] is [String: Any])
            #expect(object["payload"] == nil)
            if let dns = object["dns"] as? [String: Any], dns["query"] is String { sawDNS = true }
            if let tls = object["tls"] as? [String: Any], tls["sni"] is String { sawTLS = true }
            if object["tunnel"] != nil { sawTunnel = true }
        }
        #expect(sawDNS && sawTLS && sawTunnel)
        #expect(r.stderr.contains("packets"))
        #expect(r.stderr.contains("flows"))
    }

    @Test("summary: no flow records on standard output, the same counts as jsonl on standard error")
    func summaryOnly() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.cleanup() }
        let capture = try Self.demoCapture(scratch)
        let summary = try Tool.run(["--format", "summary", capture])
        let jsonl = try Tool.run(["--format", "jsonl", capture])
        #expect(summary.status == 0)
        #expect(summary.stdout.isEmpty)
        func count(_ label: String, _ text: String) -> Int? {
            text.split(separator: "\n").first { $0.hasPrefix(label + " ") }
                .flatMap { Int($0.dropFirst(label.count).split(separator: " ").first ?? "") }
        }
        let flows = try #require(count("flows", summary.stderr))
        #expect(flows == count("flows", jsonl.stderr))
        #expect(flows == jsonl.stdout.split(separator: "\n").count)
        #expect(count("packets", summary.stderr) == count("packets", jsonl.stderr))
    }

    @Test("table: aligned columns, one row per flow, limit honoured")
    func table() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.cleanup() }
        let r = try Tool.run(["--format", "table", "--limit", "10", try Self.demoCapture(scratch)])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("PROTO") == true)
        #expect(lines.count == 12)  // header, 10 rows, the "more flows" note
        // Every row's SERVER and STATE cells start exactly under their headings.
        for heading in ["SERVER", "STATE"] {
            let column = lines[0].range(of: heading)!.lowerBound.utf16Offset(in: lines[0])
            for row in lines[1...10] {
                let cells = Array(row.utf16)
                #expect(cells[column - 1] == 0x20 && cells[column] != 0x20, "\(heading) misaligned: \(row)")
            }
        }
    }

    @Test("genpcap ground truth: every flow's packets and IP bytes per direction are exact (VXLAN on 8472 unwrapped)",
          .enabled(if: FileManager.default.fileExists(atPath: Tool.shared.appendingPathComponent("bench/gen/genpcap.c").path)))
    func groundTruth() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.cleanup() }
        let gen = scratch.path("genpcap")
        let cc = try runProcess("/usr/bin/cc", ["-O2", "-o", gen, Tool.shared.appendingPathComponent("bench/gen/genpcap.c").path, "-lm"])
        #expect(cc.status == 0, "\(cc.stderr)")
        let pcap = scratch.path("k8s.pcap"), truth = scratch.path("truth.csv")
        let g = try runProcess(gen, ["-n", "100000", "-f", "2500", "-s", "1", "-o", pcap, "-t", truth])
        #expect(g.status == 0)
        let r = try Tool.run(["--format", "csv", "--innermost", pcap])
        #expect(r.status == 0)
        let dump = scratch.path("flows.csv")
        try r.stdout.write(toFile: dump, atomically: false, encoding: .utf8)
        let check = try runProcess("/usr/bin/env", ["python3", Tool.shared.appendingPathComponent("bench/tools/check_truth.py").path, truth, dump])
        #expect(check.status == 0, "\(check.stdout)")
        #expect(check.stdout.contains("truth_flows=2500 dump_flows=2500 missing=0 extra=0 count_mismatch=0"))
        // Without --innermost the 244 outer VXLAN flows (node to node) are there as well.
        let all = try Tool.run(["--format", "csv", pcap])
        #expect(all.stdout.split(separator: "\n").count - 1 == 2500 + 244)
    }

    @Test("--vxlan-port: VXLAN moved to another UDP port is unwrapped with it and not without; 8472 stays")
    func vxlanPort() throws {
        let scratch = try TemporaryDirectory()
        defer { scratch.cleanup() }
        let demo = try Self.demoCapture(scratch)
        // The demo with its flannel VXLAN (UDP destination 8472) moved to 4790.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: demo)))
        #expect(Array(bytes[0..<4]) == [0xD4, 0xC3, 0xB2, 0xA1])  // little-endian µs pcap
        func u16(_ at: Int) -> Int { Int(bytes[at]) << 8 | Int(bytes[at + 1]) }
        func u32le(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        var at = 24, moved = 0
        while at + 16 <= bytes.count {
            let captured = u32le(at + 8), frame = at + 16
            at = frame + captured
            var ip = frame + 14
            if u16(frame + 12) == 0x8100 { ip += 4 }
            guard ip + 28 <= at, u16(ip - 2) == 0x0800, bytes[ip + 9] == 17 else { continue }
            let udp = ip + Int(bytes[ip] & 0x0F) * 4
            guard udp + 8 <= at, u16(udp + 2) == 8472 else { continue }
            bytes[udp + 2] = UInt8(4790 >> 8); bytes[udp + 3] = UInt8(4790 & 0xFF)
            bytes[udp + 6] = 0; bytes[udp + 7] = 0  // no checksum, as flannel sends
            moved += 1
        }
        #expect(at == bytes.count)
        #expect(moved > 10)
        let moved4790 = scratch.path("vxlan-4790.pcap")
        try Data(bytes).write(to: URL(fileURLWithPath: moved4790))

        func innermost(_ arguments: [String]) throws -> [Substring] {
            let r = try Tool.run(["--format", "csv", "--innermost"] + arguments)
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout.split(separator: "\n")
        }
        let original = try innermost([demo])
        // Unwrapped on 4790 with the option: the same inner flows, row for row.
        #expect(try innermost(["--vxlan-port", "4790", moved4790]) == original)
        // Without it, exactly the tunnelled inner flows are gone (the rest are unchanged) and
        // the outer UDP flows to 4790 appear.
        let plain = try innermost([moved4790])
        let tunnelled = original.filter { $0.split(separator: ",")[12] == "vxlan" }
        #expect(!tunnelled.isEmpty)
        #expect(original.filter { !plain.contains($0) } == tunnelled)
        #expect(plain.contains { $0.contains(",4790,") })
        #expect(!original.contains { $0.contains(",4790,") })
        // The option replaces 4789 only: flannel's 8472 is still unwrapped.
        #expect(try innermost(["--vxlan-port", "4790", demo]) == original)
    }

    /// The demo capture shipped in the repository, unpacked.
    static func demoCapture(_ scratch: TemporaryDirectory) throws -> String {
        let gz = Tool.repository.appendingPathComponent("Demo/pod-traffic.pcap.gz").path
        let out = scratch.path("demo.pcap")
        let r = try runProcess("/bin/sh", ["-c", "gunzip -c '\(gz)' > '\(out)'"])
        #expect(r.status == 0)
        return out
    }
}
