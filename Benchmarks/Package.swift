// swift-tools-version: 6.2
// PodTap benchmarks (ordo-one/benchmark): run from this directory with `swift package benchmark`.
// A separate package so that the benchmark tool's dependencies never reach PodTap's own build.
import PackageDescription

// `.package(path: "../")` gets the identity of the parent directory's name (it is "wt-bench"
// in a worktree, "podtap" or "main" elsewhere), so products are looked up under that name.
let podtap = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "podtap").lowercased()

let package = Package(
    name: "PodTapBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../"),
        // The MallocInterposer trait alone: the default traits add RuntimeInterposer, whose
        // swift-runtime-interposer dependency cannot be resolved here (SWIFT-LINUX-NOTES §5).
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: []
)

// The live side of compare-live.sh: a plain executable (no benchmark plugin).
package.targets.append(
    .executableTarget(
        name: "podtap-live",
        dependencies: [.product(name: "Backends", package: podtap), .product(name: "CaptureCore", package: podtap)],
        path: "Tools/podtap-live",
        swiftSettings: [.enableExperimentalFeature("Lifetimes")]
    )
)

// K8sMeta index: lookups per second, memory per pod, decoding 10,000 pods (a plain executable,
// run in release: `swift run -c release k8smeta-bench`).
package.targets.append(.target(name: "CMallocStats", path: "Tools/CMallocStats"))
package.targets.append(
    .executableTarget(
        name: "k8smeta-bench",
        dependencies: ["CMallocStats", .product(name: "K8sMeta", package: podtap), .product(name: "CaptureCore", package: podtap)],
        path: "Tools/k8smeta-bench",
        swiftSettings: [.enableExperimentalFeature("Lifetimes")]
    )
)

// One executable per benchmarked module, in Benchmarks/<Name>/.
for (name, modules) in [("CaptureCoreBenchmarks", ["CaptureCore"]), ("K8sMetaBenchmarks", ["K8sMeta", "CaptureCore"])] {
    package.targets.append(
        .executableTarget(
            name: name,
            dependencies: [.product(name: "Benchmark", package: "benchmark")]
                + (name == "CaptureCoreBenchmarks" ? ["TrafgenFrames"] : [])
                + modules.map { .product(name: $0, package: podtap) },
            path: "Benchmarks/\(name)",
            swiftSettings: [.enableExperimentalFeature("Lifetimes")],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
}

// compare-live's trafgen traffic in memory, for lookahead-bench and CaptureCoreBenchmarks (and
// the synthetic decoded UDP packet of CaptureCoreBenchmarks and entry-bench).
package.targets.append(
    .target(name: "TrafgenFrames", dependencies: [.product(name: "CaptureCore", package: podtap)],
            path: "Tools/TrafgenFrames"))

// FlowTracker.prepare against plain process on compare-live's trafgen traffic (a plain
// executable, run in release: `swift run -c release lookahead-bench`).
package.targets.append(
    .executableTarget(
        name: "lookahead-bench",
        dependencies: ["TrafgenFrames", .product(name: "CaptureCore", package: podtap)],
        path: "Tools/lookahead-bench",
        swiftSettings: [.enableExperimentalFeature("Lifetimes")]
    )
)

// FlowTracker.process(_:…) with a borrowed packet against process(&packet, …): what the copy of
// a borrowed DecodedPacket costs (`swift run -c release entry-bench`).
package.targets.append(
    .executableTarget(
        name: "entry-bench",
        dependencies: ["TrafgenFrames", .product(name: "CaptureCore", package: podtap)],
        path: "Tools/entry-bench"
    )
)
