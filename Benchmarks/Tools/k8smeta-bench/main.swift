// K8sMeta index benchmarks (issue #4): IPv4 lookups per second on one core, bytes of memory per
// pod held by the index, and the time to decode a list of 10,000 pods scaled from the recorded
// objects (../shared/k8s-fixtures/lists/pods.json). Run in release from Benchmarks/:
//   swift run -c release k8smeta-bench [--pods N] [--fixtures DIR]
import CMallocStats
import CaptureCore
import Foundation
import K8sMeta
#if canImport(Glibc)
import Glibc
#endif

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Bytes the allocator holds in use (glibc mallinfo2).
func allocatedBytes() -> Int { Int(podtap_allocated_bytes()) }

func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

var podCount = 10_000
var fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("shared/k8s-fixtures")
var arguments = CommandLine.arguments.dropFirst()
while let a = arguments.popFirst() {
    switch a {
    case "--pods": podCount = Int(arguments.popFirst() ?? "") ?? podCount
    case "--fixtures": fixtures = URL(fileURLWithPath: arguments.popFirst() ?? "")
    default:
        print("usage: k8smeta-bench [--pods N] [--fixtures DIR]")
        exit(2)
    }
}

/// `count` pods as the API server would list them: copies of the recorded (non-hostNetwork)
/// pods with new names, uids and addresses (10.128.0.0/9 and fd00:128::/64), managedFields and all.
func scaledPodList(_ count: Int, fixtures: URL) throws -> Data {
    let data = try Data(contentsOf: fixtures.appendingPathComponent("lists/pods.json"))
    guard let list = try JSONSerialization.jsonObject(with: data) as? [String: Any],
        let items = list["items"] as? [[String: Any]]
    else { throw NSError(domain: "k8smeta-bench", code: 1) }
    let templates = items.filter { (($0["spec"] as? [String: Any])?["hostNetwork"] as? Bool) != true }
    var out: [[String: Any]] = []
    out.reserveCapacity(count)
    for i in 0..<count {
        var pod = templates[i % templates.count]
        var meta = pod["metadata"] as? [String: Any] ?? [:]
        meta["name"] = "\(meta["name"] as? String ?? "pod")-\(i)"
        meta["uid"] = String(format: "%08x-0000-4000-8000-%012x", i, i)
        pod["metadata"] = meta
        var status = pod["status"] as? [String: Any] ?? [:]
        let v4 = "10.\(128 + (i >> 16) & 127).\((i >> 8) & 255).\(i & 255)"
        let v6 = "fd00:128::\(String(i, radix: 16))"
        status["podIP"] = v4
        status["podIPs"] = [["ip": v4], ["ip": v6]]
        pod["status"] = status
        out.append(pod)
    }
    var scaled = list
    scaled["items"] = out
    return try JSONSerialization.data(withJSONObject: scaled)
}

struct PodList: Decodable { var items: [Pod] }

print("K8sMeta index benchmark — \(podCount) pods, one core")
print("")

// 1. Decoding.
let listData = try scaledPodList(podCount, fixtures: fixtures)
var decodeTimes: [Double] = []
var pods: [Pod] = []
for _ in 0..<5 {
    let start = now()
    pods = try JSONDecoder().decode(PodList.self, from: listData).items
    decodeTimes.append(now() - start)
}
decodeTimes.sort()
print("decode \(podCount)-pod list (\(listData.count / 1024) KiB JSON): best \(String(format: "%.1f", decodeTimes[0] * 1000)) ms, median \(String(format: "%.1f", decodeTimes[2] * 1000)) ms (\(String(format: "%.0f", Double(listData.count) / decodeTimes[2] / 1e6)) MB/s)")

// 2. Memory per pod held by the index (decoded pods stay alive outside the measurement).
let before = allocatedBytes()
let rssBefore = residentBytes()
var index = ClusterIndex(configuration: .init(clusterRanges: [CIDR("10.96.0.0/12")].compactMap { $0 }))
let buildStart = now()
index.apply(WatchEvent<Pod>.replaced(pods, resourceVersion: "1"), at: Timestamp(nanoseconds: 1_000))
let buildTime = now() - buildStart
let held = allocatedBytes() - before
let rssGrowth = residentBytes() - rssBefore
print("index build (relist of \(podCount) pods): \(String(format: "%.1f", buildTime * 1000)) ms")
print("memory held by the index: \(held) bytes = \(held / podCount) bytes/pod (allocator, mallinfo2); RSS growth \(rssGrowth / podCount) bytes/pod")
print("  of which lookup tables (v4+v6 slots, intervals, identities): \(index.approximateBytes / podCount) bytes/pod")
let podArrayBytes = MemoryLayout<Pod>.stride * pods.count
print("  (for comparison: decoded [Pod] array \(podArrayBytes / pods.count) bytes/pod inline, plus its strings)")

