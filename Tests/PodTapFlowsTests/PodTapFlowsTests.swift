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
struct PodTapFlowsTests {
    @Test("--help explains usage with examples")
    func help() throws {
        let r = try Tool.run(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("USAGE: podtap-flows"))
        #expect(r.stdout.contains("EXAMPLES:"))
        #expect(r.stdout.contains("--format"))
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

    /// The demo capture shipped in the repository, unpacked.
    static func demoCapture(_ scratch: TemporaryDirectory) throws -> String {
        let gz = Tool.repository.appendingPathComponent("Demo/pod-traffic.pcap.gz").path
        let out = scratch.path("demo.pcap")
        let r = try runProcess("/bin/sh", ["-c", "gunzip -c '\(gz)' > '\(out)'"])
        #expect(r.status == 0)
        return out
    }
}
