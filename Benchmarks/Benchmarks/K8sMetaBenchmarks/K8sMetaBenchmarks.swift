// K8sMeta hot path: IP → identity lookups in a ClusterIndex of 10,000 pods, at 0 mallocs.
// Each iteration does 1,000 random lookups (scalingFactor .kilo: scaled figures are per
// lookup). Throughput, memory per pod and decode time are in the k8smeta-bench executable.

import Benchmark
import CaptureCore
import K8sMeta

let podCount = 10_000

/// 10,000 synthetic pods (10.128.x.y) applied as a relist, and a random lookup order.
final class Lookups: @unchecked Sendable {
    let index: ClusterIndex
    let addresses: [UInt32]
    var position = 0

    init() {
        var index = ClusterIndex()
        var pods: [Pod] = []
        for i in 0..<podCount {
            let ip = "10.\(128 + (i >> 16) & 127).\((i >> 8) & 255).\(i & 255)"
            pods.append(Pod(
                metadata: ObjectMeta(name: "pod-\(i)", namespace: "ns-\(i % 20)", uid: "uid-\(i)",
                                     ownerReferences: [OwnerReference(kind: "ReplicaSet", name: "rs-\(i % 50)", uid: "rs", controller: true)]),
                spec: .init(nodeName: "node-\(i % 16)"),
                status: .init(podIPs: [.init(ip: ip)])))
        }
        index.apply(.replaced(pods, resourceVersion: "1"), at: Timestamp(nanoseconds: 1))
        self.index = index
        var state: UInt64 = 42
        var addresses: [UInt32] = []
        for _ in 0..<1_048_576 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            let i = Int((z ^ (z >> 31)) % UInt64(podCount))
            addresses.append(UInt32(10) << 24 | UInt32(128 + (i >> 16) & 127) << 16 | UInt32((i >> 8) & 255) << 8 | UInt32(i & 255))
        }
        self.addresses = addresses
    }
}

nonisolated(unsafe) let mallocsExact: [BenchmarkMetric: BenchmarkThresholds] = [.mallocCountTotal: .strict]

let benchmarks: @Sendable () -> Void = {
    let perLookup = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000_000,
        thresholds: mallocsExact
    )

    Benchmark("IPv4 lookup, 10k pods, current time", configuration: perLookup) { benchmark, lookups in
        var sum: UInt32 = 0
        let start = lookups.position
        benchmark.startMeasurement()
        for n in 0..<1000 {
            sum &+= lookups.index.identity(ipv4: lookups.addresses[(start &+ n) & 1_048_575]).name
        }
        benchmark.stopMeasurement()
        lookups.position = (start &+ 1000) & 1_048_575
        blackHole(sum)
    } setup: {
        Lookups()
    }

    Benchmark("IPv4 lookup, 10k pods, at a flow's time", configuration: perLookup) { benchmark, lookups in
        var sum: UInt32 = 0
        let start = lookups.position
        let t = Timestamp(nanoseconds: 1_000_000)
        benchmark.startMeasurement()
        for n in 0..<1000 {
            sum &+= lookups.index.identity(ipv4: lookups.addresses[(start &+ n) & 1_048_575], at: t).name
        }
        benchmark.stopMeasurement()
        lookups.position = (start &+ 1000) & 1_048_575
        blackHole(sum)
    } setup: {
        Lookups()
    }
}
