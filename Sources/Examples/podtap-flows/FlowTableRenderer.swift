import CaptureCore
import Exporters
import K8sMeta

/// Renders flows as an aligned text table, client → server.
struct FlowTableRenderer {
    let names: NameTable
    let sort: PodTapFlows.SortKey
    let limit: Int
    /// With `--snapshot`: who each end is, after its address.
    var cluster: ClusterNames? = nil

    func render(_ flows: [FlowRecord]) -> String {
        var sorted = flows
        switch sort {
        case .bytes: sorted.sort { $0.wireBytes > $1.wireBytes }
        case .packets: sorted.sort { $0.packets > $1.packets }
        case .start: sorted.sort { $0.firstSeen < $1.firstSeen }
        case .duration:
            sorted.sort { $0.lastSeen.nanoseconds(since: $0.firstSeen) > $1.lastSeen.nanoseconds(since: $1.firstSeen) }
        }
        if limit > 0 && sorted.count > limit { sorted = Array(sorted.prefix(limit)) }
        var header = ["PROTO", "CLIENT", "SERVER", "STATE", "PKTS>", "BYTES>", "<PKTS", "<BYTES", "DURATION", "RTT", "RETX", "INFO"]
        var rightAligned: Set<Int> = [4, 5, 6, 7, 8, 9, 10]
        if cluster != nil {
            header.insert(contentsOf: ["CLIENT IS", "SERVER IS"], at: 3)
            rightAligned = Set(rightAligned.map { $0 + 2 })
        }
        var rows: [[String]] = [header]
        rows.reserveCapacity(sorted.count + 1)
        for f in sorted { rows.append(row(f)) }
        var widths = [Int](repeating: 0, count: header.count)
        for r in rows { for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for r in rows {
            var line = ""
            for (i, cell) in r.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                if i == r.count - 1 { line += cell; break }
                line += rightAligned.contains(i) ? pad + cell : cell + pad
                line += "  "
            }
            while line.last == " " { line.removeLast() }
            out += line + "\n"
        }
        if limit > 0 && flows.count > limit { out += "(\(flows.count - limit) more flows not shown; --limit 0 shows all)\n" }
        return out
    }

    func row(_ f: FlowRecord) -> [String] {
        let k = f.key
        let clientIsA = f.clientSide == 0
        func endpoint(_ ip: IPAddress, _ port: UInt16) -> String {
            let hasPorts = k.protocolNumber == 6 || k.protocolNumber == 17 || k.protocolNumber == 132
            if !hasPorts { return ip.description }
            return ip.isIPv4 ? "\(ip):\(port)" : "[\(ip)]:\(port)"
        }
        let client = clientIsA ? endpoint(k.a, k.portA) : endpoint(k.b, k.portB)
        let server = clientIsA ? endpoint(k.b, k.portB) : endpoint(k.a, k.portA)
        let c = f.client, s = f.server
        var state = k.protocolNumber == 6 ? f.tcpState.description : "-"
        if !f.clientFromHandshake && k.protocolNumber == 6 { state += "?" }
        let duration = Double(f.lastSeen.nanoseconds(since: f.firstSeen)) / 1e9
        let rtt = f.handshakeRTTMicroseconds > 0 ? humanMicroseconds(UInt64(f.handshakeRTTMicroseconds)) : "-"
        let retx = k.protocolNumber == 6 ? String(c.retransmissions + s.retransmissions) : "-"
        var info: [String] = []
        if k.vlanID != 0 { info.append("vlan=\(k.vlanID)") }
        if k.tunnel != .none {
            // An outer address the tracker had no place for is zero: shown as "?".
            func outer(_ a: IPAddress) -> String { a == .zero ? "?" : "\(a)" }
            info.append("\(k.tunnel)=\(k.tunnelID) via \(outer(f.outerSource))>\(outer(f.outerDestination))")
        }
        if f.carriesTunnel { info.append("tunnel-carrier") }
        if let d = f.dns {
            var text = "dns \(names[d.queryName])"
            if d.queryType != 0 { text += " \(dnsTypeName(d.queryType))" }
            if d.responses > 0 { text += " \(dnsRcodeName(d.responseCode)) answers=\(d.answers)" }
            if d.latencyMicroseconds > 0 { text += " \(humanMicroseconds(UInt64(d.latencyMicroseconds)))" }
            info.append(text)
        }
        if let t = f.tls {
            var text = "tls"
            if t.serverName != 0 { text += " sni=\(names[t.serverName])" }
            if t.alpn != 0 { text += " alpn=\(names[t.alpn])" }
            text += " \(FlowJSON.tlsVersionName(t.offeredVersion))"
            info.append(text)
        }
        if f.icmpErrors > 0 { info.append("icmp-errors=\(f.icmpErrors) last=\(f.lastICMPType)/\(f.lastICMPCode)") }
        var names: [String] = []
        if let cluster {
            let ends = cluster.enricher.identities(of: f)
            names = [cluster.cell(ends.client(of: f)), cluster.cell(ends.server(of: f))]
        }
        return [FlowKey.protocolName(k.protocolNumber), client, server] + names + [state,
                String(c.packets), humanBytes(c.wireBytes), String(s.packets), humanBytes(s.wireBytes),
                format(duration, 3) + "s", rtt, retx, info.joined(separator: " ")]
    }
}

func humanBytes(_ b: UInt64) -> String {
    if b < 10_000 { return String(b) }
    let units = ["k", "M", "G", "T"]
    var v = Double(b) / 1000
    var i = 0
    while v >= 1000 && i < units.count - 1 { v /= 1000; i += 1 }
    return format(v, 1) + units[i]
}

func humanMicroseconds(_ us: UInt64) -> String {
    if us < 1000 { return "\(us)µs" }
    if us < 1_000_000 { return format(Double(us) / 1000, 2) + "ms" }
    return format(Double(us) / 1e6, 3) + "s"
}

func dnsTypeName(_ t: UInt16) -> String {
    switch t {
    case 1: "A"
    case 2: "NS"
    case 5: "CNAME"
    case 6: "SOA"
    case 12: "PTR"
    case 15: "MX"
    case 16: "TXT"
    case 28: "AAAA"
    case 33: "SRV"
    case 65: "HTTPS"
    default: "TYPE\(t)"
    }
}

func dnsRcodeName(_ r: UInt8) -> String {
    switch r {
    case 0: "NOERROR"
    case 1: "FORMERR"
    case 2: "SERVFAIL"
    case 3: "NXDOMAIN"
    case 4: "NOTIMP"
    case 5: "REFUSED"
    default: "RCODE\(r)"
    }
}
