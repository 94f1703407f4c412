// swift-tools-version: 6.2
// PodTap: who talks to whom inside a Kubernetes cluster, down to the packet.
//
// Dependencies point one way: Examples → Exporters / K8sMeta / Backends → CaptureCore.
// CaptureCore uses the standard library only (plus Glibc for mapping capture files).
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("ExistentialAny"),
    .enableExperimentalFeature("Lifetimes"),
    .strictMemorySafety(),
]

let package = Package(
    name: "PodTap",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CaptureCore", targets: ["CaptureCore"]),
        .library(name: "Backends", targets: ["Backends"]),
        .library(name: "K8sMeta", targets: ["K8sMeta", "K8sMetaClient"]),
        .library(name: "Exporters", targets: ["Exporters"]),
        .executable(name: "podtap-flows", targets: ["podtap-flows"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        .target(name: "CaptureCore", swiftSettings: strict),
        // C shims: one tiny target per C library, under Sources/Backends/Shims.
        .target(name: "CPodTapPacket", path: "Sources/Backends/Shims/CPodTapPacket"),
        .target(
            name: "CPodTapPcap", path: "Sources/Backends/Shims/CPodTapPcap",
            linkerSettings: [.linkedLibrary("pcap")]
        ),
        .systemLibrary(
            name: "CPodTapNetlink", path: "Sources/Backends/Shims/CPodTapNetlink",
            pkgConfig: "libnl-nf-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-route-3-dev", "libnl-nf-3-dev"])]
        ),
        .target(
            name: "Backends",
            dependencies: ["CaptureCore", "CPodTapPacket", "CPodTapPcap", "CPodTapNetlink"],
            exclude: ["Shims"],
            swiftSettings: strict
        ),
        // The index, the snapshot loader and the resource models: Foundation and Yams only, so
        // podtap-flows --snapshot builds without NIO.
        .target(
            name: "K8sMeta",
            dependencies: ["CaptureCore", .product(name: "Yams", package: "Yams")],
            exclude: ["Client"],
            swiftSettings: strict
        ),
        // The API client and informers (async-http-client / NIO), in Sources/K8sMeta/Client.
        .target(
            name: "K8sMetaClient",
            dependencies: [
                "K8sMeta", "CaptureCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/K8sMeta/Client",
            swiftSettings: strict
        ),
        .target(name: "Exporters", dependencies: ["CaptureCore"], swiftSettings: strict),
        .executableTarget(
            name: "podtap-flows",
            dependencies: [
                "CaptureCore", "Exporters", "K8sMeta",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Examples/podtap-flows",
            swiftSettings: strict
        ),
        .target(name: "PodTapTestSupport", dependencies: ["CaptureCore"], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "CaptureCoreTests", dependencies: ["CaptureCore", "PodTapTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "BackendsTests", dependencies: ["Backends", "CaptureCore", "PodTapTestSupport"], swiftSettings: strict
        ),
        .testTarget(
            name: "K8sMetaTests",
            dependencies: [
                "K8sMeta", "K8sMetaClient", "CaptureCore", "PodTapTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "ExportersTests", dependencies: ["Exporters", "CaptureCore"], swiftSettings: strict),
        .testTarget(
            name: "PodTapFlowsTests",
            dependencies: ["podtap-flows", "CaptureCore", "PodTapTestSupport"],
            path: "Tests/PodTapFlowsTests",
            swiftSettings: strict
        ),
    ]
)
