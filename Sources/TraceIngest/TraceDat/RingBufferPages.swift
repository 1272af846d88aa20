import CZlib
import CZstd
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One CPU's ring-buffer data in a trace.dat, read page by page straight from the mapped file (or
/// from one decompressed chunk at a time), record by record, as libtraceevent's kbuffer and
/// libtracecmd read it.
///
/// A page (sub-buffer) starts with the header `header_page` describes: `u64 timestamp`,
/// `local_t commit` (a long: 8 or 4 bytes), then `commit & 0x7ffffff` bytes of events. Bit 31 of
/// commit says events were lost before the page, bit 30 that their count is stored after the data.
/// Every event starts with a u32 `type_len:5, time_delta:27` (kernel/trace/ring_buffer.c):
/// - 1...28: a data record of `type_len * 4` bytes follows;
/// - 0: the next u32 is the length (+4), the data (rounded up to 4 bytes) follows it;
/// - 29 PADDING: the next u32 is how many bytes to skip (a discarded event);
/// - 30 TIME_EXTEND: `delta = next u32 << 27 | time_delta`;
/// - 31 TIME_STAMP: the absolute time, its top 5 bits taken from the running timestamp.
/// The running timestamp starts at the page's and adds every delta (padding's too).
///
/// Memory: an uncompressed CPU is read in place; a compressed one holds one decompressed chunk
/// (and the part of a page that straddles into the next), whatever the file size.
final class RingBufferCPU {
    let cpu: Int32
    private let file: UnsafeRawBufferPointer
    private let pageSize: Int
    private let longSize: Int
    private let timestampOffset: UInt64
    private let path: String

    // The source of pages.
    private let compression: String?
    /// Uncompressed: the file offset of the next page and the end of the data. Compressed: the file
    /// offset of the next chunk header and the end of the chunks.
    private var rawPos: Int
    /// Where the CPU's data starts in the file.
    private let rawStart: Int
    /// File bytes of the CPU's data read so far (pages, or compressed chunks), for progress.
    var bytesRead: Int { rawPos - rawStart }
    /// File bytes of the CPU's data (with the chunk count of compressed data).
    var bytesTotal: Int { rawEnd - rawStart }
    private let rawEnd: Int
    private var chunksLeft = 0
    /// Decompressed bytes not yet made into pages: `window[windowStart..<windowEnd]`.
    private var window: UnsafeMutableRawPointer?
    private var windowCapacity = 0
    private var windowStart = 0
    private var windowEnd = 0
    /// Offset of `window[windowStart]` in the CPU's decompressed data.
    private var streamOffset = 0
    /// `file` is a mapping of the file: the pages read are given back behind the reader.
    private let releaseBehind: Bool
    private var releasedUpTo: Int
    private static let systemPage = Int(sysconf(Int32(_SC_PAGESIZE)))

    // The current page.
    private var page: UnsafeRawPointer?
    private var pageLength = 0
    private var pageOffset = 0
    private var dataStart = 16
    private var commit = 0
    private var curr = 0
    private var lost: Int64 = 0
    private var timestamp: UInt64 = 0

    // The current record (valid after `advance()` returned true).
    private(set) var ts: UInt64 = 0
    private(set) var data: UnsafeRawPointer?
    private(set) var size = 0
    /// File offset of the record's event header (uncompressed) or its offset in the CPU's decompressed data.
    private(set) var offset = 0
    /// Events lost before this record: > 0 a count, -1 lost but not counted, 0 none.
    private(set) var missed: Int64 = 0

