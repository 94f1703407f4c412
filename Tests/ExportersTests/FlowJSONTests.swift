import CaptureCore
import Exporters
import Foundation
import Testing

@Suite("JSON-lines flow export")
struct FlowJSONTests {
    static func record() -> FlowRecord {
        let (key, _) = FlowKey.normalised(
            source: IPAddress("10.244.1.5")!, sourcePort: 43122, destination: IPAddress("10.96.0.10")!, destinationPort: 53,
            protocolNumber: 17, vlanID: 100, tunnel: .vxlan, tunnelID: 1)
        var r = FlowRecord(key: key)
        let clientIndex = key.a == IPAddress("10.244.1.5")! ? 0 : 1
        r.clientSide = UInt8(clientIndex)
        r.directions[clientIndex].packets = 2
        r.directions[clientIndex].ipBytes = 128
        r.directions[clientIndex].wireBytes = 12_345_678_901
        r.directions[clientIndex].firstSeen = Timestamp(nanoseconds: 1_795_219_200_000_000_007)
        r.directions[clientIndex].lastSeen = Timestamp(nanoseconds: 1_795_219_200_500_000_000)
        r.directions[1 - clientIndex].packets = 1
        r.directions[1 - clientIndex].firstSeen = Timestamp(nanoseconds: 1_795_219_200_100_000_000)
        r.directions[1 - clientIndex].lastSeen = Timestamp(nanoseconds: 1_795_219_200_100_000_000)
        r.outerSource = IPAddress("fd00::1")!
        r.outerDestination = IPAddress("10.0.0.12")!
        r.endReason = .idleTimeout
        return r
    }

    @Test("A record renders as one JSON object, oriented client to server, numbers exact")
    func record() throws {
        let names = NameTable()
        var r = Self.record()
        var dns = DNSFlowInfo()
        dns.queryName = names.intern(hash: 42) { "we\"ird\\name\n.svc" }
        dns.queries = 1
        dns.responses = 1
        dns.responseCode = 3
        dns.latencyMicroseconds = 1500
        r.dns = dns
        var out = JSONBuffer()
        FlowJSON.append(.closed, r, names: names, to: &out)
        #expect(out.bytes.last == UInt8(ascii: "\n"))
        #expect(out.bytes.dropLast().contains(UInt8(ascii: "\n")) == false, "one line")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(out.bytes)) as? [String: Any])
        let client = try #require(object["client"] as? [String: Any])
        #expect(client["ip"] as? String == "10.244.1.5" && client["port"] as? Int == 43122)
        #expect((object["server"] as? [String: Any])?["port"] as? Int == 53)
        #expect(object["vlan"] as? Int == 100)
        let tunnel = try #require(object["tunnel"] as? [String: Any])
        #expect(tunnel["outer_src"] as? String == "fd00::1" && tunnel["outer_dst"] as? String == "10.0.0.12")
        // An outer address the tracker did not keep (zero) is left out, not written as "::".
        var unkept = r
        unkept.outerSource = .zero
        var line = JSONBuffer()
        FlowJSON.append(.closed, unkept, names: names, to: &line)
        let unkeptObject = try #require(try JSONSerialization.jsonObject(with: Data(line.bytes)) as? [String: Any])
        let unkeptTunnel = try #require(unkeptObject["tunnel"] as? [String: Any])
        #expect(unkeptTunnel["outer_src"] == nil && unkeptTunnel["outer_dst"] as? String == "10.0.0.12")
        #expect(unkeptTunnel["kind"] as? String == "vxlan")
        let c2s = try #require(object["client_to_server"] as? [String: Any])
        #expect((c2s["wire_bytes"] as? NSNumber)?.uint64Value == 12_345_678_901)
        #expect(object["end_reason"] as? String == "idle")
        #expect((object["dns"] as? [String: Any])?["query"] as? String == "we\"ird\\name\n.svc")
        #expect((object["dns"] as? [String: Any])?["latency_us"] as? Int == 1500)
        // Nanosecond timestamps keep all nine digits.
        let text = String(decoding: out.bytes, as: UTF8.self)
        #expect(text.contains("\"first_seen\":1795219200.000000007"))
    }

    @Test("JSONLinesFlowWriter writes closed records (and updates when asked) to a file descriptor")
    func writer() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("podtap-jsonl-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: url.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: url) }
        let handle = try FileHandle(forWritingTo: url)
        var writer = JSONLinesFlowWriter(fileDescriptor: handle.fileDescriptor)
        for _ in 0..<1000 {
            writer.receive(.opened, Self.record())
            writer.receive(.updated, Self.record())
            writer.receive(.closed, Self.record())
        }
        writer.flush()
        try handle.close()
        #expect(writer.written == 1000 && writer.writeError == nil)
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1000)
        for line in lines.prefix(3) {
            #expect((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["event"] as? String == "closed")
        }
    }

    @Test("A write error is reported and later events are counted as lost, not dropped silently")
    func writeError() {
        var writer = JSONLinesFlowWriter(fileDescriptor: -1)
        writer.receive(.closed, Self.record())
        writer.flush()
        #expect(writer.writeError == EBADF)
        writer.receive(.closed, Self.record())
        #expect(writer.lost == 1)
    }
}
