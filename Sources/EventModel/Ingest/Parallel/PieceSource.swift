import TraceIngest

/// Where a parallel read (`ParallelIngest`) gets its pieces, and how a worker decodes one.
protocol PieceSource: AnyObject {
    /// The event names every decoder uses, all interned before any thread runs (perf.data names its
    /// events when it reads the headers); nil: each worker interns into a table of its own.
    var sharedNames: StringTable? { get }
    /// A decoder for one worker, whose event names go into `names`. Made on the calling thread,
    /// before any piece is read.
    func makeDecoder(names: StringTable) -> PieceDecoder
    /// Calls `body` with consecutive pieces, in input order, all on one thread.
    func forEachPiece(_ body: (InputPiece) throws -> Void) throws
}

/// Decodes pieces into raw events on one worker thread.
protocol PieceDecoder: AnyObject {
    /// Every record of `piece` into `sink`; returns how many lines (text) or records (binary) it held.
    func decode(_ piece: InputPiece, into sink: RawEventSink) throws -> Int
}

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

/// A perf.data's records in pieces (`PerfRecordChunk`s of about `chunkBytes` bytes): ordered on the
/// producing thread as perf orders them (`FINISHED_ROUND`, zstd-compressed records, the comm of
/// every sample's thread from the COMM/FORK records before it), decoded on the workers.
final class PerfDataPieceSource: PieceSource {
    let records: PerfDataRecords
    let chunkBytes: Int
    let sharedNames: StringTable?
    /// Chunks merged and given back, for the producing thread to fill again.
    private let pool = ReusePool<PerfRecordChunk>()

    init(_ records: PerfDataRecords, names: StringTable, chunkBytes: Int) {
        self.records = records
        sharedNames = names
        self.chunkBytes = max(chunkBytes, 256)
    }

    func makeDecoder(names: StringTable) -> PieceDecoder { Decoder(records.makeDecoders(1)[0]) }

    /// Every chunk made: the filler holds the one it fills unretained.
    private var chunks: [PerfRecordChunk] = []

    func forEachPiece(_ body: (InputPiece) throws -> Void) throws {
        let records = self.records, pool = self.pool
        try records.forEachChunk(chunkBytes: chunkBytes, next: {
            pool.take {
                let c = PerfRecordChunk()
                chunks.append(c)
                return c
            }
        }, send: { chunk in
            try body(Piece(chunk: chunk, release: { records.releaseMerged(chunk); pool.put(chunk) }))
        })
    }

    /// A chunk, and what to do once it was merged (give the mapped file below it back, reuse it).
    private struct Piece: InputPiece, @unchecked Sendable {
        let chunk: PerfRecordChunk
        let release: @Sendable () -> Void
        var endOffset: Int { chunk.progressOffset }
        var expectedItems: Int { chunk.count + 16 }
        var releaseLater: @Sendable () -> Void { release }
    }

    private final class Decoder: PieceDecoder {
        let decoder: PerfChunkDecoder
        init(_ decoder: PerfChunkDecoder) { self.decoder = decoder }
        func decode(_ piece: InputPiece, into sink: RawEventSink) throws -> Int {
            try decoder.decode((piece as! Piece).chunk, into: sink)
            return decoder.emitted
        }
    }
}
