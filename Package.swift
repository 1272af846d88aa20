// swift-tools-version: 6.0
import PackageDescription

/// Hot-path targets drop dynamic exclusivity checks in release builds (they cost ~15% of a run,
/// measured with perf); debug builds and tests keep them.
let fast: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "protreplay",
    products: [
        .executable(name: "protreplay", targets: ["protreplay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // System library: LZ4 frames (Debian liblz4-dev).
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // System library: trace.dat through libtracecmd, event formats through libtraceevent
        // (Debian libtracecmd-dev libtraceevent-dev libtracefs-dev; libtracecmd.pc requires libtracefs).
        .systemLibrary(name: "CTraceCmd", pkgConfig: "libtracecmd",
                       providers: [.apt(["libtracecmd-dev", "libtraceevent-dev", "libtracefs-dev"])]),

        // System library: trace.dat writing (libtracecmd's exported output calls) and libtracefs recording.
        .systemLibrary(name: "CTraceCmdWrite", pkgConfig: "libtracecmd",
                       providers: [.apt(["libtracecmd-dev", "libtracefs-dev"])]),
        // System libraries: zstd (`.zst` inputs, `perf record -z` records), zlib (`.gz`), liblzma (`.xz`).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLZMA", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"])]),

        // bytes -> RawEvent: byte sources, format sniffing, one reader per format.
        .target(name: "TraceIngest", dependencies: ["CLZ4", "CTraceCmd", "CZstd", "CZlib", "CLZMA"], swiftSettings: fast),
        // RawEvent -> ProtEvent: probe map, kernel profile, address -> pfn.
        .target(name: "EventModel", dependencies: ["TraceIngest"], swiftSettings: fast),
        // ProtEvent -> contexts: per-CPU task, IRQ stack, lost spans, the model protocol.
        .target(name: "Replay", dependencies: ["EventModel"], swiftSettings: fast),
        // One folder per protection design; pure state machines emitting observations.
        .target(name: "Models", dependencies: ["Replay"], swiftSettings: fast),
        // Observations -> Summary: windows, accesses, anomalies, histograms, attribution.
        .target(name: "Analysis", dependencies: ["Replay", .product(name: "Histogram", package: "hdrhistogram-swift")], swiftSettings: fast),
        // Summary -> text, JSON, CSV.
        .target(name: "Reports", dependencies: ["Analysis"]),
        // Capture on the running kernel: the probe catalog, arch argument registers, a tracefs session
        // that restores what it changed, and the recorder (`protreplay record`, `protreplay probes`).
        .target(name: "Capture", dependencies: ["Models", "EventModel", "CTraceCmdWrite"]),
        // The pipeline as one library: settings and model configuration in, reports out (the CLI, the
        // tests, Fuzz/ and Benchmarks/ run traces through it).
        .target(name: "ProtReplayKit", dependencies: ["TraceIngest", "EventModel", "Replay", "Models", "Analysis", "Reports"]),
        .executableTarget(name: "protreplay", dependencies: [
            "ProtReplayKit", "TraceIngest", "EventModel", "Replay", "Models", "Analysis", "Reports", "Capture",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // What every test target shares: one process runner (both pipes drained), the repository's
        // paths, the golden JSON comparison.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TraceIngestTests", dependencies: ["TraceIngest", "TestSupport"]),
        .testTarget(name: "EventModelTests", dependencies: ["EventModel", "TestSupport"]),
        .testTarget(name: "ReplayTests", dependencies: ["Replay", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Analysis", "TestSupport"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "TestSupport"]),
        .testTarget(name: "CaptureTests", dependencies: ["Capture", "EventModel", "TestSupport"]),
        // Inputs the tests read from the source tree by path (not bundled resources).
        .testTarget(name: "protreplayTests", dependencies: ["protreplay", "ProtReplayKit", "TraceIngest", "TestSupport"],
                    exclude: ["Malformed/fuzz-crashes"]),
    ],
    swiftLanguageModes: [.v5]
)
