// entry-bench: what it costs to hand FlowTracker a packet you decoded yourself, lent
// (`process(packet, …)`, Swift copies the 672-byte DecodedPacket to take its address) or by
// reference (`process(&packet, …)`, read where it is).
//
//   swift run -c release entry-bench [MILLION_PACKETS] [FLOWS] [ROUNDS]
//
// One UDP layer per packet, cycling through FLOWS flows (default 1000: the table stays in
// cache, so the copy is not hidden behind memory stalls); the two variants alternate, ROUNDS
// times each; prints nanoseconds per packet per run and the medians.
import CaptureCore
import TrafgenFrames

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let packets = (arguments.count > 0 ? arguments[0] : 20) * 1_000_000
let flows = arguments.count > 1 ? arguments[1] : 1000
let rounds = arguments.count > 2 ? arguments[2] : 3

@inline(never)
func nanosecondsPerPacket(byReference: Bool) -> Double {
    var tracker = FlowTracker(configuration: FlowTrackerConfiguration(capacity: 65_536), sink: DiscardingFlowSink())
    var synthetic = SyntheticUDPPacket()
    let frame: [UInt8] = []
    let clock = ContinuousClock()
    let start = clock.now
    for i in 0..<packets {
        synthetic.setSource(UInt32(i % flows))
        let time = Timestamp(nanoseconds: 1_000_000_000 + UInt64(i))
        if byReference {
            tracker.process(&synthetic.packet, frame: frame.span.bytes, timestamp: time, wireLength: 74)
        } else {
            tracker.process(synthetic.packet, frame: frame.span.bytes, timestamp: time, wireLength: 74)
        }
    }
    let elapsed = clock.now - start
    precondition(tracker.activeFlows == min(flows, packets), "flows: \(tracker.activeFlows)")
    let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    return ns / Double(packets)
}

func show(_ x: Double) -> String { "\((x * 10).rounded() / 10)" }

print("entry-bench: \(packets) packets, \(flows) cycling UDP flows, \(rounds) rounds")
var results: [Bool: [Double]] = [false: [], true: []]
for _ in 0..<rounds {
    for byReference in [false, true] {
        results[byReference]!.append(nanosecondsPerPacket(byReference: byReference))
    }
}
func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
let lent = median(results[false]!), reference = median(results[true]!)
print("process(packet, …)   lent:         \(show(lent)) ns/packet (median; runs \(results[false]!.map(show).joined(separator: " ")))")
print("process(&packet, …)  by reference: \(show(reference)) ns/packet (median; runs \(results[true]!.map(show).joined(separator: " ")))")
print("the copy of a lent packet: \(show(lent - reference)) ns/packet")
