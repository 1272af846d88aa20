import Dispatch
import Foundation
import TraceIngest
import EventModel
import Replay
import Models
import Analysis
import Reports

/// How the reading thread of a pipelined run ended (read after `done` is signalled).
private final class ReadOutcome: @unchecked Sendable {
    var error: Error?
    let done = DispatchSemaphore(value: 0)
}

/// Wires the stages for one input: bytes -> RawEvent -> ProtEvent -> replay -> models -> summary.
final class Pipeline {
    let input: TraceInput
    let names = StringTable()
    let comms = StringTable()
    let symbols = StringTable()
    /// The reading side's resolver (learns the layout from the trace; reported).
    let resolver: AddressResolver
    /// The models' resolver: the same object when serial; a copy kept in step when pipelined.
    let modelResolver: AddressResolver
    /// Reading + normalizing on one thread, replay + models + analysis on this one (text inputs,
    /// more than one CPU, unless PROTREPLAY_READER_THREADS=1). Same results as serial.
    let pipelined: Bool
    let normalizer: EventNormalizer
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
    /// Called after every chunk read with the input bytes handed out so far and the events read.
    var progress: ((_ bytes: Int, _ events: Int) -> Void)?

    /// - Parameter configurations: what-if replays: one set of models per configuration, all replayed in
    ///   this one pass over the input, each folded separately (`report(configuration:)`).
    init(path: String, options: ModelOptions, strict: Bool, selection: ModelSelection?, configurations: [ModelSelection] = []) throws {
        input = try TraceInput(path: path, forcedFormat: try options.inputFormat())
        var probeMap = ProbeMap()
        if let pm = options.probeMap { try probeMap.load(path: pm) }
        resolver = AddressResolver(profile: try options.profile(), userFixedLayout: options.fixesLayout, userFixedArch: options.arch != nil)
        let oneThread = ProcessInfo.processInfo.environment["PROTREPLAY_READER_THREADS"] == "1"
        pipelined = !oneThread && ProcessInfo.processInfo.activeProcessorCount > 1 &&
            [.ftraceText, .traceCmdReport, .perfScript].contains(input.format)
        modelResolver = pipelined ? AddressResolver(profile: resolver.profile, userFixedLayout: resolver.userFixedLayout,
                                                    userFixedArch: resolver.userFixedArch) : resolver
        normalizer = EventNormalizer(probeMap: probeMap, resolver: resolver, names: names, comms: comms, symbols: symbols,
                                     strict: strict, sourceName: path)
        let builder = SummaryBuilder(comms: comms, symbols: symbols)
        self.builder = builder
        var ms = try selection?.makeModels(resolver: modelResolver, symbols: symbols) ?? []
        autoSelect = selection?.isAuto ?? false
        for c in configurations {
            let isolated = try c.makeModels(resolver: modelResolver, symbols: symbols).map { builder.isolate($0) }
            configurationModels.append(isolated)
            configurationAuto.append(c.isAuto)
            ms += isolated
        }
        models = ms
        for m in ms { builder.register(m) }
        engine = ReplayEngine(models: ms, sink: builder)
        normalizer.connect(engine)
        if selection != nil { normalizer.wantedTags = engine.wantedTags }
    }

    /// Reads the whole input. In strict mode stops at the first malformed line.
    func run() throws {
        let n = normalizer
        let displayPath = input.path == "-" ? "<stdin>" : input.path
        let read = {
            try TraceReader(names: self.names).read(self.input, into: n) {
                self.progress?(self.input.bytesRead, n.stats.events)
                if let f = n.strictFailure {
                    throw Failure(description: "\(displayPath):\(f.line): byte \(f.offset): \(f.reason): \(f.text)")
                }
            }
            n.finish()
        }
        if pipelined {
            let pipe = ProtEventPipe(resolver: resolver)
            n.connect(pipe)
            let outcome = ReadOutcome()
            DispatchQueue.global(qos: .userInitiated).async {
                do { try read() } catch { outcome.error = error }
                pipe.close()
                outcome.done.signal()
            }
            pipe.drain(into: engine, resolver: modelResolver)
            outcome.done.wait()
            if let e = outcome.error { throw e }
        } else {
            try read()
        }
        engine.finish()
        if normalizer.stats.events == 0 && normalizer.stats.malformed == 0 && normalizer.stats.stackTraces == 0 {
            throw Failure(description: "\(displayPath): no trace events found (only header or blank lines)")
        }
    }

    func report() -> TraceReport {
        let unmapped = normalizer.nameSummaries().filter { $0.mapsTo == "unmapped" }.map { ($0.name, $0.count) }.sorted { $0.0 < $1.0 }
        return TraceReport(
            input: .init(path: input.path, format: input.format.rawValue, compression: input.compression.rawValue,
                         bytes: input.sizeOnDisk ?? input.bytesRead),
            ingest: normalizer.stats, replay: engine.stats, profile: resolver.profile, calibration: resolver.calibration,
            unmappedByName: unmapped, models: reportedModels.map { builder.summary(for: $0) })
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
