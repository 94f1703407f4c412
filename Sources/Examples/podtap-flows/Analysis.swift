import CaptureCore
#if canImport(Glibc)
import Glibc
#endif

/// What a run saw, for the summary on standard error.
struct AnalysisSummary {
    var packets: UInt64 = 0
    var decoded: UInt64 = 0
    var decodeStops = DecodeStatistics()
    var tracker = FlowTrackerStatistics()
    var failures: [String] = []
    var seconds: Double = 0
    var fileBytes: Int = 0
    /// SIGINT or SIGTERM ended the input (0: it ran to the end).
    var interruptedBy: Int32 = 0

    func render() -> String {
        var s = "\n"
        s += "packets      \(packets)\n"
        s += "decoded      \(decoded) (every layer present decoded)\n"
        let stops = decodeStops.nonZero
        if !stops.isEmpty {
            s += "stopped early \(packets - decoded)\n"
            for (error, count) in stops {
                s += "  \(error.layer): \(error.reason)".padding(28) + "\(count)\n"
            }
        }
        s += "non-IP       \(tracker.nonIPPackets)\n"
        s += "flows        \(tracker.flowsOpened)\n"
        s += "evictions    \(tracker.evictions)\n"
        if tracker.rejectedPackets > 0 { s += "rejected     \(tracker.rejectedPackets) packets (table full)\n" }
        if tracker.icmpErrorsAttributed + tracker.icmpErrorsUnmatched > 0 {
            s += "icmp errors  \(tracker.icmpErrorsAttributed) attributed, \(tracker.icmpErrorsUnmatched) unmatched\n"
        }
        if tracker.namesNotKept > 0 {
            s += "names        \(tracker.namesNotKept) DNS/TLS names not kept (every place of the name table held a tracked flow's)\n"
        }
        if tracker.tunnelEndpointsNotKept > 0 {
            s += "tunnels      \(tracker.tunnelEndpointsNotKept) outer addresses not kept (every place of the endpoint table held a tracked flow's)\n"
        }
        if tracker.applicationInfoNotKept > 0 {
            s += "dns/tls      \(tracker.applicationInfoNotKept) messages not kept (their flow already carried the other kind)\n"
        }
        if tracker.fragmentsWithoutPorts > 0 {
            s += "fragments    \(tracker.fragmentsWithoutPorts) later fragments without their first\n"
        }
        let rate = seconds > 0 ? Double(packets) / seconds : 0
        s += "time         \(format(seconds, 3)) s, \(format(rate / 1e6, 2)) M packets/s\n"
        if interruptedBy != 0 {
            let name = interruptedBy == SIGINT ? "SIGINT" : interruptedBy == SIGTERM ? "SIGTERM" : "signal \(interruptedBy)"
            s += "interrupted  by \(name): the flows are those of the \(packets) packets read before it\n"
        }
        for f in failures { s += "error: \(f)\n" }
        return s
    }
}

struct Analysis {
    let decoder: PacketDecoder
    let files: [String]
    let showProgress: Bool

    func run<Sink: FlowSink>(_ tracker: inout FlowTracker<Sink>) -> AnalysisSummary {
        var summary = AnalysisSummary()
        var interfaceBase = 0
        let start = monotonicSeconds()
        for path in files {
            if Interruption.signal != 0 { break }
            if path == "-" || Self.isStream(path) {
                readStream(path, &tracker, &summary, interfaceBase: &interfaceBase)
                continue
            }
            var reader: CaptureFileReader
            do {
                reader = try CaptureFileReader(path: path)
            } catch {
                summary.failures.append(error.description)
                continue
            }
            summary.fileBytes += reader.fileSize
            var bar = ProgressBar(enabled: showProgress && reader.fileSize >= 32 << 20, total: reader.fileSize, name: path)
            do {
                while try reader.advance() {
                    count(reader.packet, &tracker, &summary, interfaceBase: interfaceBase)
                    if summary.packets & 0xFFF == 0 {
                        if Interruption.signal != 0 { break }
                        if summary.packets & 0xFFFF == 0 { bar.update(reader.bytesRead, packets: summary.packets) }
                    }
                }
            } catch {
                summary.failures.append(error.description)
            }
            bar.finish()
            interfaceBase += max(reader.interfaces.count, 1)
        }
        tracker.finish()
        summary.interruptedBy = Interruption.signal
        summary.tracker = tracker.currentStatistics
        summary.seconds = monotonicSeconds() - start
        return summary
    }

