import Foundation
import TraceIngest
import EventModel
import Replay
import Models
import Analysis
import Reports

/// Wires the stages for one input: bytes -> RawEvent -> ProtEvent -> replay -> models -> summary.
final class Pipeline {
    let input: TraceInput
    let comms = StringTable()
    let symbols = StringTable()
    /// Learns the layout from the trace (`AddressFact`s, applied in trace order); the models resolve with it.
    let resolver: AddressResolver
    /// Reads and normalizes the input: text on every CPU (`PROTREPLAY_READER_THREADS=N` to choose;
    /// 1 reads on this thread), with the same results for any number of threads.
    let source: ProtEventSource
    let engine: ReplayEngine
    let builder: SummaryBuilder
    let models: [ProtectionModel]

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `--model auto`: report only the models whose events the trace had.
    let autoSelect: Bool
    /// What-if replays: the models of each configuration (isolated instances; `models` holds them all).
    private(set) var configurationModels: [[ProtectionModel]] = []
    private var configurationAuto: [Bool] = []
    /// Called after every piece read with the input bytes read so far and the events read.
    var progress: ((_ bytes: Int, _ events: Int) -> Void)?

    /// - Parameter configurations: what-if replays: one set of models per configuration, all replayed in
    ///   this one pass over the input, each folded separately (`report(configuration:)`).
    init(path: String, options: ModelOptions, strict: Bool, selection: ModelSelection?, configurations: [ModelSelection] = []) throws {
        input = try TraceInput(path: path, forcedFormat: try options.inputFormat())
        var probeMap = ProbeMap()
        if let pm = options.probeMap { try probeMap.load(path: pm) }
        if let ks = options.kallsyms { probeMap.kernelSymbols = try KernelSymbols(path: ks) }
        resolver = AddressResolver(profile: try options.profile(), userFixedLayout: options.fixesLayout, userFixedArch: options.arch != nil)
        source = ProtEventSource(input: input, probeMap: probeMap, comms: comms, symbols: symbols, strict: strict,
                                 threads: Pipeline.readerThreads, pieceSize: Pipeline.pieceSize)
        let builder = SummaryBuilder(comms: comms, symbols: symbols)
        self.builder = builder
        var ms = try selection?.makeModels(resolver: resolver, symbols: symbols) ?? []
        autoSelect = selection?.isAuto ?? false
        for c in configurations {
            let isolated = try c.makeModels(resolver: resolver, symbols: symbols).map { builder.isolate($0) }
            configurationModels.append(isolated)
            configurationAuto.append(c.isAuto)
            ms += isolated
        }
        models = ms
        for m in ms { builder.register(m) }
        let limit = LiveStateLimit(cap: max(1, options.maxLiveEntries))
        let sourceName = input.path == "-" ? "<stdin>" : input.path
        limit.onFirstRefusal = { Pipeline.warn($0.warning(source: sourceName)) }
        engine = ReplayEngine(models: ms, sink: builder, limit: limit)
        if selection != nil { source.wantedTags = engine.wantedTags }
    }

    /// `PROTREPLAY_READER_THREADS`, else one per CPU.
    static var readerThreads: Int {
        if let v = ProcessInfo.processInfo.environment["PROTREPLAY_READER_THREADS"], let n = Int(v), n >= 1 { return min(n, 64) }
        return ProcessInfo.processInfo.activeProcessorCount
    }

    /// `PROTREPLAY_PIECE_BYTES` (tests cut small inputs into many pieces with it), else 1 MiB.
    static var pieceSize: Int {
        if let v = ProcessInfo.processInfo.environment["PROTREPLAY_PIECE_BYTES"], let n = Int(v), n >= 256 { return n }
        return 1 << 20
    }

    /// Reads the whole input. In strict mode stops at the first malformed line.
    func run() throws {
        let displayPath = input.path == "-" ? "<stdin>" : input.path
        try source.run(into: AddressLearning(resolver: resolver, downstream: engine)) { bytes in
            self.progress?(bytes, self.source.stats.events)
            if let f = self.source.strictFailure {
                throw Failure(description: "\(displayPath):\(f.line): byte \(f.offset): \(f.reason): \(f.text)")
            }
        }
        engine.finish()
        for (table, what) in [(comms, "comm names"), (symbols, "symbols")] where table.overflowCount > 0 {
            Pipeline.warn("\(displayPath): \(table.capacityLimit) distinct \(what) interned (the string table cap); later new ones read as <overflow> (\(table.overflowCount) refused, in \(what == "symbols" ? "symbols_refused" : "comm_names_refused"))")
        }
        let stats = source.stats
        if stats.events == 0 && stats.malformed == 0 && stats.stackTraces == 0 {
            // A well-formed binary trace can hold no records (nothing fired while it was recorded): a report of 0 events.
            guard input.format.isBinary else {
                throw Failure(description: "\(displayPath): no trace events found (only header or blank lines)")
            }
            Pipeline.warn("\(displayPath): the \(input.format.rawValue) file is well formed but holds no events (nothing was recorded in its buffers)")
        }
    }

    /// One warning line on stderr (clearing a progress line first when stderr is a terminal).
    static func warn(_ message: String) {
        fputs((isatty(2) != 0 ? "\r\u{1b}[K" : "") + "protreplay: warning: " + message + "\n", stderr)
    }

    func report() -> TraceReport {
        let unmapped = source.nameSummaries().filter { $0.mapsTo == "unmapped" }.map { ($0.name, $0.count) }.sorted { $0.0 < $1.0 }
        var r = TraceReport(
            input: .init(path: input.path, format: input.format.rawValue, compression: input.compression.rawValue,
                         bytes: input.sizeOnDisk ?? input.bytesRead),
            ingest: source.stats, replay: engine.stats, profile: resolver.profile, calibration: resolver.calibration,
            unmappedByName: unmapped, models: reportedModels.map { builder.summary(for: $0) })
        r.stringsRefused = (comms.overflowCount, symbols.overflowCount)
        return r
    }

    /// With `--model auto`, the models whose events were present (all of them if none was).
    var reportedModels: [ProtectionModel] {
        let own = configurationModels.isEmpty ? models : Array(models.prefix(models.count - configurationModels.reduce(0) { $0 + $1.count }))
        guard autoSelect else { return own }
        let applicable = own.filter(\.applicable)
        return applicable.isEmpty ? own : applicable
    }

    /// The report of what-if configuration `i` (same input, its own models).
    func report(configuration i: Int) -> TraceReport {
        var r = report()
        var ms = configurationModels[i]
        if configurationAuto[i] {
            let applicable = ms.filter(\.applicable)
            if !applicable.isEmpty { ms = applicable }
        }
        r.models = ms.map { builder.summary(for: $0) }
        return r
    }
}
