import CaptureCore
import Exporters
import K8sMeta

/// Names flow ends from a cluster snapshot (`--snapshot`) for the table, JSON lines and CSV.
struct ClusterNames {
    let enricher: Enricher
    var index: ClusterIndex { enricher.index }

    init(index: ClusterIndex) { enricher = Enricher(index: index) }

    /// One table cell: "shop/api-7d9 (Deployment/api)", "svc kube-system/kube-dns",
    /// "node node-3", "cluster", "world".
    func cell(_ id: EndpointIdentity) -> String {
        switch id.kind {
        case .pod, .hostNetworkPod:
            let name = index.objectName(id) ?? ""
            let hostNetwork = id.kind == .hostNetworkPod ? " hostNetwork" : ""
            if let w = index.workloadName(id) { return "\(name) (\(w)\(hostNetwork))" }
            return hostNetwork.isEmpty ? name : "\(name) (hostNetwork)"
        case .service: return "svc \(index.objectName(id) ?? "")"
        case .node: return "node \(index.objectName(id) ?? "")"
        case .cluster, .world, .unknown: return id.kind.description
        }
    }

    /// `"client_k8s":{...}` style object: kind, namespace, name, workload_kind, workload,
    /// service, node; empty fields left out.
    func appendJSON(_ key: String, _ id: EndpointIdentity, to out: inout JSONBuffer) {
        out.appendRaw(",\"\(key)\":{\"kind\":")
        out.appendQuoted(id.kind.description)
        func field(_ name: StaticString, _ value: StringTable.ID) {
            guard value != 0 else { return }
            out.appendRaw(",\"")
            out.appendRaw(name)
            out.appendRaw("\":")
            out.appendQuoted(index[value])
        }
        field("namespace", id.namespace)
        field("name", id.name)
        field("workload_kind", id.workloadKind)
        field("workload", id.workloadName)
        if id.serviceName != 0 {
            field("service_namespace", id.serviceNamespace)
            field("service", id.serviceName)
        }
        field("node", id.node)
        out.appendRaw("}")
    }

    /// CSV cells kind,name,workload,service,node for one end ("ns/name" forms; no commas occur
    /// in Kubernetes names).
    func appendCSV(_ id: EndpointIdentity, to out: inout JSONBuffer) {
        out.appendRaw(id.kind.name)
        out.appendByte(UInt8(ascii: ","))
        out.appendRaw(index.objectName(id) ?? "")
        out.appendByte(UInt8(ascii: ","))
        out.appendRaw(index.workloadName(id) ?? "")
        out.appendByte(UInt8(ascii: ","))
        out.appendRaw(index.serviceName(id) ?? "")
        out.appendByte(UInt8(ascii: ","))
        out.appendRaw(index.nodeName(id) ?? "")
    }
}

/// JSON lines (the Exporters format) with `client_k8s` and `server_k8s` objects added.
struct NamedJSONLinesWriter: FlowSink {
    let fileDescriptor: Int32
    let includeUpdates: Bool
    let names: ClusterNames
    var flowNames: NameTable?
    var out = JSONBuffer(capacity: 1 << 17)

    init(fileDescriptor: Int32, includeUpdates: Bool, names: ClusterNames) {
        self.fileDescriptor = fileDescriptor
        self.includeUpdates = includeUpdates
        self.names = names
    }

    mutating func receive(_ event: FlowEvent, _ flow: FlowRecord) {
        guard event == .closed || includeUpdates else { return }
        FlowJSON.append(event, flow, names: flowNames, to: &out)
        // FlowJSON ends the object with "}\n": reopen it for the identities.
        out.bytes.removeLast(2)
        let ends = names.enricher.identities(of: flow)
        names.appendJSON("client_k8s", ends.client(of: flow), to: &out)
        names.appendJSON("server_k8s", ends.server(of: flow), to: &out)
        out.appendRaw("}\n")
        if out.bytes.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        _ = unsafe out.bytes.withUnsafeBytes { unsafe writeAll(to: fileDescriptor, $0) }
        out.removeAll()
    }
}
