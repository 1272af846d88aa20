import Foundation
import TraceIngest
import EventModel
import Replay
import Models
import Analysis
import Reports

/// The whole pipeline for one input: bytes -> RawEvent -> ProtEvent -> address learning -> replay ->
/// models -> summary -> report. The command line, the tests and the fuzzers run traces through it; the
/// stages themselves never know about each other beyond the next one.
public final class Pipeline {
    public let input: TraceInput
    public let comms = StringTable()
    public let symbols = StringTable()
    /// Learns the layout from the trace (`AddressFact`s, applied in trace order); the models resolve with it.
    let resolver: AddressResolver
    /// Reads and normalizes the input: text on every CPU (`PROTREPLAY_READER_THREADS=N` to choose;
    /// 1 reads on this thread), with the same results for any number of threads.
    public let source: ProtEventSource
    let engine: ReplayEngine
    /// Folds the observations; hook `windowObserver`/`accessObserver` or `collectTimeline` before `run()`.
    public let builder: SummaryBuilder
    let models: [ProtectionModel]

    /// A trace that cannot be read to the end (`--strict` and a malformed line, or no events at all).
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `--pid`/`--comm`/`--cpu`/`--time`, when given (`SummaryBuilder.filter` for the rule).
    public private(set) var filter: EventFilter?
    /// `--by-phase`/`--phase`: the markers seen, as segments.
    private var phaseTracker: PhaseTracker?
    private var phaseSettings: (marker: String, only: String?)?
    /// `--model auto`: report only the models whose events the trace had.
    let autoSelect: Bool
    /// The arch came from the settings (`--arch`), not from the trace.
    let archGiven: Bool
    /// What-if replays: the models of each configuration (isolated instances; `models` holds them all).
    private(set) var configurationModels: [[ProtectionModel]] = []
    private var configurationAuto: [Bool] = []
    /// Called after every piece read with the input bytes read so far and the events read.
    public var progress: ((_ bytes: Int, _ events: Int) -> Void)?