// 3. Lookups.
let lookups = 4_000_000
var rng = SplitMix(state: 42)
var addresses: [UInt32] = []
addresses.reserveCapacity(lookups)
for _ in 0..<lookups {
    let i = Int(rng.next() % UInt64(podCount))
    addresses.append(UInt32(10) << 24 | UInt32(128 + (i >> 16) & 127) << 16 | UInt32((i >> 8) & 255) << 8 | UInt32(i & 255))
}
func run(_ label: String, rounds: Int = 7, _ body: () -> UInt64) {
    var rates: [Double] = []
    var check: UInt64 = 0
    for _ in 0..<rounds {
        let start = now()
        check &+= body()
        rates.append(Double(lookups) / (now() - start))
    }
    rates.sort()
    print("\(label): median \(String(format: "%.1f", rates[rounds / 2] / 1e6)) M/s, best \(String(format: "%.1f", rates[rounds - 1] / 1e6)) M/s  (check \(check % 1000))")
}
// The loops take the index as a parameter (borrowed): a global `var` would be copied per access.
@inline(never) func lookupCurrent(_ index: ClusterIndex, _ addresses: [UInt32]) -> UInt64 {
    var sum: UInt64 = 0
    for a in addresses { sum &+= UInt64(index.identity(ipv4: a).name) }
    return sum
}
@inline(never) func lookupAt(_ index: ClusterIndex, _ addresses: [UInt32], _ t: Timestamp) -> UInt64 {
    var sum: UInt64 = 0
    for a in addresses { sum &+= UInt64(index.identity(ipv4: a, at: t).name) }
    return sum
}
@inline(never) func lookupAddress(_ index: ClusterIndex, _ addresses: [UInt32]) -> UInt64 {
    var sum: UInt64 = 0
    for a in addresses { sum &+= UInt64(index.identity(of: IPAddress(ipv4: a)).name) }
    return sum
}
@inline(never) func lookupKind(_ index: ClusterIndex, _ addresses: [UInt32]) -> UInt64 {
    var sum: UInt64 = 0
    for a in addresses { sum &+= UInt64(index.identity(ipv4: a).kind.rawValue) }
    return sum
}
let frozen = index
run("IPv4 lookup, current time, random over \(podCount) pods") { lookupCurrent(frozen, addresses) }
let flowTime = Timestamp(nanoseconds: 5_000)
run("IPv4 lookup at a flow's time (Timestamp)") { lookupAt(frozen, addresses, flowTime) }
run("IPAddress lookup, current time") { lookupAddress(frozen, addresses) }
var misses = addresses
for i in misses.indices { misses[i] = misses[i] ^ 0x0080_0000 }  // 10.0.x.y: nobody
run("IPv4 lookup, miss (external, CIDR check)") { lookupKind(frozen, misses) }
let shared = SharedClusterIndex(index)
run("SharedClusterIndex: lock per lookup", rounds: 3) {
    var sum: UInt64 = 0
    for a in addresses { sum &+= UInt64(shared.identity(of: IPAddress(ipv4: a)).name) }
    return sum
}
run("SharedClusterIndex: snapshot per 1,000 lookups") {
    var sum: UInt64 = 0
    var n = 0
    while n < addresses.count {
        sum &+= lookupCurrent(shared.snapshot(), Array(addresses[n..<min(n + 1000, addresses.count)]))
        n += 1000
    }
    return sum
}
@inline(never) func enrich(_ enricher: Enricher, _ addresses: [UInt32], _ flowTime: Timestamp) -> UInt64 {
    var sum: UInt64 = 0
    var flow = FlowRecord(key: FlowKey(a: .zero, portA: 40_000, b: .zero, portB: 80, protocolNumber: 6))
    flow.directions[0].packets = 1
    flow.directions[0].firstSeen = flowTime
    flow.directions[0].lastSeen = flowTime
    for i in addresses.indices {
        flow.key.a = IPAddress(ipv4: addresses[i])
        flow.key.b = IPAddress(ipv4: addresses[(i &+ 7) % addresses.count])
        let ends = enricher.identities(of: flow)
        sum &+= UInt64(ends.a.name &+ ends.b.name)
    }
    return sum
}
let enricher = Enricher(index: index)
run("Enricher: both ends of a flow (2 lookups each; rate in flows/s)") { enrich(enricher, addresses, flowTime) }
// Writer cost: a pod update (new address) on an index shared with a reader snapshot.
var writer = index
let held2 = writer
var updateTimes: [Double] = []
for k in 0..<5 {
    var p = pods[k]
    p.status.podIPs = [.init(ip: "10.127.0.\(k + 1)")]
    let start = now()
    writer.apply(.modified(p), at: Timestamp(nanoseconds: 10_000 + UInt64(k)))
    updateTimes.append(now() - start)
}
print("pod update while a reader holds a snapshot: first \(String(format: "%.2f", updateTimes[0] * 1000)) ms (copies the tables), then \(String(format: "%.1f", updateTimes[1...].reduce(0, +) / 4 * 1e6)) µs")
_ = held2.podCount
