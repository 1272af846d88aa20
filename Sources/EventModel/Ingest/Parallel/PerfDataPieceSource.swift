import TraceIngest

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
