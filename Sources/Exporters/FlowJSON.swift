public import CaptureCore

/// The JSON-lines flow log format: one object per flow event.
///
/// ```json
/// {"event":"closed","proto":"tcp","client":{"ip":"10.244.1.5","port":43122},
///  "server":{"ip":"10.96.0.10","port":53},"state":"closed","end_reason":"fin",
///  "first_seen":1795219200.001896000,"last_seen":1795219200.039133000,
///  "client_to_server":{"packets":4,"ip_bytes":328,"wire_bytes":584,...},
///  "server_to_client":{...},"tcp":{"handshake_rtt_us":120,...},"dns":{...},"tls":{...}}
/// ```
/// Addresses and ports are oriented client → server (``FlowRecord/clientSide``); the
/// normalised key order is not exposed. Names (DNS, SNI, ALPN) come from the tracker's
/// ``NameTable``. No payload bytes are ever written.
public enum FlowJSON {
    /// Appends one event as a JSON object followed by a newline.
    public static func append(_ event: FlowEvent, _ r: FlowRecord, names: NameTable?, to out: inout JSONBuffer) {
        let clientIsA = r.clientSide == 0
        let (cip, cport) = clientIsA ? (r.key.a, r.key.portA) : (r.key.b, r.key.portB)
        let (sip, sport) = clientIsA ? (r.key.b, r.key.portB) : (r.key.a, r.key.portA)
        out.beginObject()
        out.field("event", event.name)
        out.field("proto", FlowKey.protocolName(r.key.protocolNumber))
        out.field("ip_version", r.key.a.isIPv4 ? 4 : 6)
        out.beginObject("client")
        out.field("ip", cip)
        out.field("port", Int(cport))
        out.endObject()
        out.beginObject("server")
        out.field("ip", sip)
        out.field("port", Int(sport))
        out.endObject()
        out.field("client_from_handshake", r.clientFromHandshake)
        if r.key.vlanID != 0 { out.field("vlan", Int(r.key.vlanID)) }
        if r.key.tunnel != .none {
            out.beginObject("tunnel")
            out.field("kind", r.key.tunnel.description)
            out.field("id", Int(r.key.tunnelID))
            // Zero when the tracker had no place for the address (tunnelEndpointsNotKept): left out.
            if r.outerSource != .zero { out.field("outer_src", r.outerSource) }
            if r.outerDestination != .zero { out.field("outer_dst", r.outerDestination) }
            out.endObject()
        }
        if r.carriesTunnel { out.field("carries_tunnel", true) }
        out.field("interface", Int(r.interface))
        if r.key.protocolNumber == 6 { out.field("state", r.tcpState.description) }
        if event == .closed { out.field("end_reason", r.endReason.description) }
        out.decimalField("first_seen", r.firstSeen.nanoseconds, scale: 9)
        out.decimalField("last_seen", r.lastSeen.nanoseconds, scale: 9)
        direction("client_to_server", r.directions[Int(r.clientSide)], tcp: r.key.protocolNumber == 6, &out)
        direction("server_to_client", r.directions[Int(1 - r.clientSide)], tcp: r.key.protocolNumber == 6, &out)
        if r.key.protocolNumber == 6 {
            out.beginObject("tcp")
            out.field("handshake_rtt_us", Int(r.handshakeRTTMicroseconds))
            out.field("server_rtt_us", Int(r.serverRTTMicroseconds))
            out.endObject()
        }
        if r.icmpErrors > 0 {
            out.beginObject("icmp_errors")
            out.field("count", Int(r.icmpErrors))
            out.field("last_type", Int(r.lastICMPType))
            out.field("last_code", Int(r.lastICMPCode))
            out.endObject()
        }
        if let d = r.dns {
            out.beginObject("dns")
            if let names, d.queryName != 0 { out.field("query", names[d.queryName]) }
            out.field("qtype", Int(d.queryType))
            out.field("queries", Int(d.queries))
            out.field("responses", Int(d.responses))
            if d.responses > 0 {
                out.field("rcode", Int(d.responseCode))
                out.field("answers", Int(d.answers))
            }
            if d.latencyMicroseconds > 0 { out.field("latency_us", Int(d.latencyMicroseconds)) }
            out.endObject()
        }
        if let t = r.tls {
            out.beginObject("tls")
            if let names, t.serverName != 0 { out.field("sni", names[t.serverName]) }
            if let names, t.alpn != 0 { out.field("alpn", names[t.alpn]) }
            out.field("version", tlsVersionName(t.offeredVersion))
            out.endObject()
        }
        out.endObject()
        out.newline()
    }

    static func direction(_ key: StaticString, _ d: FlowDirectionStatistics, tcp: Bool, _ out: inout JSONBuffer) {
        out.beginObject(key)
        out.field("packets", d.packets)
        out.field("ip_bytes", d.ipBytes)
        out.field("wire_bytes", d.wireBytes)
        if tcp {
            out.field("tcp_flags", d.tcpFlags.description)
            out.field("retransmissions", Int(d.retransmissions))
            out.field("out_of_order", Int(d.outOfOrder))
            out.field("zero_window", Int(d.zeroWindowEvents))
        }
        out.endObject()
    }

    /// "TLS1.3", "TLS1.2" … or the hex value.
    public static func tlsVersionName(_ v: UInt16) -> String {
        switch v {
        case 0x0304: "TLS1.3"
        case 0x0303: "TLS1.2"
        case 0x0302: "TLS1.1"
        case 0x0301: "TLS1.0"
        case 0x0300: "SSL3.0"
        case 0: "unknown"
        default: "0x" + String(v, radix: 16)
        }
    }
}
