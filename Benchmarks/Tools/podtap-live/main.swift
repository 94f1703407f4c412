// podtap-live: the live-capture side of Benchmarks/compare-live.sh. Captures on one interface
// with AFPacketSource (N fanout threads) or PcapLiveSource until SIGINT or SIGTERM, decoding
// every packet and tracking flows as the node agent does, then prints one line:
//   podtap seen=N kernel_drops=D interface_drops=I freezes=Z flows=F threads=T backend=B
//
// usage: podtap-live (afpacket|pcap) INTERFACE [THREADS] [--no-track]
// For A/B experiments: PODTAP_BLOCK_KB and PODTAP_BLOCKS set the ring geometry,
// PODTAP_NO_PREPARE=1 turns off FlowTracker.prepare (decode ahead in the ring block),
// PODTAP_FANOUT=flow|hash|cpu|lb picks the fanout mode with 2+ threads (default flow; PODTAP_DEFRAG=0 drops the
// defrag flag), PODTAP_PROMISC=1 puts the interface in promiscuous mode as netsniff-ng does, and
// PODTAP_DECODE_ONLY=1 decodes every packet without tracking (no flow table, no look-ahead).
import Backends
import CaptureCore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

let stopRequested = Atomic<Bool>(false)
let noPrepare = ProcessInfo.processInfo.environment["PODTAP_NO_PREPARE"] == "1"
let decodeOnly = ProcessInfo.processInfo.environment["PODTAP_DECODE_ONLY"] == "1"

struct Tracking: CaptureWorker, ~Copyable {
    var tracker = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 65_536), sink: DiscardingFlowSink())
    let decoder = PacketDecoder()
    let tracks: Bool
    var seen: UInt64 = 0
    /// Where PODTAP_DECODE_ONLY decodes.
    var decoded = DecodedPacket()

    init(tracks: Bool) { self.tracks = tracks }

    mutating func process(_ packet: borrowing PacketRecord) {
        seen &+= 1
        guard tracks else { return }
        if decodeOnly {
            decoder.decode(packet.bytes, linkType: packet.linkType, into: &decoded)
            return
        }
        tracker.process(frame: packet.bytes, linkType: packet.linkType, decoder: decoder,
                        timestamp: packet.timestamp, wireLength: packet.originalLength)
    }

    var preparesAhead: Bool { tracks && !noPrepare && !decodeOnly }

    mutating func prepare(_ upcoming: borrowing PacketRecord) {
        tracker.prepare(frame: upcoming.bytes, linkType: upcoming.linkType, decoder: decoder,
                        timestamp: upcoming.timestamp, wireLength: upcoming.originalLength)
    }

    consuming func finish() -> UInt64 {
        tracker.finish()
        return tracker.currentStatistics.flowsOpened
    }
}

func fail(_ message: String) -> Never {
    let text = "podtap-live: \(message)\n"
    _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
let tracks = !arguments.contains("--no-track")
arguments.removeAll { $0 == "--no-track" }
guard arguments.count >= 2, ["afpacket", "pcap"].contains(arguments[0]) else {
    fail("usage: podtap-live (afpacket|pcap) INTERFACE [THREADS] [--no-track]")
}
let backend = arguments[0]
let interface = arguments[1]
let threads = arguments.count > 2 ? Int(arguments[2]) ?? 0 : 1
guard threads >= 1 else { fail("THREADS must be a positive number") }

signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }

func waitForStop() {
    while !stopRequested.load(ordering: .relaxed) { usleep(50_000) }
}

switch backend {
case "afpacket":
    var configuration = AFPacketConfiguration(interface: interface)
    // Experiments (see the top): ring geometry, promiscuous mode, fanout mode.
    let environment = ProcessInfo.processInfo.environment
    configuration.blockSize = (environment["PODTAP_BLOCK_KB"].flatMap { Int($0) } ?? 1024) << 10
    configuration.blockCount = environment["PODTAP_BLOCKS"].flatMap { Int($0) } ?? 64
    configuration.promiscuous = environment["PODTAP_PROMISC"] == "1"
    if threads > 1, let name = environment["PODTAP_FANOUT"] {
        let modes = AFPacketFanoutMode.allCases
        guard let mode = modes.first(where: { $0.description == name }) else {
            fail("PODTAP_FANOUT=\(name): use \(modes.map(\.description).joined(separator: ", "))")
        }
        configuration.fanout = AFPacketFanout(mode: mode, defragments: environment["PODTAP_DEFRAG"] != "0")
    }
    let capture: AFPacketCapture<Tracking>
    do {
        capture = try AFPacketCapture(configuration: configuration, threads: threads) { _ in Tracking(tracks: tracks) }
    } catch {
        fail(error.description)
    }
    print("podtap ready", terminator: "\n")
    fflush(nil)
    waitForStop()
    let report = capture.stop()
    let total = report.total
    print("podtap seen=\(total.delivered) kernel_drops=\(total.droppedByKernel) interface_drops=\(total.droppedByInterface)"
          + " freezes=\(total.queueFreezes) flows=\(report.results.reduce(0, +)) threads=\(threads) backend=afpacket")
case "pcap":
    guard threads == 1 else { fail("the pcap backend captures with one thread") }
    var configuration = PcapLiveConfiguration(interface: interface)
    configuration.bufferSize = 64 << 20
    configuration.immediate = false  // as tcpdump -w: libpcap hands over whole ring blocks
    var source: PcapLiveSource
    do {
        source = try PcapLiveSource(configuration)
    } catch {
        fail(error.description)
    }
    var worker = Tracking(tracks: tracks)
    print("podtap ready")
    fflush(nil)
    while !stopRequested.load(ordering: .relaxed) {
        do {
            _ = try source.poll(timeoutMilliseconds: 100) { packet in worker.process(packet) }
        } catch {
            fail(error.description)
        }
    }
    let statistics = source.statistics
    let flows = worker.finish()
    print("podtap seen=\(statistics.delivered) kernel_drops=\(statistics.droppedByKernel)"
          + " interface_drops=\(statistics.droppedByInterface) freezes=0 flows=\(flows) threads=1 backend=pcap")
default:
    fail("unknown backend \(backend)")
}
