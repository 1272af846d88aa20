import CTraceCmd

/// A run of consecutive ring-buffer records of a trace.dat, in the merged timestamp order, copied out
/// of their pages so that a worker thread can decode them on its own (`RecordPieceDecoder`) while
/// the pages are read on.
///
/// Memory: about `RecordPiece.capacity` bytes; pieces are reused through their pool.
public final class RecordPiece: InputPiece, @unchecked Sendable {
    static let capacity = 512 << 10
    /// Records a piece holds at most, by default.
    public static let defaultMaxRecords = 8192
    private let maxRecords: Int
    struct Header { var ts: UInt64; var offset: Int; var missed: Int64; var cpu: Int32; var start: Int; var size: Int }
    private(set) var storage: UnsafeMutableRawPointer
    private var capacity = RecordPiece.capacity
    private var used = 0
    private(set) var headers: [Header] = []
    /// The last piece of a read (the two-thread path).
    var last = false
    /// Where the piece goes back to once released (nil: it is freed). Weak: the pool holds its free pieces.
    private weak var pool: ReusePool<RecordPiece>?
    /// How far into the file the reading had got when the piece was sent (the metadata and every
    /// CPU's data read so far), for progress.
    public internal(set) var endOffset = 0

    init(pool: ReusePool<RecordPiece>? = nil, maxRecords: Int = RecordPiece.defaultMaxRecords) {
        self.pool = pool
        self.maxRecords = max(1, maxRecords)
        storage = .allocate(byteCount: RecordPiece.capacity, alignment: 16)
        headers.reserveCapacity(self.maxRecords)
    }
    deinit { storage.deallocate() }

    func reset() { used = 0; headers.removeAll(keepingCapacity: true); last = false; endOffset = 0 }

    public var isEmpty: Bool { headers.isEmpty }
    public var count: Int { headers.count }
    public var expectedItems: Int { headers.count }

    /// Copies a record in; false (nothing copied) when the piece is full.
    @inline(__always)
    func append(ts: UInt64, cpu: Int32, offset: Int, missed: Int64, data: UnsafeRawPointer?, size: Int) -> Bool {
        if used + size > capacity || headers.count >= maxRecords { return false }
        appendAlways(ts: ts, cpu: cpu, offset: offset, missed: missed, data: data, size: size)
        return true
    }

    /// Copies a record in whatever the piece holds, growing its storage when the record does not fit
    /// (a record larger than a piece, with large sub-buffers; a stack trace kept with its event).
    func appendAlways(ts: UInt64, cpu: Int32, offset: Int, missed: Int64, data: UnsafeRawPointer?, size: Int) {
        if used + size > capacity {
            let grownCapacity = max(used + size, 2 * capacity)
            let grown = UnsafeMutableRawPointer.allocate(byteCount: grownCapacity, alignment: 16)
            grown.copyMemory(from: storage, byteCount: used)
            storage.deallocate()
            storage = grown
            capacity = grownCapacity
        }
        if size > 0, let data { (storage + used).copyMemory(from: data, byteCount: size) }
        headers.append(Header(ts: ts, offset: offset, missed: missed, cpu: cpu, start: used, size: size))
        used += (size + 7) & ~7
    }

    public var releaseLater: @Sendable () -> Void {
        { [self] in pool?.put(self) }
    }
}

/// A trace.dat read as pieces: one thread walks the ring-buffer pages of every CPU and merges them
/// (`forEachPiece`), workers decode the pieces (`makeDecoder`, one per worker, made before any
/// piece is read). Made by `TraceDatReader.readInPieces`.
public final class TraceDatPieces {
    private let merge: RingBufferMerge
    private let tep: OpaquePointer
    /// The kallsyms, given to `tep` at the first symbol lookup (nil: already there, or none).
    private let kallsyms: DeferredKallsyms?
    /// Events whose formats were left out (`EventFormatSelection.nameOnly`).
    private let nameOnly: [Int: String]
    private let path: String
    private let maxRecord: Int
    private let compressedNote: String
    private let pool = ReusePool<RecordPiece>()
    private let recordsPerPiece: Int
    /// Serializes the libtraceevent lookups the decoders make (comms, symbols, event formats).
    private let tepLock = TepLock()
    /// Records handed out so far.
    public private(set) var recordsRead = 0

    /// Reads record types, to keep a stack trace with the event before it.
    private let types: TepDecoder
    /// Event ids of `ftrace:kernel_stack` and `ftrace:user_stack` (-1: not in the file).
    private let stackIDs: (Int, Int)

