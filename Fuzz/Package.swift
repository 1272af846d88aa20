// swift-tools-version: 6.0
// libFuzzer targets for protreplay's readers and the probe-map parser. The library sources are the
// main package's (symlinked under Sources/); build and run with `scripts/fuzz TARGET SECONDS`.
import PackageDescription

let fuzzTargets = ["ftrace-text", "trace-cmd-report", "perf-script", "trace-dat", "perf-data", "lz4", "probe-map",
                   "compressed", "perf-data-pipe", "perf-data-zstd", "kallsyms", "trace-dat-pages", "perf-data-chunks"]

let package = Package(
    name: "protreplay-fuzz",
    dependencies: [
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4"),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash"),
        .systemLibrary(name: "CTraceCmd", pkgConfig: "libtracecmd"),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib"),
        .systemLibrary(name: "CLZMA", pkgConfig: "liblzma"),
        .target(name: "TraceIngest", dependencies: ["CLZ4", "CXXHash", "CTraceCmd", "CZstd", "CZlib", "CLZMA"]),
        .target(name: "EventModel", dependencies: ["TraceIngest"]),
        .target(name: "Replay", dependencies: ["EventModel"]),
        .target(name: "Models", dependencies: ["Replay"]),
        .target(name: "Analysis", dependencies: ["Replay", .product(name: "Histogram", package: "hdrhistogram-swift")]),
        .target(name: "Reports", dependencies: ["Analysis", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Perfetto/proto"]),
        .target(name: "ProtReplayKit", dependencies: ["TraceIngest", "EventModel", "Replay", "Models", "Analysis", "Reports"]),
        .target(name: "FuzzSupport", dependencies: ["TraceIngest", "EventModel", "Models", "ProtReplayKit", "CZstd"], path: "Support"),
    ] + fuzzTargets.map {
        .executableTarget(name: "fuzz-\($0)", dependencies: ["FuzzSupport"], path: "Targets/\($0)")
    },
    swiftLanguageModes: [.v5]
)
