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

    /// How far into the input the piece reached (`InputPiece.endOffset`).
    var endOffset: Int
    var worker: Int
    var items: [ProtEventItem]
    /// Lines (records) in the piece (numbers in it start at 1).
    var lines: Int
    var stats: IngestStats
    var newComms: NewStrings
    var newSymbols: NewStrings
    /// What stopped the decoding of the piece after `items` (a record of an event the file does not
    /// define): the read ends there.
    var error: Error?
}

/// Decodes and normalizes pieces with its own decoder, normalizer and string tables.
final class PieceWorker {
    let index: Int
    let names: StringTable, comms = StringTable(), symbols = StringTable()
    let decoder: PieceDecoder
    let normalizer: EventNormalizer
    private let recorder = ProtEventRecorder()
    /// Ids below these were handed to the merger with an earlier piece.
    private var announcedComms = 1, announcedSymbols = 1

    init(index: Int, source: PieceSource, probeMap: ProbeMap, wantedTags: Set<ProtEventTag>?, filter: EventFilter? = nil,
         phaseMarker: [UInt8]? = nil, strict: Bool, sourceName: String) {
        self.index = index
        names = source.sharedNames ?? StringTable()
        decoder = source.makeDecoder(names: names)
        normalizer = EventNormalizer(probeMap: probeMap, names: names, comms: comms, symbols: symbols,
                                     strict: strict, sourceName: sourceName, into: recorder)
        normalizer.wantedTags = wantedTags
        normalizer.filter = filter
        normalizer.phaseMarker = phaseMarker
    }

    func parse(_ piece: InputPiece) -> ParsedPiece {
        recorder.items.reserveCapacity(piece.expectedItems)
        normalizer.beginPiece()
        var lines = 0
        var error: Error?
        do { lines = try decoder.decode(piece, into: normalizer) } catch let e { error = e }
        normalizer.finish()
        let parsed = ParsedPiece(endOffset: piece.endOffset, worker: index, items: recorder.items, lines: lines, stats: normalizer.stats,
                                 newComms: newStrings(comms, &announcedComms), newSymbols: newStrings(symbols, &announcedSymbols), error: error)
        recorder.items = []
        return parsed
    }

    private func newStrings(_ table: StringTable, _ announced: inout Int) -> ParsedPiece.NewStrings {
        var s = ParsedPiece.NewStrings(first: StringTable.ID(announced))
        while announced < table.count {
            s.lengths.append(table.appendBytes(of: StringTable.ID(announced), to: &s.bytes))
            announced += 1
        }
        return s
    }
}
