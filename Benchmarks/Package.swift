// swift-tools-version: 6.1
// Micro-benchmarks (ordo-one/benchmark) of protreplay's parser and model hot paths, with allocation
// counts. The library sources are the main package's (symlinked under Sources/, as in Fuzz/), so the
// main package and CI never build the benchmark dependencies. Run with `scripts/bench-hotpaths`.
import PackageDescription

/// As in the main package: hot targets drop dynamic exclusivity checks in release builds.
let fast: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "protreplay-benchmarks",
    dependencies: [
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // MallocInterposer gives the malloc metrics; naming the traits also turns off the default
        // RuntimeInterposer trait, whose package is not needed here.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4"),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash"),
        .systemLibrary(name: "CTraceCmd", pkgConfig: "libtracecmd"),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib"),
        .systemLibrary(name: "CLZMA", pkgConfig: "liblzma"),
        .target(name: "TraceIngest", dependencies: ["CLZ4", "CXXHash", "CTraceCmd", "CZstd", "CZlib", "CLZMA"], swiftSettings: fast),
        .target(name: "EventModel", dependencies: ["TraceIngest"], swiftSettings: fast),
        .target(name: "Replay", dependencies: ["EventModel"], swiftSettings: fast),
        .target(name: "Models", dependencies: ["Replay"], swiftSettings: fast),
        .target(name: "Analysis", dependencies: ["Replay", .product(name: "Histogram", package: "hdrhistogram-swift")], swiftSettings: fast),
        .target(name: "Reports", dependencies: ["Analysis", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Perfetto/proto"]),
        .target(name: "ProtReplayKit", dependencies: ["TraceIngest", "EventModel", "Replay", "Models", "Analysis", "Reports"], swiftSettings: fast),
        // Sample loading, counting sinks and the pipeline wiring the benchmarks share.
        .target(name: "BenchSupport", dependencies: ["CTraceCmd", "TraceIngest", "EventModel", "Replay", "Models", "Analysis", "ProtReplayKit"], path: "Support", swiftSettings: fast),
        .executableTarget(
            name: "HotPaths",
            dependencies: ["BenchSupport", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/HotPaths",
            swiftSettings: fast,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v5]
)
