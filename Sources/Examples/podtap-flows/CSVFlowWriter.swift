import CaptureCore
import Exporters
import K8sMeta
#if canImport(Glibc)
import Glibc
#endif

/// Closed flows as CSV in the normalised key order. The first nine columns are those
/// `bench/tools/check_truth.py` reads (bytes are IP bytes); the rest add wire bytes, VLAN,
/// tunnel, state and client side. Formatted into a byte buffer: no strings per flow.
struct CSVFlowWriter: FlowSink {
    let fileDescriptor: Int32
    var out = JSONBuffer(capacity: 1 << 17)
    /// With `--snapshot`: a_kind,a_name,a_workload,a_service,a_node and the same for b.
    let names: ClusterNames?

    init(fileDescriptor: Int32, names: ClusterNames? = nil) {
        self.fileDescriptor = fileDescriptor
        self.names = names
        out.appendRaw("proto,a_ip,a_port,b_ip,b_port,a2b_pkts,a2b_bytes,b2a_pkts,b2a_bytes,")
        out.appendRaw("a2b_wire_bytes,b2a_wire_bytes,vlan,tunnel,tunnel_id,carries_tunnel,client,state,end_reason")
        if names != nil {
            out.appendRaw(",a_kind,a_name,a_workload,a_service,a_node,b_kind,b_name,b_workload,b_service,b_node")
        }
        out.appendRaw("\n")
    }

    mutating func receive(_ event: FlowEvent, _ f: FlowRecord) {
        guard event == .closed else { return }
        let k = f.key
        let comma = UInt8(ascii: ",")
        out.appendDecimal(UInt64(k.protocolNumber)); out.appendByte(comma)
        out.appendAddress(k.a); out.appendByte(comma)
        out.appendDecimal(UInt64(k.portA)); out.appendByte(comma)
        out.appendAddress(k.b); out.appendByte(comma)
        out.appendDecimal(UInt64(k.portB)); out.appendByte(comma)
        out.appendDecimal(f.directions[0].packets); out.appendByte(comma)
        out.appendDecimal(f.directions[0].ipBytes); out.appendByte(comma)
        out.appendDecimal(f.directions[1].packets); out.appendByte(comma)
        out.appendDecimal(f.directions[1].ipBytes); out.appendByte(comma)
        out.appendDecimal(f.directions[0].wireBytes); out.appendByte(comma)
        out.appendDecimal(f.directions[1].wireBytes); out.appendByte(comma)
        out.appendDecimal(UInt64(k.vlanID)); out.appendByte(comma)
        out.appendRaw(k.tunnel.name); out.appendByte(comma)
        out.appendDecimal(UInt64(k.tunnelID)); out.appendByte(comma)
        out.appendByte(f.carriesTunnel ? UInt8(ascii: "1") : UInt8(ascii: "0")); out.appendByte(comma)
        out.appendByte(f.clientSide == 0 ? UInt8(ascii: "a") : UInt8(ascii: "b")); out.appendByte(comma)
        out.appendRaw(f.tcpState.name); out.appendByte(comma)
        out.appendRaw(f.endReason.name)
        if let names {
            let ends = names.enricher.identities(of: f)
            out.appendByte(comma); names.appendCSV(ends.a, to: &out)
            out.appendByte(comma); names.appendCSV(ends.b, to: &out)
        }
        out.appendByte(UInt8(ascii: "\n"))
        if out.bytes.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        _ = unsafe out.bytes.withUnsafeBytes { writeAll(to: fileDescriptor, $0) }
        out.removeAll()
    }
}