    /// File bytes that are not ring-buffer data (headers, formats, options): read before any piece.
    private let metadataBytes: Int

    init(merge: RingBufferMerge, tep: OpaquePointer, kallsyms: DeferredKallsyms?, nameOnly: [Int: String], path: String, maxRecord: Int, compressedNote: String, recordsPerPiece: Int, fileSize: Int) {
        metadataBytes = max(0, fileSize - merge.bytesTotal)
        self.recordsPerPiece = recordsPerPiece
        types = TepDecoder(tep: tep, names: StringTable(), path: path, format: .traceDat)
        stackIDs = (tep_find_event_by_name(tep, "ftrace", "kernel_stack").map { Int($0.pointee.id) } ?? -1,
                    tep_find_event_by_name(tep, "ftrace", "user_stack").map { Int($0.pointee.id) } ?? -1)
        self.merge = merge
        self.tep = tep
        self.nameOnly = nameOnly
        self.kallsyms = kallsyms
        self.path = path
        self.maxRecord = maxRecord
        self.compressedNote = compressedNote
    }

    /// A decoder for one worker; the event names it reads are interned in `names`. Make every
    /// decoder before the first piece is read.
    public func makeDecoder(names: StringTable) -> RecordPieceDecoder {
        let decoder = TepDecoder(tep: tep, names: names, path: path, format: .traceDat, lock: tepLock, kallsyms: kallsyms, nameOnly: nameOnly)
        decoder.preparePlans()
        return RecordPieceDecoder(decoder: decoder, maxRecord: maxRecord, compressedNote: compressedNote)
    }

    /// Calls `body` with consecutive pieces of the file's records, in timestamp order (as
    /// libtracecmd merges the CPUs and buffers).
    /// - Throws: `InputError` for a damaged page or a record larger than a page, or what `body` throws.
    public func forEachPiece(_ body: (RecordPiece) throws -> Void) throws {
        var piece = takePiece()
        while let r = try merge.next() {
            let size = max(0, r.size)
            if size > maxRecord {
                throw TraceDatReader.oversizedError(path: path, cpu: r.cpu, offset: r.offset, size: size, maxRecord: maxRecord, note: compressedNote)
            }
            if !piece.append(ts: r.ts, cpu: r.cpu, offset: r.offset, missed: r.missed, data: r.data, size: size) {
                // A stack trace stays in the piece of the event it belongs to (the record before it),
                // as a ` => frame` line stays with its event in text.
                if !isStackTrace(r.data, size) {
                    piece.endOffset = metadataBytes + merge.bytesRead
                    try body(piece)
                    piece = takePiece()
                }
                piece.appendAlways(ts: r.ts, cpu: r.cpu, offset: r.offset, missed: r.missed, data: r.data, size: size)
            }
            recordsRead += 1
        }
        if !piece.isEmpty {
            piece.endOffset = metadataBytes + merge.bytesRead
            try body(piece)
        }
    }

    private func takePiece() -> RecordPiece {
        let p = pool.take { RecordPiece(pool: pool, maxRecords: recordsPerPiece) }
        p.reset()
        return p
    }

    private func isStackTrace(_ data: UnsafeRawPointer?, _ size: Int) -> Bool {
        guard let data, let type = types.typeID(data, size) else { return false }
        return type == stackIDs.0 || type == stackIDs.1
    }
}

/// Decodes pieces of a trace.dat into raw events, on one worker thread.
public final class RecordPieceDecoder {
    private let state: TraceDatReader.IterationState

    init(decoder: TepDecoder, maxRecord: Int, compressedNote: String) {
        state = TraceDatReader.IterationState(decoder: decoder, sink: NoSink.shared)
        state.maxRecord = maxRecord
        state.compressedNote = compressedNote
    }

    /// Every record of `piece` into `sink`, numbered from `lineBase + 1`; returns the number of records.
    /// - Throws: `InputError` at a record whose event type the file does not define.
    public func decode(_ piece: RecordPiece, into sink: RawEventSink, lineBase: Int = 0) throws -> Int {
        state.sink = sink
        state.index = lineBase
        state.error = nil
        state.process(piece)
        state.sink = NoSink.shared
        if let e = state.error { throw e }
        return piece.count
    }

    private final class NoSink: RawEventSink {
        static let shared = NoSink()
        func consume(_ event: inout RawEvent) {}
        func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) {}
    }
}
