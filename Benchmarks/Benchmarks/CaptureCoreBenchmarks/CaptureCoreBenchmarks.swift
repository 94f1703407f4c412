// CaptureCore hot paths: per-packet cost and allocations of pcap reading, decoding and flow
// tracking, and the flow table's memory per flow.
//
// The per-packet benchmarks replay an in-memory capture (see TestCapture) through the same
// loop as podtap-flows (Sources/Examples/podtap-flows/Analysis.swift): CaptureFileReader
// → PacketDecoder → FlowTracker. Each iteration handles exactly 1,000 packets and the
// scaling factor is .kilo, so every scaled figure is per packet. The three benchmarks are
// cumulative stages (read; read + decode; read + decode + track): the differences are the
// cost of each stage.
//
// State lives across iterations (reader position, tracker table): a pass over the capture
// spans many iterations. Everything that allocates (a new reader at the end of a pass, which
// copies the capture; tracker creation; warm-up) runs before benchmark.startMeasurement().

import Benchmark
import CaptureCore
import TrafgenFrames

/// No .peakMemoryResident (nor any other OS metric) next to .mallocCountTotal: benchmark 1.38.1
/// reads its malloc counters first and then /proc/self/{io,stat} (makeOperatingSystemStats, which
/// allocates) inside the counting window, at start and at stop (BenchmarkExecutor.swift), and its
/// RSS sampler thread allocates every ~5 ms: 16-23 mallocs per iteration that are not ours.
/// Memory is measured by "flow table memory per flow" instead.
let perPacketMetrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]

/// Mallocs are held to their baseline exactly (Thresholds/6.3); time and memory vary by machine
/// and are left to baseline comparisons.
nonisolated(unsafe) let mallocsExact: [BenchmarkMetric: BenchmarkThresholds] = [.mallocCountTotal: .strict]

enum FlowTableMetric {
    static let recordStride = BenchmarkMetric.custom("per-packet entry (B)", useScalingFactor: false)
    static let tableBytesPerFlow = BenchmarkMetric.custom("tableBytes / capacity (B)", useScalingFactor: false)
    static let bytesPerFlow = BenchmarkMetric.custom("FlowTracker.bytesPerFlow (B)", useScalingFactor: false)
    static let residentPerFlow = BenchmarkMetric.custom("RSS growth per flow, table full (B)", useScalingFactor: false)
}

/// The capacity podtap-flows uses by default.
let trackerCapacity = 262_144

