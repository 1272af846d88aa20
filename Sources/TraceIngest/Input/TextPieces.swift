#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A run of whole lines of a text input that can be parsed on its own, on any thread: it starts
/// where a record starts, never inside a stack trace, so every ` => frame` line is in the same
/// piece as the event it belongs to:
///
///     wl-done-129 [000] ..... 7.466671: get_user_pages_fast: (get_user_pages_fast+0x0/0x30) ...   <- may start a piece
///     wl-done-129 [000] ..... 7.466805: <stack trace>                                              <- may not
///      => get_user_pages_fast                                                                      <- may not
///
/// The bytes stay valid until `release()` (they are in the mapped file, or in a buffer the piece
/// shares with its neighbours).
public struct TextPiece: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    /// Byte offset of `bytes` in the (decompressed) input.
    public let offset: Int
    private let storage: PieceStorage?
    private let mapped: MappedFile?

    init(bytes: UnsafeRawBufferPointer, offset: Int, storage: PieceStorage?, mapped: MappedFile?) {
        self.bytes = bytes; self.offset = offset; self.storage = storage; self.mapped = mapped
    }

    /// Done with the bytes: a mapped file drops the pages behind them (call in input order).
    public func release() { releaser.release() }

    /// What `release()` does, without holding on to the piece's buffer (to call later, on any thread).
    public var releaser: Releaser { Releaser(mapped: mapped, end: offset + bytes.count) }

    public struct Releaser: @unchecked Sendable {
        let mapped: MappedFile?
        let end: Int
        public func release() { mapped?.release(upTo: end) }
    }
}

/// A buffer that several pieces of a stream share; freed with the last of them.
final class PieceStorage: @unchecked Sendable {
    let buffer: UnsafeMutableRawBufferPointer
    init(count: Int) { buffer = .allocate(byteCount: max(count, 1), alignment: 16) }
    deinit { buffer.deallocate() }
}

extension TraceInput {
    /// Calls `body` with consecutive pieces of the input of about `size` bytes, each cut before a line
    /// for which `startsRecord` is true (a text reader's `startsRecord(line:)`). A stream (stdin, LZ4)
    /// is copied into buffers the pieces own; a mapped file is not copied.
    /// - Parameter startsRecord: whether a line (without its newline) can begin a piece.
    public func forEachPiece(size: Int, startsRecord: (UnsafeRawBufferPointer) -> Bool,
                             _ body: (TextPiece) throws -> Void) throws {
        if let file = mapped {
            let all = file.bytes
            var start = 0
            while start < all.count {
                let end = TraceInput.cut(all, from: start, size: size, startsRecord: startsRecord) ?? all.count
                try body(TextPiece(bytes: UnsafeRawBufferPointer(rebasing: all[start..<end]), offset: start, storage: nil, mapped: file))
                bytesRead = end
                start = end
            }
            return
        }
        // A stream: whole-line chunks, copied behind what was held back from the previous chunk (the
        // lines after its last record start, which may continue in this chunk).
        var carry: [UInt8] = []
        var carryOffset = 0
        func emit(_ storage: PieceStorage, _ count: Int, _ offset: Int) throws {
            let all = UnsafeRawBufferPointer(rebasing: storage.buffer[0..<count])
            var start = 0
            while start < count {
                let end = TraceInput.cut(all, from: start, size: size, startsRecord: startsRecord) ?? count
                try body(TextPiece(bytes: UnsafeRawBufferPointer(rebasing: all[start..<end]), offset: offset + start, storage: storage, mapped: nil))
                start = end
            }
        }
        try forEachStreamChunk { chunk, offset in
            if carry.isEmpty { carryOffset = offset }
            let total = carry.count + chunk.count
            let storage = PieceStorage(count: total)
            carry.withUnsafeBytes { if $0.count > 0 { storage.buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            if chunk.count > 0 { (storage.buffer.baseAddress! + carry.count).copyMemory(from: chunk.baseAddress!, byteCount: chunk.count) }
            let start = carryOffset
            carry.removeAll(keepingCapacity: true)
            // A chunk without a final newline is the head of an over-long line (the rest was dropped) or the
            // end of the input: nothing continues it.
            var keep = total
            if chunk.last == 0x0A {
                keep = TraceInput.lastRecordStart(UnsafeRawBufferPointer(rebasing: storage.buffer[0..<total]), startsRecord: startsRecord)
                if keep == 0 { keep = total }     // not one record start in the buffer: do not hold it all back
            }
            if keep < total {
                carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: storage.buffer[keep..<total]))
                carryOffset = start + keep
            }
            try emit(storage, keep, start)
        }
        if !carry.isEmpty {
            let storage = PieceStorage(count: carry.count)
            carry.withUnsafeBytes { storage.buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            try emit(storage, carry.count, carryOffset)
        }
    }

    /// The end of the piece that starts at `start`: the start of the first line at or after
    /// `start + size` that begins a record, or nil when the piece runs to the end. Runs of lines that
    /// never begin a record (garbage, a stack of frames) longer than `4 * size` are cut anyway.
    static func cut(_ all: UnsafeRawBufferPointer, from start: Int, size: Int,
                    startsRecord: (UnsafeRawBufferPointer) -> Bool) -> Int? {
        let count = all.count
        guard start + size < count, let base = all.baseAddress else { return nil }
        guard let first = memchr(base + start + size - 1, 0x0A, count - (start + size - 1)) else { return nil }
        var lineStart = UnsafeRawPointer(first) - base + 1
        let giveUp = start + 5 * size
        while lineStart < count {
            let nl = memchr(base + lineStart, 0x0A, count - lineStart).map { UnsafeRawPointer($0) - base } ?? count
            if startsRecord(UnsafeRawBufferPointer(rebasing: all[lineStart..<nl])) || lineStart >= giveUp { return lineStart }
            lineStart = nl + 1
        }
        return nil
    }

    /// Start of the last line of `all` (which ends with a newline) that begins a record; 0 if none does.
    static func lastRecordStart(_ all: UnsafeRawBufferPointer, startsRecord: (UnsafeRawBufferPointer) -> Bool) -> Int {
        var end = all.count - 1                       // the final newline
        var scanned = 0
        while end > 0 {
            var s = end
            while s > 0 && all[s - 1] != 0x0A { s -= 1 }
            if startsRecord(UnsafeRawBufferPointer(rebasing: all[s..<end])) { return s }
            scanned += end - s + 1
            if scanned > 16 << 20 { return 0 }
            end = s - 1
        }
        return 0
    }
}
