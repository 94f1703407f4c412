// lookahead-bench: what FlowTracker.prepare (decode ahead, load the flow table's memory early)
// saves per packet, on the traffic of compare-live.sh's trafgen senders: 64-byte UDP frames
// whose source port counts through 63,977 values, so every packet hits a different flow and
// the table's memory is what a packet waits for. The frames sit 128 bytes apart in a 64 MB
// buffer, as in a TPACKET_V3 ring. Runs each mode alternately and prints ns per packet.
//
// usage: lookahead-bench [PACKETS_MILLIONS] [FLOWS] [ROUNDS]
import CaptureCore
import Foundation
import TrafgenFrames
#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
nonisolated(unsafe) let packets = (arguments.count > 1 ? Int(arguments[1]) ?? 20 : 20) * 1_000_000
nonisolated(unsafe) let flows = arguments.count > 2 ? Int(arguments[2]) ?? 63_977 : 63_977
let rounds = arguments.count > 3 ? Int(arguments[3]) ?? 3 : 3

let frames = TrafgenFrames(count: (64 << 20) / TrafgenFrames.stride, flows: flows)
let frameLength = TrafgenFrames.frameLength

func now() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

/// ns per packet over `packets` packets, preparing `distance` packets ahead (0: no prepare).
func run(distance: Int) -> (Double, UInt64) {
    var tracker = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 65_536), sink: DiscardingFlowSink())
    let decoder = PacketDecoder()
    let start = now()
    frames.replay(0..<packets, distance: distance, into: &tracker, decoder: decoder)
    let elapsed = now() - start
    let opened = tracker.currentStatistics.flowsOpened
    return (Double(elapsed) / Double(packets), opened)
}

let distanceList = ProcessInfo.processInfo.environment["DISTANCES"] ?? "0,2,4,6"
var distances: [Int] = []
for item in distanceList.split(separator: ",", omittingEmptySubsequences: false) {
    guard let d = Int(item), d >= 0 else {
        FileHandle.standardError.write(Data("lookahead-bench: DISTANCES must list packet counts ≥ 0, like 0,4 (got \"\(distanceList)\")\n".utf8))
        exit(2)
    }
    if !distances.contains(d) { distances.append(d) }
}
// The ratios are to no look-ahead: distance 0 always runs.
if !distances.contains(0) { distances.insert(0, at: 0) }
var results = [Int: [Double]]()
print("lookahead-bench: \(packets) packets, \(flows) cycling UDP flows, \(frames.count) frames of \(frameLength) B, \(rounds) rounds")
for _ in 0..<rounds {
    for d in distances {
        let (ns, opened) = run(distance: d)
        precondition(opened == UInt64(min(flows, packets)), "flows opened: \(opened)")
        results[d, default: []].append(ns)
    }
}
let base = results[0]!.sorted()[results[0]!.count / 2]
for d in distances {
    let v = results[d]!.sorted()
    let median = v[v.count / 2]
    print(String(format: "prepare distance %d: %6.1f ns/packet (median; runs %@)  %.2fx of no prepare",
                 d, median, v.map { String(format: "%.1f", $0) }.joined(separator: " "), base / median))
}