let benchmarks: @Sendable () -> Void = {
    let perPacket = Benchmark.Configuration(
        metrics: perPacketMetrics,
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(5),
        maxIterations: 100_000,
        thresholds: mallocsExact
    )

    Benchmark("pcap read only", configuration: perPacket) { benchmark, replay in
        replay.startIteration()
        benchmark.startMeasurement()
        readOnly(&replay.reader, count: TestCapture.packetsPerIteration, into: &replay.checksum)
        benchmark.stopMeasurement()
        blackHole(replay.checksum)
    } setup: {
        Replay(tracking: false)
    }

    Benchmark("decode only", configuration: perPacket) { benchmark, replay in
        replay.startIteration()
        benchmark.startMeasurement()
        readAndDecode(&replay.reader, replay.decoder, &replay.packet, count: TestCapture.packetsPerIteration,
                      into: &replay.checksum)
        benchmark.stopMeasurement()
        blackHole(replay.checksum)
    } setup: {
        Replay(tracking: false)
    }

    Benchmark("decode+track per packet", configuration: perPacket) { benchmark, replay in
        replay.startIteration()
        benchmark.startMeasurement()
        readDecodeAndTrack(&replay.reader, replay.decoder, &replay.packet, &replay.tracker!,
                           count: TestCapture.packetsPerIteration, timeOffset: replay.timeOffset)
        benchmark.stopMeasurement()
    } setup: {
        Replay(tracking: true)
    }

    // The live capture path with look-ahead (AFPacketSource + CaptureWorker.prepare): each
    // frame prepared 4 packets before it is processed, on compare-live's trafgen traffic
    // (63,977 cycling UDP flows, frames 128 bytes apart as in a ring). Mallocs held to 0.
    Benchmark("prepare+process per packet (trafgen traffic)", configuration: perPacket) { benchmark, ring in
        benchmark.startMeasurement()
        ring.run(count: TestCapture.packetsPerIteration)
        benchmark.stopMeasurement()
    } setup: {
        TrafgenRing()
    }

    // One iteration: create a tracker of podtap-flows' default capacity, fill every slot with a
    // distinct UDP flow, then free it. Reports the figures as custom metrics (bytes per flow).
    Benchmark(
        "flow table memory per flow",
        configuration: .init(
            // No .peakMemoryResident (see perPacketMetrics): it adds ~50 framework mallocs to a
            // 100 ms iteration. The RSS metric below measures the table's memory instead.
            metrics: [.wallClock, .mallocCountTotal, FlowTableMetric.recordStride,
                      FlowTableMetric.tableBytesPerFlow, FlowTableMetric.bytesPerFlow, FlowTableMetric.residentPerFlow],
            warmupIterations: 1,
            scalingFactor: .one,
            maxDuration: .seconds(5),
            maxIterations: 10,
            thresholds: mallocsExact
        )
    ) { benchmark in
        let before = residentBytes()
        benchmark.startMeasurement()
        var tracker = FlowTracker(configuration: FlowTrackerConfiguration(capacity: trackerCapacity),
                                  sink: DiscardingFlowSink())
        fillWithDistinctFlows(&tracker, count: trackerCapacity)
        benchmark.stopMeasurement()
        let grown = residentBytes() - before
        precondition(tracker.activeFlows == trackerCapacity, "table not full: \(tracker.activeFlows)")
        let tableBytes = tracker.tableBytes
        let stride = FlowTracker<DiscardingFlowSink>.entryBytes
        benchmark.measurement(FlowTableMetric.recordStride, stride)
        benchmark.measurement(FlowTableMetric.tableBytesPerFlow, tableBytes / trackerCapacity)
        benchmark.measurement(FlowTableMetric.bytesPerFlow, FlowTracker<DiscardingFlowSink>.bytesPerFlow)
        benchmark.measurement(FlowTableMetric.residentPerFlow, grown / trackerCapacity)
        writeToStandardError(
            "CaptureCoreBenchmarks: FlowTracker.entryBytes=\(stride) B, FlowTracker.bytesPerFlow="
                + "\(FlowTracker<DiscardingFlowSink>.bytesPerFlow) B, tableBytes=\(tableBytes) B for capacity "
                + "\(trackerCapacity) = \(tableBytes / trackerCapacity) B per flow, RSS growth with the table full = "
                + "\(grown / trackerCapacity) B per flow (target <= 128 B per entry)\n")
    }
}

// MARK: - State across iterations

final class Replay: @unchecked Sendable {
    let capture = TestCapture.shared
    var reader: CaptureFileReader
    let decoder = PacketDecoder()
    var packet = DecodedPacket()
    var tracker: FlowTracker<DiscardingFlowSink>?
    /// Added to every timestamp; grows by the capture's span + 10 minutes each pass, so time
    /// only moves forward and the previous pass's flows time out and are swept as new ones open.
    var timeOffset: UInt64 = 0
    var checksum = 0

    init(tracking: Bool) {
        reader = capture.makeReader()
        guard tracking else { return }
        var configuration = FlowTrackerConfiguration(capacity: trackerCapacity)
        configuration.emitsOpened = false  // as podtap-flows without --updates
        tracker = FlowTracker(configuration: configuration, sink: DiscardingFlowSink())
        // Warm up: one whole pass, so DNS / TLS names are interned (a name seen for the first
        // time allocates its String, once) and the table holds the capture's flows.
        let passes = capture.packets / TestCapture.packetsPerIteration
        for _ in 0..<passes {
            readDecodeAndTrack(&reader, decoder, &packet, &tracker!, count: TestCapture.packetsPerIteration,
                               timeOffset: timeOffset)
        }
        startIteration()
    }