    init(cpu: Int, offset: Int, size: Int, file: UnsafeRawBufferPointer, pageSize: Int, longSize: Int,
         compression: String?, timestampOffset: Int64, path: String, releaseBehind: Bool = false) throws {
        self.releaseBehind = releaseBehind
        self.releasedUpTo = offset
        self.cpu = Int32(truncatingIfNeeded: cpu)
        self.file = file
        self.pageSize = pageSize
        self.longSize = longSize
        self.timestampOffset = UInt64(bitPattern: timestampOffset)
        self.path = path
        self.compression = compression
        self.rawPos = offset
        rawStart = offset
        if compression != nil {
            // `count u32`, then the chunks; the recorded size does not count the leading u32.
            rawEnd = min(file.count, offset + size + 4)
            if size > 0 {
                guard offset + 4 <= file.count else { throw InputError.corrupt(path: path, format: .traceDat, offset: offset, what: "file ends inside the chunk count of CPU \(cpu)'s data") }
                chunksLeft = Int(file.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
                rawPos = offset + 4
            }
        } else {
            rawEnd = min(file.count, offset + size)
        }
    }

    deinit { window?.deallocate() }

    private func corrupt(_ what: String, at: Int) -> InputError {
        let note = compression == nil ? "" : " (offset in CPU \(cpu)'s decompressed data)"
        return .corrupt(path: path, format: .traceDat, offset: at, what: "CPU \(cpu)'s ring-buffer data: " + what + note)
    }

    @inline(__always) private func u32(_ p: UnsafeRawPointer, _ at: Int) -> UInt32 {
        p.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian
    }

    /// Moves to the next data record; false at the end of the CPU's data.
    func advance() throws -> Bool {
        while true {
            guard let page, curr < commit else {
                if try !loadPage() { return false }
                continue
            }
            let base = page + dataStart
            guard curr + 4 <= commit else { throw corrupt("an event header runs past the page's commit (\(commit) bytes)", at: pageOffset) }
            let header = u32(base, curr)
            let typeLen = header & 31
            let delta = UInt64(header >> 5)
            let p = curr + 4
            var next: Int
            switch typeLen {
            case 29:   // padding: a discarded event, or the rest of the page
                guard dataStart + p + 4 <= pageLength else { throw corrupt("a padding event runs past the page", at: pageOffset + dataStart + curr) }
                timestamp &+= delta
                next = p + Int(u32(base, p))
                curr = next
                continue
            case 30, 31:
                guard p + 4 <= commit else { throw corrupt("a time extend runs past the page's commit", at: pageOffset + dataStart + curr) }
                let value = UInt64(u32(base, p)) << 27 | delta
                timestamp = typeLen == 31 ? value | (timestamp & (0xf8 << 56)) : timestamp &+ value
                curr = p + 4
                continue
            case 0:
                guard p + 4 <= commit else { throw corrupt("an event length runs past the page's commit", at: pageOffset + dataStart + curr) }
                let length = (Int(u32(base, p)) - 4 + 3) & ~3
                guard length >= 0 else { throw corrupt("an event claims a negative length", at: pageOffset + dataStart + curr) }
                timestamp &+= delta
                data = UnsafeRawPointer(base + p + 4)
                size = length
                next = p + 4 + length
            default:
                timestamp &+= delta
                data = UnsafeRawPointer(base + p)
                size = Int(typeLen) * 4
                next = p + size
            }
            guard next <= commit else {
                throw corrupt("an event of \(size) bytes runs past the page's commit (\(commit) bytes)", at: pageOffset + dataStart + curr)
            }
            ts = timestamp &+ timestampOffset
            offset = pageOffset + dataStart + curr
            // libtracecmd reports the page's lost events only on a record that starts the page.
            missed = curr == 0 ? lost : 0
            curr = next
            return true
        }
    }

    /// Gives back the mapped file's pages of this CPU's data below `end` (every record before it has
    /// been handed on and copied), so resident memory does not grow with the file.
    private func releaseRead(upTo end: Int) {
        let ps = RingBufferCPU.systemPage
        let start = (releasedUpTo + ps - 1) / ps * ps
        let stop = end / ps * ps
        if stop > start, let base = file.baseAddress {
            madvise(UnsafeMutableRawPointer(mutating: base) + start, stop - start, MADV_DONTNEED)
        }
        releasedUpTo = end
    }

    /// The next page's header; false when there are no more pages.
    private func loadPage() throws -> Bool {
        page = nil
        if releaseBehind && rawPos - releasedUpTo >= 4 << 20 { releaseRead(upTo: rawPos) }
        if compression == nil {
            guard rawPos < rawEnd else { return false }
            let n = min(pageSize, rawEnd - rawPos)
            page = UnsafeRawPointer(file.baseAddress! + rawPos)
            pageLength = n
            pageOffset = rawPos
            rawPos += n
        } else {
            if windowEnd - windowStart < pageSize && chunksLeft > 0 { try refill() }
            guard windowEnd > windowStart, let window else { return false }
            let n = min(pageSize, windowEnd - windowStart)
            page = UnsafeRawPointer(window + windowStart)
            pageLength = n
            pageOffset = streamOffset
            windowStart += n
            streamOffset += n
        }
        let p = page!
        dataStart = 8 + longSize
        guard pageLength >= dataStart else { throw corrupt("the data ends inside a page header (\(pageLength) bytes)", at: pageOffset) }
        timestamp = p.loadUnaligned(as: UInt64.self).littleEndian
        let word = longSize == 8 ? p.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
                                 : UInt64(p.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian)
        commit = Int(word & 0x7ff_ffff)
        guard dataStart + commit <= pageLength else {
            throw corrupt("a page's commit claims \(commit) bytes, more than the page holds (\(pageLength - dataStart))", at: pageOffset)
        }
        if word & (1 << 31) != 0 {
            if word & (1 << 30) != 0 && dataStart + commit + longSize <= pageLength {
                let at = dataStart + commit
                lost = longSize == 8 ? Int64(bitPattern: p.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian)
                                     : Int64(p.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian)
            } else {
                lost = -1
            }
        } else {
            lost = 0
        }
        curr = 0
        return true
    }

    /// Decompresses chunks until a whole page is available (or the chunks are used up), keeping the
    /// bytes not yet made into pages at the front of the window.
    private func refill() throws {
        while windowEnd - windowStart < pageSize && chunksLeft > 0 {
            guard rawPos + 8 <= rawEnd else { throw InputError.corrupt(path: path, format: .traceDat, offset: rawPos, what: "file ends inside a chunk header of CPU \(cpu)'s data") }
            let compressed = Int(u32(file.baseAddress!, rawPos))
            let raw = Int(u32(file.baseAddress!, rawPos + 4))
            let src = rawPos + 8
            guard compressed <= rawEnd - src else {
                throw InputError.corrupt(path: path, format: .traceDat, offset: rawPos, what: "a chunk of CPU \(cpu)'s data claims \(compressed) bytes, past the end of its data")
            }
            guard raw <= 1 << 28 else {
                throw InputError.corrupt(path: path, format: .traceDat, offset: rawPos, what: "a chunk of CPU \(cpu)'s data claims \(raw) bytes uncompressed, not plausible")
            }
            let keep = windowEnd - windowStart
            if window == nil || keep + raw > windowCapacity {   // (an empty first chunk needs a window too)
                let capacity = max(keep + raw, 2 * windowCapacity, pageSize, 64)
                let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
                if keep > 0, let window { bigger.copyMemory(from: window + windowStart, byteCount: keep) }
                window?.deallocate()
                window = bigger
                windowCapacity = capacity
            } else if keep > 0 && windowStart > 0 {
                window!.copyMemory(from: window! + windowStart, byteCount: keep)   // memmove semantics
            }
            windowStart = 0
            windowEnd = keep
            let dst = window! + keep
            let got: Int
            if compression == "zstd" {
                let r = ZSTD_decompress(dst, raw, file.baseAddress! + src, compressed)
                got = ZSTD_isError(r) != 0 ? -1 : r
            } else {
                var n = uLongf(raw)
                let rc = uncompress(dst.assumingMemoryBound(to: Bytef.self), &n, (file.baseAddress! + src).assumingMemoryBound(to: Bytef.self), uLong(compressed))
                got = rc == Z_OK ? Int(n) : -1
            }
            guard got == raw else {
                throw InputError.corrupt(path: path, format: .traceDat, offset: src, what: "a \(compression ?? "") chunk of CPU \(cpu)'s data does not decompress to its recorded \(raw) bytes")
            }
            windowEnd += raw
            rawPos = src + compressed
            chunksLeft -= 1
        }
    }
}

/// Every record of a trace.dat's buffers (the top one, then the instances), merged in timestamp
/// order as libtracecmd's `tracecmd_iterate_events(_multi)` merges them: the smallest timestamp
/// first; on a tie the earlier buffer, then the lower CPU.
final class RingBufferMerge {
    let streams: [RingBufferCPU]
    /// The head timestamps in a flat array (UInt64.max: the CPU is done, as a record stamped
    /// UInt64.max ends a CPU for libtracecmd too), scanned in stream order so the first of equal
    /// timestamps wins; the streams themselves are touched once per record.
    private var heads: [UInt64]
    private var live = 0
    private var started = false
    /// The stream `next()` returned last.
    private var current = -1

