// swift-tools-version: 6.0
import PackageDescription

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

        // bytes -> RawEvent: byte sources, format sniffing, one reader per format.
        .target(name: "TraceIngest", dependencies: ["CLZ4"]),
        // RawEvent -> ProtEvent: probe map, kernel profile, address -> pfn.
        .target(name: "EventModel", dependencies: ["TraceIngest"]),
        // ProtEvent -> contexts: per-CPU task, IRQ stack, lost spans, the model protocol.
        .target(name: "Replay", dependencies: ["EventModel"]),
        // One folder per protection design; pure state machines emitting observations.
        .target(name: "Models", dependencies: ["Replay"]),
        // Observations -> Summary: windows, accesses, anomalies, histograms, attribution.
        .target(name: "Analysis", dependencies: ["Replay", .product(name: "Histogram", package: "hdrhistogram-swift")]),
        // Summary -> text, JSON, CSV.
        .target(name: "Reports", dependencies: ["Analysis"]),
        .executableTarget(name: "protreplay", dependencies: [
            "TraceIngest", "EventModel", "Replay", "Models", "Analysis", "Reports",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "TraceIngestTests", dependencies: ["TraceIngest"]),
        .testTarget(name: "EventModelTests", dependencies: ["EventModel"]),
        .testTarget(name: "ReplayTests", dependencies: ["Replay"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Analysis"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports"]),
        .testTarget(name: "protreplayTests", dependencies: ["protreplay"]),
    ],
    swiftLanguageModes: [.v5]
)