    /// Called before each measurement: a new reader (and a later clock) once a pass is done.
    func startIteration() {
        if reader.packetCount == capture.packets {
            reader = capture.makeReader()
            timeOffset &+= capture.span &+ 600_000_000_000
        }
    }
}

// MARK: - Measured loops (inout parameters: no class or exclusivity traffic per packet)

@inline(never)
func readOnly(_ reader: inout CaptureFileReader, count: Int, into checksum: inout Int) {
    var sum = 0
    for _ in 0..<count {
        guard (try? reader.advance()) == true else { fatalError("benchmark capture ended early") }
        let record = reader.packet
        sum &+= record.bytes.byteCount &+ record.originalLength &+ Int(truncatingIfNeeded: record.timestamp.nanoseconds)
    }
    checksum &+= sum
}

@inline(never)
func readAndDecode(
    _ reader: inout CaptureFileReader, _ decoder: PacketDecoder, _ packet: inout DecodedPacket, count: Int,
    into checksum: inout Int
) {
    var sum = 0
    for _ in 0..<count {
        guard (try? reader.advance()) == true else { fatalError("benchmark capture ended early") }
        let record = reader.packet
        decoder.decode(record.bytes, linkType: record.linkType, into: &packet)
        sum &+= packet.layerCount &+ Int(packet.layers[0].sourcePort)
    }
    checksum &+= sum
}

@inline(never)
func readDecodeAndTrack(
    _ reader: inout CaptureFileReader, _ decoder: PacketDecoder, _ packet: inout DecodedPacket,
    _ tracker: inout FlowTracker<DiscardingFlowSink>, count: Int, timeOffset: UInt64
) {
    for _ in 0..<count {
        guard (try? reader.advance()) == true else { fatalError("benchmark capture ended early") }
        let record = reader.packet
        // The path podtap-flows takes: decode into the tracker's scratch packet, track in place.
        tracker.process(frame: record.bytes, linkType: record.linkType, decoder: decoder,
                        timestamp: Timestamp(nanoseconds: record.timestamp.nanoseconds &+ timeOffset),
                        wireLength: record.originalLength, interface: record.interfaceIndex)
    }
}

/// `count` distinct UDP flows 11.x.y.z:40000 → 10.96.0.1:53, one packet each.
@inline(never)
func fillWithDistinctFlows(_ tracker: inout FlowTracker<DiscardingFlowSink>, count: Int) {
    var synthetic = SyntheticUDPPacket()
    let frame: [UInt8] = []
    for i in 0..<count {
        synthetic.setSource(UInt32(i))
        tracker.process(&synthetic.packet, frame: frame.span.bytes, timestamp: Timestamp(nanoseconds: 1_000_000_000 + UInt64(i)),
                        wireLength: 74)
    }
}

/// compare-live's trafgen traffic in memory (``TrafgenFrames``: 63,977 cycling UDP flows, 16 MB of
/// frames), processed with `FlowTracker.prepare` 4 packets ahead. State (position, clock, table)
/// lives across iterations; the table is filled before measuring.
final class TrafgenRing: @unchecked Sendable {
    let frames = TrafgenFrames(count: 1 << 17, flows: 63_977)
    var tracker = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 65_536), sink: DiscardingFlowSink())
    let decoder = PacketDecoder()
    var next = 0

    init() {
        run(count: frames.count)  // warm up: every flow in the table
    }

    func run(count: Int) {
        frames.replay(next..<(next + count), distance: 4, into: &tracker, decoder: decoder)
        next += count
        precondition(tracker.currentStatistics.preparedPackets == UInt64(next), "a prepared decode was not used")
    }
}