    /// - Parameters:
    ///   - selection: the models to run, nil for none (`protreplay events`).
    ///   - configurations: what-if replays: one set of models per configuration, all replayed in this one
    ///     pass over the input, each folded separately (`report(configuration:)`).
    /// - Throws: `ConfigurationError` for settings or model options that are not valid, `InputError` for
    ///   an input that cannot be opened.
    public init(path: String, settings: TraceSettings, strict: Bool = false, selection: ModelConfiguration?,
                configurations: [ModelConfiguration] = []) throws {
        input = try TraceInput(path: path, forcedFormat: settings.inputFormat)
        archGiven = settings.arch != nil
        var probeMap = ProbeMap()
        if let pm = settings.probeMap { try probeMap.load(path: pm) }
        if let ks = settings.kallsyms { probeMap.kernelSymbols = try KernelSymbols(path: ks) }
        resolver = AddressResolver(profile: try settings.profile(), userFixedLayout: settings.fixesLayout, userFixedArch: settings.arch != nil)
        source = ProtEventSource(input: input, probeMap: probeMap, comms: comms, symbols: symbols, strict: strict,
                                 threads: settings.readerThreads ?? Pipeline.readerThreads, pieceSize: settings.pieceSize ?? Pipeline.pieceSize)
        source.traceDatReader = settings.traceDatReader
        let builder = SummaryBuilder(comms: comms, symbols: symbols)
        self.builder = builder
        let context = ModelBuildContext(resolver: resolver, symbols: symbols)
        func build(_ c: ModelConfiguration) throws -> [ProtectionModel] {
            do { return try c.makeModels(context) } catch let e as ModelConfiguration.Invalid { throw ConfigurationError(e.description) }
        }
        var ms = try selection.map(build) ?? []
        autoSelect = selection?.isAuto ?? false
        for c in configurations {
            let isolated = try build(c).map { builder.isolate($0) }
            configurationModels.append(isolated)
            configurationAuto.append(c.isAuto)
            ms += isolated
        }
        models = ms
        for m in ms { builder.register(m) }
        let limit = LiveStateLimit(cap: max(1, settings.maxLiveEntries))
        let sourceName = input.path == "-" ? "<stdin>" : input.path
        limit.onFirstRefusal = { Pipeline.warn($0.warning(source: sourceName)) }
        resolver.onDirectMapBaseDefaulted = { Pipeline.warn("\(sourceName): \($0)") }
        let engine = ReplayEngine(models: ms, sink: builder, limit: limit)
        self.engine = engine
        builder.replayEngine = engine
        if selection != nil { source.wantedTags = engine.wantedTags }
        if let f = settings.filter, !f.isEmpty {
            filter = f
            source.filter = f
            builder.filter = f
        }
        if settings.usesPhases {
            let phases = PhaseSegments()
            source.phaseMarker = Array(settings.phaseMarker.utf8)
            source.wantedTags?.insert(.marker)
            builder.phases = phases
            builder.byPhase = settings.byPhase
            builder.onlyPhase = settings.onlyPhase
            phaseTracker = PhaseTracker(phases: phases, symbols: symbols, downstream: engine)
            phaseSettings = (settings.phaseMarker, settings.onlyPhase)
        }
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
    public func run() throws {
        let displayPath = input.path == "-" ? "<stdin>" : input.path
        try source.run(into: AddressLearning(resolver: resolver, downstream: phaseTracker ?? engine)) { bytes in
            self.progress?(bytes, self.source.stats.events)
            if let f = self.source.strictFailure {
                throw Failure(description: "\(displayPath):\(f.line): byte \(f.offset): \(f.reason): \(f.text)")
            }
        }
        engine.finish()
        phaseTracker?.phases.finish(at: engine.stats.lastTimestamp)
        for (table, what) in [(comms, "comm names"), (symbols, "symbols")] where table.overflowCount > 0 {
            Pipeline.warn("\(displayPath): \(table.capacityLimit) distinct \(what) interned (the string table cap); later new ones read as <overflow> (\(table.overflowCount) refused, in \(what == "symbols" ? "symbols_refused" : "comm_names_refused"))")
        }
        let stats = source.stats
        if stats.events == 0 && stats.stackTraces == 0 {
            // A file with only lines that are not trace lines is not a trace (bad input, exit status 2).
            if let first = stats.malformedExamples.first {
                throw Failure(description: "\(displayPath): not a trace: no trace events, \(stats.malformed) lines that are not (first: line \(first.line): \(first.reason))")
            }
            // A well-formed binary trace can hold no records (nothing fired while it was recorded): a report of 0 events.
            guard input.format.isBinary else {
                throw Failure(description: "\(displayPath): no trace events found (only header or blank lines)")
            }
            Pipeline.warn("\(displayPath): the \(input.format.rawValue) file is well formed but holds no events (nothing was recorded in its buffers)")
        }
        // Kprobes printed as bare addresses (trace-cmd report without symbols) that neither --kallsyms nor
        // their event name could name stay unmapped: say so, they may be the probes a model needs.
        let unnamed = source.nameSummaries().filter { e in
            e.mapsTo == "unmapped" && e.function.map { f in Array(f.utf8).withUnsafeBytes { KernelSymbols.address($0) != nil } } ?? false
        }
        if !unnamed.isEmpty {
            let list = unnamed.prefix(5).map { "\($0.name) (\($0.count))" }.joined(separator: ", ")
            Pipeline.warn("\(displayPath): \(unnamed.count) kprobe event name(s) print their probe as a bare address and map to no probed function: \(list)\(unnamed.count > 5 ? ", ..." : ""); pass --kallsyms FILE (the traced kernel's /proc/kallsyms) to name them")
        }
        // What the report says in its header goes to stderr too, so `-o`/JSON runs are not silent.
        if stats.malformed > 0 {
            let first = stats.malformedExamples.first.map { "; first at line \($0.line): \($0.reason)" } ?? ""
            Pipeline.warn("\(displayPath): \(stats.malformed) malformed lines, counted and skipped (trace.malformed)\(first)")
        }
        if engine.stats.timestampsBackwards > 0 {
            Pipeline.warn("\(displayPath): \(engine.stats.timestampsBackwards) events with a timestamp lower than the one before, kept in file order (trace.timestamps_backwards)")
        }
    }

    /// One warning line on stderr (clearing a progress line first when stderr is a terminal).
    public static func warn(_ message: String) {
        fputs((isatty(2) != 0 ? "\r\u{1b}[K" : "") + "protreplay: warning: " + message + "\n", stderr)
    }

    /// The report of the main selection.
    public func report() -> ReportDocument {
        let events = source.nameSummaries()
        let unmapped = events.filter { $0.mapsTo == "unmapped" }.map { ($0.name, $0.count) }.sorted { $0.0 < $1.0 }
        var doc = ReportDocument(
            input: .init(path: input.path, format: input.format.rawValue, compression: input.compression.rawValue,
                         bytes: input.sizeOnDisk ?? input.bytesRead),
            ingest: source.stats, replay: engine.stats, profile: resolver.profile, calibration: resolver.calibration,
            unmappedByName: unmapped, models: summaries(ownModels, auto: autoSelect, events: events),
            stringsRefused: (comms.overflowCount, symbols.overflowCount), archGiven: archGiven)
        doc.tool = ToolVersion.section
        if let t = phaseTracker, let p = phaseSettings {
            doc.phases = .init(marker: p.marker, only: p.only, segments: t.phases.segments.map {
                .init(name: $0.name, startNs: $0.startNs, endNs: $0.endNs ?? $0.startNs, startLine: $0.startLine, endLine: $0.endLine)
            })
        }
        if let f = filter { doc.filter = .init(description: f.description, eventsMatched: source.stats.eventsMatched) }
        return doc
    }

    /// The models of the main selection (what-if configurations excluded).
    private var ownModels: [ProtectionModel] {
        configurationModels.isEmpty ? models : Array(models.prefix(models.count - configurationModels.reduce(0) { $0 + $1.count }))
    }

    /// Each model's summary with its coverage of this trace. With `--model auto`: only the models whose
    /// events were present (all of them if none was), observed ones first.
    private func summaries(_ all: [ProtectionModel], auto: Bool, events: [EventNormalizer.NameSummary]) -> [ModelSummary] {
        let applicable = all.filter(\.applicable)
        let ms = auto && !applicable.isEmpty ? applicable : all
        let out = ms.map { m -> ModelSummary in
            var s = builder.summary(for: m)
            s.coverage = ModelCoverage.evaluate(m.requirements, events: events)
            return s
        }
        guard auto else { return out }
        return out.filter { $0.coverage?.basis == .observed } + out.filter { $0.coverage?.basis != .observed }
    }

    /// The report of what-if configuration `i` (same input, its own models).
    public func report(configuration i: Int) -> ReportDocument {
        var r = report()
        r.models = summaries(configurationModels[i], auto: configurationAuto[i], events: source.nameSummaries())
        return r
    }
}