    /// - Parameter mapped: `file` is an `mmap` of the file (pages read are released behind the reader).
    init(layout: TraceDatSummary, file: UnsafeRawBufferPointer, path: String, mapped: Bool) throws {
        var streams: [RingBufferCPU] = []
        for buffer in layout.buffers {
            for c in buffer.cpus where c.size > 0 {
                streams.append(try RingBufferCPU(cpu: c.cpu, offset: c.offset, size: c.size, file: file, pageSize: buffer.pageSize,
                                                 longSize: layout.longSize, compression: buffer.compressed ? layout.compression : nil,
                                                 timestampOffset: layout.timestampOffset, path: path, releaseBehind: mapped))
            }
        }
        self.streams = streams
        heads = [UInt64](repeating: .max, count: streams.count)
        bytesTotal = streams.reduce(0) { $0 + $1.bytesTotal }
    }

    /// File bytes of ring-buffer data read so far, all CPUs together.
    var bytesRead: Int { streams.reduce(0) { $0 + $1.bytesRead } }
    /// File bytes of ring-buffer data, all CPUs together.
    let bytesTotal: Int

    /// The record that comes next in order, nil after the last; it stays valid until the next call.
    /// - Throws: `InputError.corrupt` at a damaged page.
    func next() throws -> Record? {
        if !started {
            started = true
            refs = streams.map { Unmanaged.passUnretained($0) }
            for (k, s) in streams.enumerated() where try s.advance() && s.ts != .max {
                heads[k] = s.ts
                live += 1
            }
        } else if current >= 0 {
            // Unretained: `streams` keeps them alive, and a retain per record costs more than the rest.
            let ts = try refs[current]._withUnsafeGuaranteedRef { s in try s.advance() ? s.ts : .max }
            if ts != .max { heads[current] = ts } else { heads[current] = .max; live -= 1 }
        }
        guard live > 0 else { current = -1; return nil }
        var best = 0
        var bestTS = UInt64.max
        heads.withUnsafeBufferPointer { heads in
            for k in 0..<heads.count where heads[k] < bestTS {
                best = k
                bestTS = heads[k]
            }
        }
        current = best
        return refs[best]._withUnsafeGuaranteedRef { s in
            Record(ts: s.ts, cpu: s.cpu, offset: s.offset, missed: s.missed, data: s.data, size: s.size)
        }
    }

