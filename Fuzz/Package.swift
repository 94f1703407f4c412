// swift-tools-version: 6.2
// libFuzzer harnesses for CaptureCore: the packet decoder (+ flow tracker) and the capture
// file readers (+ writers). A separate package so the root package and `make test` stay
// free of sanitizer flags. Build and run with `Fuzz/run.sh` (or `make fuzz`).
import PackageDescription

// Extern: `@_extern(c)` declares libFuzzer's LLVMFuzzerRunDriver (see the harnesses' entry points).
let settings: [SwiftSetting] = [.enableExperimentalFeature("Lifetimes"), .enableExperimentalFeature("Extern")]

let package = Package(
    name: "PodTapFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "PodTap", path: "../"),
    ],
    targets: [
        .executableTarget(
            name: "FuzzDecoder",
            dependencies: [.product(name: "CaptureCore", package: "PodTap")],
            swiftSettings: settings
        ),
        .executableTarget(
            name: "FuzzCaptureFile",
            dependencies: [.product(name: "CaptureCore", package: "PodTap")],
            swiftSettings: settings
        ),
    ]
)
