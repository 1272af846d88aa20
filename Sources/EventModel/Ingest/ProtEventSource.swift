import TraceIngest

/// Turns one trace input into normalized events for a sink, whatever its format: text in pieces
/// parsed on `threads` threads (`ParallelTextIngest`), perf.data in chunks of ordered records decoded
/// on `threads` threads (`ParallelPerfDataIngest`), trace.dat (and perf.data on one thread) through
/// its reader and one normalizer. The events, their order and the statistics are the same for any
/// number of threads.
///
///     let source = ProtEventSource(input: input, probeMap: map, comms: comms, symbols: symbols, threads: 2)
///     try source.run(into: AddressLearning(resolver: resolver, downstream: engine)) { bytes in ... }
public final class ProtEventSource {
    public let input: TraceInput
    public let probeMap: ProbeMap
    public let comms: StringTable
    public let symbols: StringTable
    public let strict: Bool
    /// Threads that parse text or decode perf.data (1: everything on the calling thread).
    public let threads: Int
    /// About how many bytes of text (or of perf.data records) one thread parses at a time.
    public let pieceSize: Int
    /// Kinds the replay will use (see `EventNormalizer.wantedTags`). Set before `run`.
    public var wantedTags: Set<ProtEventTag>?
    /// Events matching it are counted (`IngestStats.eventsMatched`, `NameSummary.matched`). Set before `run`.
    public var filter: EventFilter?
    /// Phase markers (`EventNormalizer.phaseMarker`). Set before `run`.
    public var phaseMarker: [UInt8]?
    /// How trace.dat records are read (direct page decoding, or libtracecmd's iteration). Set before `run`.
    public var traceDatReader: TraceDatReaderKind = .direct

    /// Event names of a binary input.
    private let names = StringTable()
    private var text: ParallelTextIngest?
    private var perf: ParallelPerfDataIngest?
    private var binary: EventNormalizer?

    public init(input: TraceInput, probeMap: ProbeMap, comms: StringTable, symbols: StringTable,
                strict: Bool = false, threads: Int = 1, pieceSize: Int = 1 << 20) {
        self.input = input
        self.probeMap = probeMap
        self.comms = comms
        self.symbols = symbols
        self.strict = strict
        self.threads = threads
        self.pieceSize = pieceSize
    }

    /// Reads the whole input into `sink`.
    /// - Parameter check: called after every piece of text or every few thousand binary records with
    ///   the input bytes read so far; throw from it to stop (`strictFailure` is set by then).
    public func run(into sink: ProtEventSink, check: (_ bytes: Int) throws -> Void = { _ in }) throws {
        if !input.format.isBinary {
            let t = ParallelTextIngest(input: input, probeMap: probeMap, wantedTags: wantedTags, filter: filter, phaseMarker: phaseMarker, comms: comms, symbols: symbols,
                                      strict: strict, threads: threads, pieceSize: pieceSize)
            text = t
            try t.run(into: sink) { bytes in
                if strict, strictFailure == nil, let first = t.merger.stats.malformedExamples.first { strictFailure = first }
                try check(bytes)
            }
        } else if input.format == .perfData && threads > 1 {
            let (wantedTags, filter, phaseMarker, probeMap, strict, path) = (self.wantedTags, self.filter, self.phaseMarker, self.probeMap, self.strict, input.path)
            let names = self.names
            let p = ParallelPerfDataIngest(input: input, names: names, threads: threads, chunkBytes: pieceSize, comms: comms, symbols: symbols) { comms, symbols in
                let n = EventNormalizer(probeMap: probeMap, names: names, comms: comms, symbols: symbols, strict: strict, sourceName: path)
                n.wantedTags = wantedTags
                n.filter = filter
                n.phaseMarker = phaseMarker
                return n
            }
            perf = p
            try p.run(into: sink) { bytes in
                if strict, strictFailure == nil, let first = p.merger.stats.malformedExamples.first { strictFailure = first }
                try check(bytes)
            }
            try check(input.bytesRead)
        } else {
            let n = EventNormalizer(probeMap: probeMap, names: names, comms: comms, symbols: symbols, strict: strict,
                                    sourceName: input.path)
            n.wantedTags = wantedTags
            n.filter = filter
            n.phaseMarker = phaseMarker
            n.connect(sink)
            binary = n
            try TraceReader(names: names, traceDatReader: traceDatReader).read(input, into: n) {
                strictFailure = n.strictFailure
                try check(input.bytesRead)
            }
            n.finish()
        }
    }

    /// In `--strict` mode, the first malformed line (the read stops at it).
    public private(set) var strictFailure: MalformedLine?

    /// What was read: events, malformed lines (with the first few), lost events.
    public var stats: IngestStats { text?.merger.stats ?? perf?.merger.stats ?? binary?.stats ?? IngestStats() }

    /// Every event name with its count and what it maps to, sorted by name.
    public func nameSummaries() -> [EventNormalizer.NameSummary] {
        text?.nameSummaries() ?? perf?.nameSummaries() ?? binary?.nameSummaries().sorted { $0.name < $1.name } ?? []
    }
}
