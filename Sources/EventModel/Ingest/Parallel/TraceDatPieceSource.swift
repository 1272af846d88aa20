import TraceIngest

/// A trace.dat's records in pieces (`TraceDatPieces`): the ring-buffer pages are walked and the
/// CPUs merged on the producing thread, the records decoded on the workers.
final class TraceDatPieceSource: PieceSource {
    let pieces: TraceDatPieces
    init(_ pieces: TraceDatPieces) { self.pieces = pieces }

    var sharedNames: StringTable? { nil }

    func makeDecoder(names: StringTable) -> PieceDecoder { Decoder(pieces.makeDecoder(names: names)) }

    func forEachPiece(_ body: (InputPiece) throws -> Void) throws {
        try pieces.forEachPiece { try body($0) }
    }

    private final class Decoder: PieceDecoder {
        let decoder: RecordPieceDecoder
        init(_ decoder: RecordPieceDecoder) { self.decoder = decoder }
        func decode(_ piece: InputPiece, into sink: RawEventSink) throws -> Int {
            try decoder.decode(piece as! RecordPiece, into: sink)
        }
    }
}
