import ArgumentParser
import CaptureCore
import Exporters
import Foundation
import K8sMeta
#if canImport(Glibc)
import Glibc
#endif

@main
struct PodTapFlows: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "podtap-flows",
        abstract: "Turn pcap / pcapng capture files into bidirectional flows.",
        // Paragraphs end their lines with "\" so the help wraps them to the terminal's width;
        // the examples are preformatted and fit in 80 columns.
        discussion: """
            Decodes every packet (Ethernet, 802.1Q/QinQ, Linux cooked v1/v2, raw IP, BSD \
            loopback; IPv4/IPv6 with extension headers and fragments; TCP, UDP, ICMP, SCTP; \
            VXLAN on 4789 and flannel's 8472, Geneve, GRE, IP-in-IP with the inner packets \
            decoded; DNS and TLS ClientHello), tracks bidirectional flows with TCP state, \
            handshake RTT and retransmissions, and prints one record per flow. Tunnelled flows \
            appear twice: the pod-to-pod inner flow, and the node-to-node outer flow that \
            carried it.

            A summary (packets, decoded, undecodable by reason, flows, evictions) goes to \
            standard error. Exit status is 1 when a file cannot be read or is cut short (every \
            packet before the damage is still counted), 0 otherwise.

            Ctrl-C (SIGINT) or SIGTERM ends the input, not the run: the flows of every packet \
            read are printed, then podtap-flows exits by the signal. A stream is read on while \
            bytes still come (at most 2 s), so the last buffer of an interrupted \
            `tcpdump -w -` is counted.

            EXAMPLES:
              podtap-flows capture.pcapng              aligned table on a terminal
              podtap-flows --format jsonl node-*.pcap > flows.jsonl
              podtap-flows --format csv --innermost k8s.pcap
                  columns of bench/tools/check_truth.py
              podtap-flows --sort packets --limit 20 big.pcap
              tcpdump -i eth0 -w - | podtap-flows -
              podtap-flows --snapshot cluster.json capture.pcap
                  names pods, services and nodes; cluster.json is what
                  kubectl get pods,services,endpointslices,nodes,replicasets,deployments \\
                    -A -o json
                  writes (-o yaml works too)
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, jsonl, csv, summary
    }

    enum SortKey: String, ExpressibleByArgument, CaseIterable {
        case bytes, packets, start, duration
    }

    @Argument(help: "Capture files (pcap or pcapng), read in order as one capture; - is standard input.")
    var files: [String]

    @Option(help: "Output format: table (default on a terminal), jsonl (default otherwise), csv, or summary (no flow records, only the summary on standard error).")
    var format: Format?

    @Flag(help: "Leave out the outer flows that carried a tunnel (node-to-node VXLAN, Geneve, GRE, IP-in-IP).")
    var innermost = false

    @Flag(help: "jsonl: also write opened and interim (active timeout) events, not only final records.")
    var updates = false

    @Option(help: "Table: sort by bytes, packets, start or duration.")
    var sort: SortKey = .bytes

    @Option(help: "Table: print at most this many flows (0 = all).")
    var limit: Int = 0

    @Option(help: "Most flows tracked at once; when full, the idlest of a sample is evicted (and counted).")
    var capacity: Int = 262_144

    @Option(help: "Seconds between interim records of a long-lived flow (0 = none).")
    var activeTimeout: Double = 60

    @Option(help: "Idle timeout in seconds for established TCP connections.")
    var tcpIdleTimeout: Double = 300

    @Option(help: "Idle timeout in seconds for UDP flows.")
    var udpIdleTimeout: Double = 60

    @Option(help: "A UDP port to decode as VXLAN instead of 4789 (flannel's 8472 stays).")
    var vxlanPort: UInt16?

    @Option(help: "A cluster snapshot (what kubectl get -A -o json, or -o yaml, writes for pods, services, endpointslices, nodes, replicasets and deployments; see EXAMPLES): name each flow end's pod, workload, Service or node.")
    var snapshot: String?

    @Option(help: "With --snapshot: an address range counted as inside the cluster (pod or service CIDR) when no object holds an address; repeatable. Node podCIDRs count already.")
    var clusterCIDR: [String] = []

    @Flag(help: "Do not parse DNS and TLS ClientHello.")
    var noL7 = false

    @Flag(inversion: .prefixedNo, help: "Progress bar on standard error for large files (only when it is a terminal).")
    var progress = true

    func validate() throws {
        guard capacity > 0 && capacity < 1 << 30 else { throw ValidationError("--capacity must be between 1 and 2^30") }
        guard activeTimeout >= 0, tcpIdleTimeout > 0, udpIdleTimeout > 0 else {
            throw ValidationError("timeouts must be positive")
        }
        for c in clusterCIDR where CIDR(c) == nil { throw ValidationError("--cluster-cidr \(c): not an address range like 10.96.0.0/12") }
        if !clusterCIDR.isEmpty && snapshot == nil { throw ValidationError("--cluster-cidr needs --snapshot") }
    }

    mutating func run() throws {
        var configuration = FlowTrackerConfiguration(capacity: capacity)
        configuration.timeouts.active = UInt64(activeTimeout * 1e9)
        configuration.timeouts.tcpEstablished = UInt64(tcpIdleTimeout * 1e9)
        configuration.timeouts.udp = UInt64(udpIdleTimeout * 1e9)
        configuration.emitsOpened = updates
        // Room for a name on every tracked flow (the table keeps only names of tracked flows).
        configuration.nameCapacity = min(max(configuration.nameCapacity, capacity), NameTable.maximumCapacity)
        var decoder = PacketDecoder()
        if let vxlanPort { decoder.vxlanPorts.0 = vxlanPort }
        if noL7 {
            decoder.decodesDNS = false
            decoder.decodesTLS = false
        }
        var cluster: ClusterNames? = nil
        if let snapshot {
            do {
                let loaded = try ClusterSnapshot(contentsOf: URL(fileURLWithPath: snapshot))
                let configuration = ClusterIndex.Configuration(clusterRanges: clusterCIDR.compactMap { CIDR($0) })
                cluster = ClusterNames(index: loaded.index(configuration: configuration))
            } catch {
                writeError("error: \(error)\n")
                throw ExitCode(1)
            }
        }
        let chosen = format ?? (isatty(1) != 0 ? .table : .jsonl)
        let showProgress = progress && isatty(2) != 0
        let analysis = Analysis(decoder: decoder, files: files, showProgress: showProgress)
        Interruption.install()
        let result: AnalysisSummary
        switch chosen {
        case .jsonl where cluster != nil:
            var tracker = FlowTracker(
                configuration: configuration,
                sink: FilteringSink(innermost: innermost, base: NamedJSONLinesWriter(
                    fileDescriptor: 1, includeUpdates: updates, names: cluster ?? ClusterNames(index: ClusterIndex()))))
            tracker.sink.base.flowNames = tracker.names
            result = analysis.run(&tracker)
            tracker.sink.base.flush()
        case .jsonl:
            var tracker = FlowTracker(configuration: configuration,
                                      sink: FilteringSink(innermost: innermost, base: JSONLinesFlowWriter(fileDescriptor: 1, includeUpdates: updates)))
            tracker.sink.base.names = tracker.names
            result = analysis.run(&tracker)
            tracker.sink.base.flush()
        case .csv:
            var tracker = FlowTracker(configuration: configuration,
                                      sink: FilteringSink(innermost: innermost, base: CSVFlowWriter(fileDescriptor: 1, names: cluster)))
            result = analysis.run(&tracker)
            tracker.sink.base.flush()
        case .summary:
            var tracker = FlowTracker(configuration: configuration, sink: DiscardingFlowSink())
            result = analysis.run(&tracker)
        case .table:
            var tracker = FlowTracker(configuration: configuration,
                                      sink: FilteringSink(innermost: innermost, base: CollectingFlowSink()))
            result = analysis.run(&tracker)
            var table = FlowTableRenderer(names: tracker.names, sort: sort, limit: limit)
            table.cluster = cluster
            writeOut(table.render(tracker.sink.base.closed))
        }
        writeError(result.render())
        Interruption.endBySignal()
        if !result.failures.isEmpty { throw ExitCode(1) }
    }
}

/// Passes flows to `base`, leaving out tunnel carriers when asked.
struct FilteringSink<Base: FlowSink>: FlowSink {
    var innermost: Bool
    var base: Base
    mutating func receive(_ event: FlowEvent, _ flow: FlowRecord) {
        if innermost && flow.carriesTunnel { return }
        base.receive(event, flow)
    }
}

func writeOut(_ s: String) { writeAll(1, s) }
func writeError(_ s: String) { writeAll(2, s) }

func writeAll(_ fd: Int32, _ s: String) {
    var s = s
    _ = s.withUTF8 { unsafe writeAll(to: fd, UnsafeRawBufferPointer($0)) }
}
