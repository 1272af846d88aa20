import Dispatch
import TraceIngest
#if canImport(Glibc)
import Glibc
#endif

/// What one piece turned into: its events, in order, numbered within the piece.
struct ParsedPiece: @unchecked Sendable {
    /// Strings a worker interned for the first time in this piece (its ids `first...`), in id order.
    struct NewStrings {
        var first: StringTable.ID = 1
        var bytes: [UInt8] = []
        var lengths: [Int] = []
    }

    /// The text piece (nil for a perf.data chunk, which has nothing to release).
    var piece: TextPiece?
    var worker: Int
    var items: [ProtEventItem]
    /// Lines in the piece (line numbers in it start at 1).
    var lines: Int
    var stats: IngestStats
    var newComms: NewStrings
    var newSymbols: NewStrings
    /// Input bytes read up to the end of the piece (progress, `check`).
    var progress: Int
    /// What stopped the piece early (a corrupt record): its items up to there are kept.
    var error: Error?
}

/// Parses and normalizes pieces with its own reader, normalizer and string tables.
final class PieceWorker {
    let index: Int
    let names = StringTable(), comms = StringTable(), symbols = StringTable()
    let reader: TextTraceReader
    let normalizer: EventNormalizer
    private let recorder = ProtEventRecorder()
    /// Ids below these were handed to the merger with an earlier piece.
    private var announcedComms = 1, announcedSymbols = 1

    init(index: Int, format: TraceFormat, probeMap: ProbeMap, wantedTags: Set<ProtEventTag>?, filter: EventFilter? = nil,
         phaseMarker: [UInt8]? = nil, strict: Bool, sourceName: String) {
        self.index = index
        reader = format.makeTextReader(names: names)!
        normalizer = EventNormalizer(probeMap: probeMap, names: names, comms: comms, symbols: symbols,
                                     strict: strict, sourceName: sourceName)
        normalizer.wantedTags = wantedTags
        normalizer.filter = filter
        normalizer.phaseMarker = phaseMarker
        normalizer.connect(recorder)
    }

    func parse(_ piece: TextPiece) -> ParsedPiece {
        recorder.items.reserveCapacity(piece.bytes.count / 64)
        reader.beginPiece()
        normalizer.beginPiece()
        reader.read(piece.bytes, offset: piece.offset, into: normalizer)
        normalizer.finish()
        let parsed = ParsedPiece(piece: piece, worker: index, items: recorder.items, lines: reader.lineNumber, stats: normalizer.stats,
                                 newComms: PieceWorker.newStrings(comms, &announcedComms), newSymbols: PieceWorker.newStrings(symbols, &announcedSymbols),
                                 progress: piece.offset + piece.bytes.count)
        recorder.items = []
        return parsed
    }

    /// The strings of `table` from id `announced` on (interned since the last piece), and moves `announced` past them.
    static func newStrings(_ table: StringTable, _ announced: inout Int) -> ParsedPiece.NewStrings {
        var s = ParsedPiece.NewStrings(first: StringTable.ID(announced))
        while announced < table.count {
            s.lengths.append(table.appendBytes(of: StringTable.ID(announced), to: &s.bytes))
            announced += 1
        }
        return s
    }
}
