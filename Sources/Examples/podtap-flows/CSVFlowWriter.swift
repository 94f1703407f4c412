import CaptureCore
#if canImport(Glibc)
import Glibc
#endif

/// Closed flows as CSV in the normalised key order. The first nine columns are those
/// `bench/tools/check_truth.py` reads (bytes are IP bytes); the rest add wire bytes, VLAN,
/// tunnel, state and client side.
struct CSVFlowWriter: FlowSink {
    let fileDescriptor: Int32
    var buffer: String = ""

    init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
        buffer = "proto,a_ip,a_port,b_ip,b_port,a2b_pkts,a2b_bytes,b2a_pkts,b2a_bytes,"
            + "a2b_wire_bytes,b2a_wire_bytes,vlan,tunnel,tunnel_id,carries_tunnel,client,state,end_reason\n"
    }

    mutating func receive(_ event: FlowEvent, _ f: FlowRecord) {
        guard event == .closed else { return }
        let k = f.key
        let d0 = f.directions[0], d1 = f.directions[1]
        buffer += "\(k.protocolNumber),\(k.a),\(k.portA),\(k.b),\(k.portB),\(d0.packets),\(d0.ipBytes),"
        buffer += "\(d1.packets),\(d1.ipBytes),\(d0.wireBytes),\(d1.wireBytes),\(k.vlanID),\(k.tunnel),"
        buffer += "\(k.tunnelID),\(f.carriesTunnel ? 1 : 0),\(f.clientSide == 0 ? "a" : "b"),\(f.tcpState),\(f.endReason)\n"
        if buffer.utf8.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        writeAll(fileDescriptor, buffer)
        buffer = ""
    }
}