    /// A record, borrowing its stream's page: valid until the next `next()`.
    struct Record {
        var ts: UInt64
        var cpu: Int32
        var offset: Int
        var missed: Int64
        var data: UnsafeRawPointer?
        var size: Int
    }
    private var refs: [Unmanaged<RingBufferCPU>] = []
}

/// One CPU's raw ring-buffer data decoded on its own, outside a trace.dat (the `trace-dat-pages`
/// fuzz target and measurements of the page decoder alone).
public enum RingBufferPages {
    /// Decodes every page of `data` (`compression` "zstd" or "zlib": `count u32` and chunks) and
    /// returns the number of data records, the sum of their sizes and of their last bytes (every
    /// record's bytes are read at both ends, so a record pointing outside its page is caught).
    /// - Throws: `InputError.corrupt` at the first page or event that does not fit.
    public static func decode(_ data: UnsafeRawBufferPointer, pageSize: Int, longSize: Int, compression: String?) throws -> (records: Int, bytes: Int, checksum: Int) {
        guard data.count > 0, pageSize >= 64, longSize == 4 || longSize == 8 else { return (0, 0, 0) }
        let cpu = try RingBufferCPU(cpu: 0, offset: 0, size: compression == nil ? data.count : data.count - 4, file: data, pageSize: pageSize,
                                    longSize: longSize, compression: compression, timestampOffset: 0, path: "<pages>")
        var records = 0
        var bytes = 0
        var checksum = 0
        while try cpu.advance() {
            records += 1
            bytes += cpu.size
            if cpu.size > 0 {
                checksum &+= Int(cpu.data!.load(as: UInt8.self)) &+ Int(cpu.data!.load(fromByteOffset: cpu.size - 1, as: UInt8.self))
            }
        }
        return (records, bytes, checksum)
    }
}
