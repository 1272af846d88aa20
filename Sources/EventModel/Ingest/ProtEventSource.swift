import TraceIngest

/// Turns one trace input into normalized events for a sink, whatever its format: text, trace.dat
/// records (read directly) and perf.data records (ordered as perf orders them) in pieces decoded on
/// `threads` threads (`ParallelIngest`); trace.dat through libtracecmd, and perf.data on one thread,
/// through their reader and one normalizer. The events, their order and the statistics are the same
/// for any number of threads.
///
///     let source = ProtEventSource(input: input, probeMap: map, comms: comms, symbols: symbols, threads: 2)
///     try source.run(into: AddressLearning(resolver: resolver, downstream: engine)) { bytes in ... }
public final class ProtEventSource {
    public let input: TraceInput
    public let probeMap: ProbeMap
    public let comms: StringTable
    public let symbols: StringTable
    public let strict: Bool
    /// Threads that decode pieces (1: everything on the calling thread).
    public let threads: Int
    /// About how many bytes of text (or of perf.data records) one thread decodes at a time (a
    /// trace.dat piece holds a 128th as many records).
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
    private var parallel: ParallelIngest?
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
            try runInPieces(TextPieceSource(input: input, pieceSize: pieceSize), into: sink, check: check)
        } else if input.format == .traceDat, traceDatReader == .direct,
                  try traceDatDirectReader().readInPieces(input, recordsPerPiece: max(1, pieceSize / 128), { pieces in
                      try runInPieces(TraceDatPieceSource(pieces), into: sink, check: check)
                  }) {
            return
        } else if input.format == .perfData && threads > 1 {
            try PerfDataReader(names: names).withRecords(input) { records in
                try runInPieces(PerfDataPieceSource(records, names: names, chunkBytes: pieceSize), into: sink, check: check)
            }
            try check(input.bytesRead)
        } else {
            let n = EventNormalizer(probeMap: probeMap, names: names, comms: comms, symbols: symbols, strict: strict,
                                    sourceName: input.path, into: sink)
            n.wantedTags = wantedTags
            n.filter = filter
            n.phaseMarker = phaseMarker
            binary = n
            try TraceReader(names: names, traceDatReader: traceDatReader).read(input, into: n) {
                strictFailure = n.strictFailure
                try check(input.bytesRead)
            }
            n.finish()
        }
    }

    /// The direct trace.dat reader, parsing only the formats of the events whose fields the
    /// normalizer reads (the others count by name: unmapped, ignored, or of a kind no model uses).
    private func traceDatDirectReader() -> TraceDatReader {
        let reader = TraceDatReader(names: names, kind: .direct)
        let reads = probeMap.tracepointFieldReader(wantedTags: wantedTags)
        reader.eventsWanted = { _, name in reads(name) }
        return reader
    }

    private func runInPieces(_ source: PieceSource, into sink: ProtEventSink, check: (_ bytes: Int) throws -> Void) throws {
        let p = ParallelIngest(source: source, probeMap: probeMap, wantedTags: wantedTags, filter: filter, phaseMarker: phaseMarker,
                               comms: comms, symbols: symbols, strict: strict, threads: threads, sourceName: input.path)
        parallel = p
        try p.run(into: sink) { bytes in
            if strict, strictFailure == nil, let first = p.merger.stats.malformedExamples.first { strictFailure = first }
            try check(bytes)
        }
    }

    /// In `--strict` mode, the first malformed line (the read stops at it).
    public private(set) var strictFailure: MalformedLine?

    /// What was read: events, malformed lines (with the first few), lost events.
    public var stats: IngestStats { parallel?.merger.stats ?? binary?.stats ?? IngestStats() }

    /// Every event name with its count and what it maps to, sorted by name.
    public func nameSummaries() -> [EventNormalizer.NameSummary] {
        parallel?.nameSummaries() ?? binary?.nameSummaries().sorted { $0.name < $1.name } ?? []
    }
}
