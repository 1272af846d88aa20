import TraceIngest
import EventModel
import Replay
import Models
import Analysis
import Reports

/// Wires the stages for one input: bytes -> RawEvent -> ProtEvent -> replay -> models -> summary.
final class Pipeline {
    let input: TraceInput
    let names = StringTable()
    let comms = StringTable()
    let symbols = StringTable()
    let resolver: AddressResolver
    let normalizer: EventNormalizer
    let engine: ReplayEngine
    let builder: SummaryBuilder
    let models: [ProtectionModel]

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    init(path: String, options: ModelOptions, strict: Bool, modelNames: [String]) throws {
        input = try TraceInput(path: path)
        guard input.format == .ftraceText else {
            throw InputError.unsupportedFormat(path: path, detected: input.format.rawValue)
        }
        var probeMap = ProbeMap()
        if let pm = options.probeMap { try probeMap.load(path: pm) }
        resolver = AddressResolver(profile: try options.profile(), userFixedLayout: options.fixesLayout, userFixedArch: options.arch != nil)
        normalizer = EventNormalizer(probeMap: probeMap, resolver: resolver, names: names, comms: comms, symbols: symbols,
                                     strict: strict, sourceName: path)
        builder = SummaryBuilder(comms: comms, symbols: symbols)
        var ms: [ProtectionModel] = []
        for name in modelNames {
            switch name {
            case "highmem": ms.append(HighmemModel(resolver: resolver))
            default: throw Failure(description: "unknown model '\(name)'; available: highmem")
            }
        }
        models = ms
        for m in ms { builder.register(m) }
        engine = ReplayEngine(models: ms, sink: builder)
        normalizer.connect(engine)
    }

    /// Reads the whole input. In strict mode stops at the first malformed line.
    func run() throws {
        let reader = FtraceTextReader(names: names)
        let n = normalizer
        let displayPath = input.path == "-" ? "<stdin>" : input.path
        try input.forEachChunk { chunk, offset in
            reader.read(chunk, offset: offset, into: n)
            if let f = n.strictFailure {
                throw Failure(description: "\(displayPath):\(f.line): byte \(f.offset): \(f.reason): \(f.text)")
            }
        }
        normalizer.finish()
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
            unmappedByName: unmapped, models: models.map { builder.summary(for: $0) })
    }
}