    /// A path that names a pipe, FIFO or character device (`<(tcpdump -w -)`, `/dev/stdin`):
    /// read as a stream, not mapped or read whole. Anything `stat` fails on is left to the
    /// file reader, which reports it.
    static func isStream(_ path: String) -> Bool {
        var info = stat()
        guard unsafe stat(path, &info) == 0 else { return false }
        let kind = info.st_mode & S_IFMT
        return kind == S_IFIFO || kind == S_IFCHR || kind == S_IFSOCK
    }

    /// "-" (standard input) or a pipe, read as a stream through a bounded window
    /// (`tcpdump -w - … | podtap-flows -` may run for as long as tcpdump does) until it ends
    /// or a signal ends it (``Interruption``).
    func readStream<Sink: FlowSink>(_ path: String, _ tracker: inout FlowTracker<Sink>, _ summary: inout AnalysisSummary,
                                    interfaceBase: inout Int) {
        // Opening a FIFO waits for its writer; a signal ends the wait (EINTR).
        let fd = path == "-" ? STDIN_FILENO : unsafe open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if Interruption.signal == 0 {
                summary.failures.append(CaptureFileError(.cannotOpen(errno: errno), fileName: path, message: "cannot open").description)
            }
            return
        }
        defer { if fd != STDIN_FILENO { close(fd) } }
        let stream = Interruption.Stream(fd)
        var reader: CaptureStreamReader
        do {
            reader = try unsafe CaptureStreamReader(name: path == "-" ? "standard input" : path, read: stream.read)
        } catch {
            if !stream.isCutBySignal(error) { summary.failures.append(error.description) }
            return
        }
        do {
            while try reader.advance() {
                count(reader.packet, &tracker, &summary, interfaceBase: interfaceBase)
            }
        } catch {
            // Where the signal ended the stream, a record cut short is not damage.
            if !stream.isCutBySignal(error) { summary.failures.append(error.description) }
        }
        summary.fileBytes += reader.bytesRead
        interfaceBase += max(reader.interfaces.count, 1)
    }

    /// Decodes and tracks one packet.
    @inline(__always)
    func count<Sink: FlowSink>(_ record: borrowing PacketRecord, _ tracker: inout FlowTracker<Sink>,
                               _ summary: inout AnalysisSummary, interfaceBase: Int) {
        if let stop = tracker.process(
            frame: record.bytes, linkType: record.linkType, decoder: decoder, timestamp: record.timestamp,
            wireLength: record.originalLength, interface: interfaceBase &+ record.interfaceIndex)
        {
            summary.decodeStops.record(stop)
        } else {
            summary.decoded &+= 1
        }
        summary.packets &+= 1
    }
}

/// A one-line progress bar on standard error, redrawn at most ten times a second.
struct ProgressBar {
    let enabled: Bool
    let total: Int
    let name: String
    var lastDraw = 0.0
    let start = monotonicSeconds()

    mutating func update(_ done: Int, packets: UInt64) {
        guard enabled else { return }
        let now = monotonicSeconds()
        guard now - lastDraw >= 0.1 else { return }
        lastDraw = now
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let rate = Double(packets) / max(now - start, 1e-6)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        writeError("\r\(name) [\(bar)] \(Int(fraction * 100))% \(format(rate / 1e6, 2)) M pkt/s ")
    }

    func finish() {
        guard enabled else { return }
        writeError("\r" + String(repeating: " ", count: 80) + "\r")
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    unsafe clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func format(_ value: Double, _ decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var s = String(rounded)
    if let dot = s.firstIndex(of: ".") {
        let have = s.distance(from: dot, to: s.endIndex) - 1
        if have < decimals { s += String(repeating: "0", count: decimals - have) }
    } else if decimals > 0 {
        s += "." + String(repeating: "0", count: decimals)
    }
    return s
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
