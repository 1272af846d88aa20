import TraceIngest

/// A text trace (ftrace, `trace-cmd report`, `perf script`) in pieces of about `pieceSize` bytes,
/// cut before a line that starts a record (`TextTraceReader.startsRecord`).
final class TextPieceSource: PieceSource {
    let input: TraceInput
    let pieceSize: Int
    /// Only `startsRecord`, which reads nothing but the line, is used, from the producing thread.
    private let splitter: TextTraceReader

    init(input: TraceInput, pieceSize: Int) {
        self.input = input
        self.pieceSize = max(pieceSize, 256)
        splitter = input.format.makeTextReader(names: StringTable())!
    }

    var sharedNames: StringTable? { nil }

    func makeDecoder(names: StringTable) -> PieceDecoder { Decoder(input.format.makeTextReader(names: names)!) }

    func forEachPiece(_ body: (InputPiece) throws -> Void) throws {
        try input.forEachPiece(size: pieceSize, startsRecord: splitter.startsRecord) { try body($0) }
    }

    private final class Decoder: PieceDecoder {
        let reader: TextTraceReader
        init(_ reader: TextTraceReader) { self.reader = reader }
        func decode(_ piece: InputPiece, into sink: RawEventSink) throws -> Int {
            let text = piece as! TextPiece
            reader.beginPiece()
            reader.read(text.bytes, offset: text.offset, into: sink)
            return reader.lineNumber
        }
    }
}
