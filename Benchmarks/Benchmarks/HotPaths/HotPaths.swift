// Parser and model hot paths on the real samples (SampleTraces/real), with allocation counts.
// One iteration = the next 1000 trace events of the sample (scalingFactor .kilo): wall clock is per
// 1000 events, throughput is in events/s, and mallocs are per 1000 events (with --scale, which
// scripts/bench-hotpaths passes; without it the tool divides the counts by 1000 and rounds).
// Run: scripts/bench-hotpaths (see docs/benchmarks.md).
import Benchmark
import BenchSupport
import Models

let benchmarks: @Sendable () -> Void = {
    // Not .peakMemoryResident: sampling it makes the benchmark framework itself malloc 16 times inside
    // every measured iteration, which would swamp the hot paths' own counts (add it with --metric).
    let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal, .mallocBytesCount]

    /// Registers `name`: `load` builds the state once, in the benchmark's setup (unmeasured); each
    /// iteration measures one `step` (one slice of 1000 events) after an unmeasured `prepare`.
    func hotPath(_ name: String, _ load: @escaping () throws -> HotPath) {
        var path: HotPath?
        Benchmark(name, configuration: .init(
            metrics: metrics, warmupIterations: 20, scalingFactor: .kilo,
            maxDuration: .seconds(2), maxIterations: 20_000,
            setup: { path = try load() }, teardown: { path = nil })
        ) { benchmark in
            let p = path!
            p.prepare()
            benchmark.startMeasurement()
            p.step()
            benchmark.stopMeasurement()
        }
    }

    hotPath("parse: FtraceTextReader, x86_64 text") { ParsePath(try Cache.sample(Samples.x86_64)) }
    hotPath("parse: FtraceTextReader, i386 text") { ParsePath(try Cache.sample(Samples.i386)) }
    hotPath("normalize: reader + EventNormalizer, x86_64 text") { NormalizePath(try Cache.sample(Samples.x86_64)) }
    hotPath("normalize: reader + EventNormalizer, i386 text") { NormalizePath(try Cache.sample(Samples.i386)) }
    hotPath("replay: HIGHMEM model, i386 events") {
        ReplayPath(try Cache.stream(Samples.i386), model: "highmem")
    }
    hotPath("replay: PKS model, i386 events") {
        ReplayPath(try Cache.stream(Samples.i386), model: "pks")
    }
    hotPath("replay: HIGHMEM model + SummaryBuilder, i386 events") {
        ReplayPath(try Cache.stream(Samples.i386), analysis: true, model: "highmem")
    }

    // A whole trace.dat iterated, record by record, with no decoding: the work of libtracecmd's own
    // iteration (open, read the pages, merge the CPUs, hand every record over) done both ways in the
    // same process. One iteration = the whole file. PROTREPLAY_BENCH_DAT names the file (default
    // bench-data/bench-60.none.dat, recorded as docs/benchmarks.md says; else the largest sample).
    let dat = TraceDatIteration.file()
    let whole: Benchmark.Configuration = .init(metrics: [.wallClock, .cpuTotal, .peakMemoryResident], warmupIterations: 1,
                                               maxDuration: .seconds(20), maxIterations: 15)
    Benchmark("iterate trace.dat: protreplay pages + CPU merge into pieces", configuration: whole) { benchmark in
        blackHole(try TraceDatIteration.protreplay(dat))
    }
    Benchmark("iterate trace.dat: libtracecmd tracecmd_iterate_events_multi", configuration: whole) { benchmark in
        blackHole(TraceDatIteration.libtracecmd(dat))
    }
}

/// Samples are read (and normalized, for the replay benchmarks) once per process.
enum Cache {
    nonisolated(unsafe) static var samples: [String: TextSample] = [:]
    nonisolated(unsafe) static var streams: [String: ProtStream] = [:]

    static func sample(_ path: String) throws -> TextSample {
        if let s = samples[path] { return s }
        let s = try TextSample(path)
        samples[path] = s
        return s
    }

    static func stream(_ path: String) throws -> ProtStream {
        if let s = streams[path] { return s }
        let s = ProtStream(try sample(path))
        streams[path] = s
        return s
    }
}
