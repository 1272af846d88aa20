import CTraceCmd
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The data section of an opened perf.data (`PerfDataReader.withRecords`), read in time order:
/// on one thread (`read(into:check:)`), or cut into chunks (`forEachChunk`) that `PerfChunkDecoder`s
/// decode on other threads while this one goes on ordering.
///
/// Ordering is cheap and stays on one thread: a walk over the record headers (size, type, the
/// sample's time and attribute), perf's round sort (everything up to the newest timestamp of the
/// previous `FINISHED_ROUND` is sorted and handed out at each round), the zstd stream of
/// `perf record -z`, and the pid -> comm state of `COMM`/`FORK` records, applied in the order the
/// records are handed out so that each sample carries the comm its thread had at that point
/// (`PerfRecordRef.comm`). What is expensive (a sample's fields, its tracepoint payload printed as
/// ftrace text, the normalization after it) is the decoders' work, and depends on nothing but the
/// record and that comm: the same records give the same events whatever the chunks and threads.
public final class PerfDataRecords {
    let reader: PerfDataReader
    let bytes: UnsafeRawBufferPointer
    let start: Int
    let size: Int
    let attrs: [PerfDataReader.Attr]
    let idToAttr: [UInt64: Int]
    let tep: OpaquePointer
    /// Taken by the chunk decoders around the libtraceevent lookups that fill a cache on first use.
    let tepLock = TepLock()
    let pipe: Bool
    let path: String
    private let release: (Int) -> Void
    /// Where a sample says which attribute it belongs to (nil: there is only one, or no way to tell).
    private let idOffset: Int?
    private let first: PerfDataReader.Attr
    /// Sample id -> attribute index for ids in `idBase ..< idBase + idSpan` (perf numbers them
    /// consecutively), so that the three lookups per sample hash nothing; other ids use `idToAttr`.
    private let idBase: UInt64
    private let idSpan: UInt64
    private let attrIndexByID: UnsafeMutablePointer<Int32>
    /// `attrs`, read without reference counting on the per-record paths.
    private let attrTable: UnsafeMutablePointer<PerfDataReader.Attr>
    private let attrCount: Int

    init(reader: PerfDataReader, bytes: UnsafeRawBufferPointer, start: Int, size: Int, attrs: [PerfDataReader.Attr], idToAttr: [UInt64: Int],
         tep: OpaquePointer, pipe: Bool, path: String, release: @escaping (Int) -> Void) throws {
        self.reader = reader
        self.bytes = bytes
        self.start = start
        self.size = size
        self.attrs = attrs
        self.idToAttr = idToAttr
        self.tep = tep
        self.pipe = pipe
        self.path = path
        self.release = release
        let uniform = attrs.allSatisfy { $0.sampleType == attrs[0].sampleType }
        let first0 = attrs[0]
        if !uniform && !attrs.allSatisfy({ $0.sampleType & PerfDataReader.IDENTIFIER != 0 }) {
            throw InputError.unusable(path: path, format: .perfData, what: "events with different sample types need PERF_SAMPLE_IDENTIFIER, which this file lacks")
        }
        for a in attrs where a.sampleType & PerfDataReader.READ != 0 {
            throw InputError.unusable(path: path, format: .perfData, what: "PERF_SAMPLE_READ samples (perf record -s / group reads) are not supported")
        }
        // Where a sample says which attribute it belongs to: PERF_SAMPLE_IDENTIFIER first, else
        // PERF_SAMPLE_ID after ip, tid, time and addr (same sample types: `-e cpu-clock:u -e task-clock:k`).
        let identifierFirst = attrs.allSatisfy { $0.sampleType & PerfDataReader.IDENTIFIER != 0 }
        var io: Int? = identifierFirst ? 8 : nil
        if io == nil && uniform && attrs.count > 1 && first0.sampleType & PerfDataReader.ID != 0 {
            var o = 8
            for bit in [PerfDataReader.IP, PerfDataReader.TID, PerfDataReader.TIME, PerfDataReader.ADDR] where first0.sampleType & bit != 0 { o += 8 }
            io = o
        }
        idOffset = io
        first = first0
        let lo = idToAttr.keys.min() ?? 0, hi = idToAttr.keys.max() ?? 0
        idBase = lo
        idSpan = idToAttr.isEmpty || hi - lo >= 1 << 16 ? 0 : hi - lo + 1
        attrIndexByID = .allocate(capacity: Int(idSpan) + 1)
        attrIndexByID.initialize(repeating: 0, count: Int(idSpan) + 1)
        if idSpan > 0 { for (id, k) in idToAttr { attrIndexByID[Int(id - lo)] = Int32(k) } }
        attrTable = .allocate(capacity: attrs.count)
        attrTable.initialize(from: attrs, count: attrs.count)
        attrCount = attrs.count
    }

    deinit {
        attrIndexByID.deallocate()
        attrTable.deinitialize(count: attrs.count)
        attrTable.deallocate()
        comms.deallocate()
    }

    /// Size of the whole file.
    public var fileSize: Int { bytes.count }

    @inline(__always)
    func attrFor(_ base: UnsafeRawPointer, _ off: Int, _ recEnd: Int) -> PerfDataReader.Attr {
        guard attrCount > 1, let io = idOffset, off + io + 8 <= recEnd else { return attrTable[0] }
        let id = base.loadUnaligned(fromByteOffset: off + io, as: UInt64.self)
        let d = id &- idBase
        if d < idSpan { return attrTable[Int(attrIndexByID[Int(d)])] }
        return attrTable[idToAttr[id] ?? 0]
    }

    /// The sample_id_all trailer of a non-sample record: (time, cpu).
    func trailer(_ base: UnsafeRawPointer, _ off: Int, _ end: Int) -> (UInt64?, Int32?) {
        guard first.sampleIDAll else { return (nil, nil) }
        let p = end - first.trailerSize
        guard p >= off + 8 else { return (nil, nil) }
        return (first.trailerTime.map { base.loadUnaligned(fromByteOffset: p + $0, as: UInt64.self) },
                first.trailerCPU.map { Int32(bitPattern: base.loadUnaligned(fromByteOffset: p + $0, as: UInt32.self)) })
    }

    // MARK: One thread

    /// Orders and decodes every record on this thread. `check` runs every 4096 samples.
    public func read(into sink: RawEventSink, check: () throws -> Void) throws {
        let decoder = PerfChunkDecoder(self)
        try withoutActuallyEscaping(check) { check in
            try order(DecodeInOrder(decoder: decoder, sink: sink, check: check, release: release))
        }
        reader.samples = decoder.emitted
    }

    /// One thread: each record decoded as it is handed out.
    private final class DecodeInOrder: PerfRecordDelivery {
        let decoder: PerfChunkDecoder
        let sink: RawEventSink
        let check: () throws -> Void
        let release: (Int) -> Void
        init(decoder: PerfChunkDecoder, sink: RawEventSink, check: @escaping () throws -> Void, release: @escaping (Int) -> Void) {
            self.decoder = decoder; self.sink = sink; self.check = check; self.release = release
        }
        func deliver(_ ref: PerfRecordRef, _ base: UnsafeRawPointer) throws {
            try decoder.decode(ref, base, into: sink)
            if ref.kind == .sample && decoder.emitted & 4095 == 0 { try check() }
        }
        func releasable(_ offset: Int) { release(offset) }
    }

    // MARK: Chunks

    /// Decoders for other threads, made here (on the thread that owns the reader) before any of them
    /// runs: every event plan exists and every name is interned, and the libtraceevent lookups that
    /// fill a cache (symbols) are taken under `tepLock`.
    public func makeDecoders(_ count: Int) -> [PerfChunkDecoder] {
        (0..<max(1, count)).map { _ in PerfChunkDecoder(self) }
    }

    /// Orders the records and hands them out in chunks of about `chunkBytes` bytes of records, in order.
    /// - Parameters:
    ///   - next: gives the chunk to fill next (reused: its earlier contents must have been merged;
    ///     call `releaseMerged` with it first).
    ///   - send: takes a filled chunk (its records are then read-only until it comes back from `next`).
    /// - Throws: what ordering finds corrupt (after sending every chunk before that point), or what
    ///   `next`/`send` throw.
    public func forEachChunk(chunkBytes: Int, next: () throws -> PerfRecordChunk, send: (PerfRecordChunk) throws -> Void) throws {
        try withoutActuallyEscaping(next) { next in
            try withoutActuallyEscaping(send) { send in
                let filler = ChunkFiller(fileBase: bytes.baseAddress!, chunkBytes: chunkBytes, next: next, send: send)
                filler.reached = start
                do {
                    try order(filler)
                } catch {
                    // The records handed out before a corrupt one are decoded first, as on one thread (where a
                    // sample that fails to decode stops the read before the ordering gets further).
                    if !filler.callbackFailed && filler.isOpen {
                        filler.close(progress: filler.reached)
                        try send(filler.open)
                    }
                    throw error
                }
                if filler.isOpen {
                    filler.close(progress: start + size)
                    try send(filler.open)
                }
            }
        }
    }

    /// Chunks: records appended to the open chunk (decompressed ones copied in), sent when full.
    private final class ChunkFiller: PerfRecordDelivery {
        let fileBase: UnsafeRawPointer
        let chunkBytes: Int
        let next: () throws -> PerfRecordChunk
        let send: (PerfRecordChunk) throws -> Void
        /// The chunk being filled (`isOpen`); the caller's pool keeps it alive, so it is not counted per record.
        var isOpen = false
        private let none = PerfRecordChunk(capacity: 0)
        unowned(unsafe) var open: PerfRecordChunk
        var pendingRelease = -1
        var reached = 0
        /// Whether `next` or `send` threw (else the ordering found the file corrupt).
        var callbackFailed = false

        init(fileBase: UnsafeRawPointer, chunkBytes: Int, next: @escaping () throws -> PerfRecordChunk, send: @escaping (PerfRecordChunk) throws -> Void) {
            self.fileBase = fileBase; self.chunkBytes = chunkBytes; self.next = next; self.send = send
            open = none
        }

        /// The open chunk's record buffer, filled here and handed back when it is sent (`close`), so that the
        /// per-record path touches no object.
        private var refs: UnsafeMutablePointer<PerfRecordRef>?
        private var count = 0, capacity = 0, bytes = 0

        func deliver(_ ref: PerfRecordRef, _ base: UnsafeRawPointer) throws {
            if !isOpen {
                let c: PerfRecordChunk
                do { c = try next() } catch { callbackFailed = true; throw error }
                c.reset(fileBase: fileBase)
                c.releaseAfterMerge = pendingRelease
                pendingRelease = -1
                open = c
                isOpen = true
                (refs, capacity) = c.recordBuffer
                count = 0
                bytes = 0
            }
            let recSize = Int(base.loadUnaligned(fromByteOffset: ref.offset + 6, as: UInt16.self))
            if count == capacity { (refs, capacity) = open.growRecordBuffer(count: count) }
            if base == fileBase {
                (refs! + count).initialize(to: ref)
                reached = max(reached, ref.offset + recSize)
            } else {
                // Decompressed records are overwritten as the stream goes on: the chunk keeps a copy.
                var r = ref
                r.offset = open.copy(base + ref.offset, recSize)
                r.copied = true
                (refs! + count).initialize(to: r)
                reached = max(reached, ref.reportOffset)
            }
            count += 1
            bytes += recSize
            if bytes >= chunkBytes {
                close(progress: reached)
                do { try send(open) } catch { callbackFailed = true; throw error }
            }
        }

        /// Gives the open chunk its records; it is then ready to send.
        func close(progress: Int) {
            open.close(count: count, bytes: bytes, progress: progress)
            isOpen = false
        }

        /// Safe to drop once every record handed out before this point is merged: those are in the
        /// open chunk or in chunks sent before it.
        func releasable(_ offset: Int) {
            if isOpen { open.releaseAfterMerge = max(open.releaseAfterMerge, offset) } else { pendingRelease = max(pendingRelease, offset) }
        }
    }

    /// Gives back the mapped file below what `chunk` needed, once it has been merged.
    public func releaseMerged(_ chunk: PerfRecordChunk) {
        if chunk.releaseAfterMerge >= 0 { release(chunk.releaseAfterMerge) }
        chunk.releaseAfterMerge = -1
    }

    // MARK: Ordering

    enum EntryKind: UInt8 { case sample, comm, fork, lost }
    struct Entry {
        var time: UInt64; var seq: Int; var offset: Int; var kind: EntryKind
        /// In the decompressed records of `perf record -z` (`UnpackedRecords`), not the file.
        var unpacked = false
        /// Where to point a message: the record's file offset, or its compressed record's.
        var fileOffset = 0
    }

    /// Comm per tid (tids up to 4M; nil base: none yet), bytes in the reader's `arena`; the state at the
    /// record being handed out.
    private var comms = UnsafeMutableBufferPointer<UnsafeRawBufferPointer>(start: nil, count: 0)
    private func setComm(_ tid: Int32, _ c: UnsafeRawBufferPointer) {
        let i = Int(tid)
        guard i >= 0 && i < 1 << 22 else { return }
        if i >= comms.count {
            let bigger = UnsafeMutableBufferPointer<UnsafeRawBufferPointer>.allocate(capacity: max(i + 1, comms.count * 2, 1024))
            bigger.initialize(repeating: UnsafeRawBufferPointer(start: nil, count: 0))
            if let old = comms.baseAddress { bigger.baseAddress!.update(from: old, count: comms.count) }
            comms.deallocate()
            comms = bigger
        }
        comms[i] = c
    }
    @inline(__always)
    private func commOf(_ tid: Int32) -> UnsafeRawBufferPointer? {
        let i = Int(tid)
        guard i >= 0 && i < comms.count, comms[i].baseAddress != nil else { return nil }
        return comms[i]
    }

    /// The comm perf names a sample's thread by: its tid's from COMM/FORK records, else `:tid` (perf
    /// script's name for a thread it has no COMM for), which the thread then keeps (a FORK from it copies it).
    private func sampleComm(_ base: UnsafeRawPointer, _ off: Int, _ end: Int) -> UnsafeRawBufferPointer {
        let a = attrFor(base, off, end)
        var tid: Int32 = 0
        if let t = a.tidOffset {
            // Too short: the decoder reports the record.
            guard off + t + 8 <= end else { return UnsafeRawBufferPointer(start: nil, count: 0) }
            tid = Int32(bitPattern: base.loadUnaligned(fromByteOffset: off + t + 4, as: UInt32.self))
        }
        if let cm = commOf(tid) { return cm }
        let unknown = reader.arena.store(Array(":\(tid)".utf8))
        setComm(tid, unknown)
        return unknown
    }

    /// Walks the data section, sorts each round and hands `delivery` every sample and lost record in
    /// time order (COMM and FORK records are applied to the comm state at their place in that order),
    /// and the offsets of the file below which no record will be handed out again.
    private func order<D: PerfRecordDelivery>(_ delivery: D) throws {
        let fileBase = bytes.baseAddress!
        let path = self.path, pipe = self.pipe
        // Records of `perf record -z` are decompressed here; entries point into the file or into this.
        let unpacked = UnpackedRecords(path: path)
        func baseOf(_ e: Entry) -> UnsafeRawPointer { e.unpacked ? UnsafeRawPointer(unpacked.base) : fileBase }
        var queue: [Entry] = []
        var seq = 0
        var lastTime: UInt64 = 0
        var maxSeen: UInt64 = 0
        var previousRoundMax: UInt64 = 0

        func emit(_ e: Entry) throws {
            let base = baseOf(e)
            let off = e.offset
            let recSize = Int(base.loadUnaligned(fromByteOffset: off + 6, as: UInt16.self))
            let end = off + recSize
            switch e.kind {
            case .comm:
                let tid = Int32(bitPattern: base.loadUnaligned(fromByteOffset: off + 12, as: UInt32.self))
                var n = 0
                while off + 16 + n < end && base.load(fromByteOffset: off + 16 + n, as: UInt8.self) != 0 && n < 64 { n += 1 }
                setComm(tid, reader.arena.store(Array(UnsafeRawBufferPointer(start: base + off + 16, count: n))))
            case .fork:
                let tid = Int32(bitPattern: base.loadUnaligned(fromByteOffset: off + 16, as: UInt32.self))
                let ptid = Int32(bitPattern: base.loadUnaligned(fromByteOffset: off + 20, as: UInt32.self))
                if let pc = commOf(ptid) { setComm(tid, pc) }
            case .lost:
                try delivery.deliver(PerfRecordRef(kind: .lost, offset: off, reportOffset: e.unpacked ? e.fileOffset : off, time: e.time), base)
            case .sample:
                var ref = PerfRecordRef(kind: .sample, offset: off, reportOffset: e.unpacked ? e.fileOffset : off, time: e.time)
                ref.comm = sampleComm(base, off, end)
                try delivery.deliver(ref, base)
            }
        }

        func flush(upTo limit: UInt64?) throws {
            queue.sort { $0.time != $1.time ? $0.time < $1.time : $0.seq < $1.seq }
            var k = 0
            while k < queue.count, limit == nil || queue[k].time <= limit! {
                try emit(queue[k])
                k += 1
            }
            queue.removeFirst(k)
        }

        /// Queues the records of `base[from..<to]`; returns where the last whole record ends.
        /// - Parameter fileOffset: for unpacked records, the offset of the compressed record they came from.
        func scan(_ base: UnsafeRawPointer, _ from: Int, _ to: Int, unpacked inUnpacked: Bool, fileOffset: Int) throws -> Int {
            var off = from
            while off + 8 <= to {
                let type = base.loadUnaligned(fromByteOffset: off, as: UInt32.self)
                let recSize = Int(base.loadUnaligned(fromByteOffset: off + 6, as: UInt16.self))
                let at = inUnpacked ? fileOffset : off
                guard recSize >= 8 else {
                    throw InputError.corrupt(path: path, format: .perfData, offset: at, what: "record of size \(recSize), expected at least 8" + (inUnpacked ? " (in decompressed data)" : ""))
                }
                if off + recSize > to {
                    if inUnpacked { return off }   // continued by the next compressed record
                    throw InputError.corrupt(path: path, format: .perfData, offset: off,
                                             what: "record of \(recSize) bytes runs past the end of the data section: truncated file")
                }
                switch type {
                case 9:  // SAMPLE
                    let a = attrFor(base, off, off + recSize)
                    var time = lastTime
                    if let t = a.timeOffset, t + 8 <= recSize { time = base.loadUnaligned(fromByteOffset: off + t, as: UInt64.self) }
                    lastTime = time
                    maxSeen = max(maxSeen, time)
                    queue.append(Entry(time: time, seq: seq, offset: off, kind: .sample, unpacked: inUnpacked, fileOffset: at))
                case 3, 7, 2, 13:  // COMM, FORK, LOST, LOST_SAMPLES
                    let need = type == 3 ? 16 : (type == 7 ? 32 : (type == 2 ? 24 : 16))
                    guard recSize >= need else {
                        throw InputError.corrupt(path: path, format: .perfData, offset: at, what: "record of type \(type) is \(recSize) bytes, expected at least \(need)")
                    }
                    var time = trailer(base, off, off + recSize).0 ?? lastTime
                    if type == 7 { time = base.loadUnaligned(fromByteOffset: off + 24, as: UInt64.self) }
                    queue.append(Entry(time: time, seq: seq, offset: off, kind: type == 3 ? .comm : (type == 7 ? .fork : .lost),
                                       unpacked: inUnpacked, fileOffset: at))
                case 68:  // FINISHED_ROUND
                    try flush(upTo: previousRoundMax)
                    previousRoundMax = maxSeen
                    if !inUnpacked {
                        delivery.releasable(queue.reduce(off) { $1.unpacked ? $0 : min($0, $1.offset) })
                        // Drop decompressed records every queued entry is past.
                        let keep = queue.reduce(unpacked.parsed) { $1.unpacked ? min($0, $1.offset) : $0 }
                        if keep > 0 {
                            unpacked.drop(keep)
                            for i in queue.indices where queue[i].unpacked { queue[i].offset -= keep }
                        }
                    }
                case 81, 83:  // COMPRESSED (data follows the header), COMPRESSED2 (u64 data size, then data)
                    guard !inUnpacked else {
                        throw InputError.corrupt(path: path, format: .perfData, offset: at, what: "a compressed record inside compressed data")
                    }
                    var dataStart = off + 8, dataSize = recSize - 8
                    if type == 83 {
                        guard recSize >= 16 else { throw InputError.corrupt(path: path, format: .perfData, offset: off, what: "COMPRESSED2 record of \(recSize) bytes") }
                        dataStart = off + 16
                        dataSize = min(Int(base.loadUnaligned(fromByteOffset: off + 8, as: UInt64.self)), recSize - 16)
                    }
                    try unpacked.decompress(UnsafeRawBufferPointer(start: base + dataStart, count: dataSize), at: off)
                    unpacked.parsed = try scan(UnsafeRawPointer(unpacked.base), unpacked.parsed, unpacked.count, unpacked: true, fileOffset: off)
                case 71:  // AUXTRACE (Intel PT, CoreSight, ...): u64 size, and that much trace data follows the record
                    guard recSize >= 16 else { break }
                    let n = base.loadUnaligned(fromByteOffset: off + 8, as: UInt64.self)
                    guard n <= UInt64(to - off - recSize) else {
                        throw InputError.corrupt(path: path, format: .perfData, offset: at, what: "AUXTRACE record announces \(n) bytes of trace data past the end of the data")
                    }
                    off += Int(n)
                case 66 where pipe && !inUnpacked:  // HEADER_TRACING_DATA: its data follows the record
                    let n = Int(base.loadUnaligned(fromByteOffset: off + 8, as: UInt32.self))
                    off += (n + 7) & ~7
                default:
                    break
                }
                seq += 1
                off += recSize
            }
            return off
        }

        let stop = try scan(fileBase, start, start + size, unpacked: false, fileOffset: start)
        if stop < start + size && stop + 8 > start + size && !pipe {
            throw InputError.corrupt(path: path, format: .perfData, offset: stop, what: "the data section ends inside a record header: truncated file")
        }
        if unpacked.parsed < unpacked.count {
            throw InputError.corrupt(path: path, format: .perfData, offset: unpacked.lastRecord,
                                     what: "the compressed records end inside a record (\(unpacked.count - unpacked.parsed) bytes left): truncated file")
        }
        try flush(upTo: nil)
    }
}

/// Where `PerfDataRecords` hands its records, in time order.
protocol PerfRecordDelivery: AnyObject {
    /// A sample or lost record; `base` is where `ref.offset` points into, valid only during the call.
    func deliver(_ ref: PerfRecordRef, _ base: UnsafeRawPointer) throws
    /// No record below this file offset will be handed out again.
    func releasable(_ offset: Int)
}

/// A sample or lost-events record as `PerfDataRecords` hands it out, in time order.
public struct PerfRecordRef {
    enum Kind: UInt8 { case sample, lost }
    var kind: Kind
    /// Where the record starts: in the file, or (`copied`) in its chunk's storage.
    var offset: Int
    var copied = false
    /// For messages and `RawEvent.offset`: the record's file offset, or its compressed record's.
    var reportOffset: Int
    var time: UInt64
    /// For a sample: the comm of its thread at this point (bytes in the reader's arena).
    var comm = UnsafeRawBufferPointer(start: nil, count: 0)

    init(kind: Kind, offset: Int, reportOffset: Int, time: UInt64) {
        self.kind = kind; self.offset = offset; self.reportOffset = reportOffset; self.time = time
    }
}

/// Consecutive records in the order they are emitted, to decode on any thread (`PerfChunkDecoder`).
/// Chunks are reused: the ordering thread refills one once what it held was merged, so steady state
/// allocates nothing.
public final class PerfRecordChunk: @unchecked Sendable {
    private var refs: UnsafeMutablePointer<PerfRecordRef>
    private var refCapacity: Int
    /// Records (samples and lost records) in the chunk.
    public private(set) var count = 0
    /// Copies of records from decompressed data (`perf record -z`), which the ordering thread overwrites.
    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private var used = 0
    private var fileBase: UnsafeRawPointer?
    /// Bytes of records (where the chunk is cut).
    var bytes = 0
    /// How far into the file the ordering had read when the chunk was closed (for progress).
    public internal(set) var progressOffset = 0
    /// Once this chunk has been merged, the mapped file below this offset is no longer needed (-1: nothing).
    var releaseAfterMerge = -1

    public convenience init() { self.init(capacity: 4096) }

    init(capacity: Int) {
        refCapacity = max(capacity, 1)
        self.capacity = capacity == 0 ? 16 : 64 << 10
        storage = .allocate(byteCount: self.capacity, alignment: 16)
        refs = .allocate(capacity: refCapacity)
    }
    deinit {
        storage.deallocate()
        refs.deallocate()
    }

    /// Where the filler writes the records (and how many fit).
    var recordBuffer: (UnsafeMutablePointer<PerfRecordRef>, Int) { (refs, refCapacity) }

    /// Twice the room, the first `count` records kept.
    func growRecordBuffer(count: Int) -> (UnsafeMutablePointer<PerfRecordRef>, Int) {
        let bigger = UnsafeMutablePointer<PerfRecordRef>.allocate(capacity: refCapacity * 2)
        bigger.moveInitialize(from: refs, count: count)
        refs.deallocate()
        refs = bigger
        refCapacity *= 2
        return (refs, refCapacity)
    }

    func close(count: Int, bytes: Int, progress: Int) {
        self.count = count
        self.bytes = bytes
        progressOffset = progress
    }

    /// The records, in order.
    var records: UnsafeBufferPointer<PerfRecordRef> { UnsafeBufferPointer(start: refs, count: count) }

    func reset(fileBase: UnsafeRawPointer) {
        count = 0
        used = 0
        bytes = 0
        progressOffset = 0
        self.fileBase = fileBase
    }

    /// Copies a record into the chunk; returns its offset in `storage`.
    func copy(_ p: UnsafeRawPointer, _ n: Int) -> Int {
        if used + n > capacity {
            var c = capacity * 2
            while used + n > c { c *= 2 }
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 16)
            bigger.copyMemory(from: storage, byteCount: used)
            storage.deallocate()
            storage = bigger
            capacity = c
        }
        let at = used
        (storage + at).copyMemory(from: p, byteCount: n)
        used += (n + 7) & ~7
        return at
    }

    @inline(__always)
    func base(of ref: PerfRecordRef) -> UnsafeRawPointer { ref.copied ? UnsafeRawPointer(storage) : fileBase! }
}

/// Decodes samples and lost records into `RawEvent`s: the sample's fields by its attribute's
/// `sample_type`, its tracepoint payload through a `TepDecoder` of its own. One per thread.
public final class PerfChunkDecoder {
    let records: PerfDataRecords
    let decoder: TepDecoder
    private var event = RawEvent()
    /// Samples decoded (since the last chunk began): the `line` of the last one.
    public private(set) var emitted = 0

    init(_ records: PerfDataRecords) {
        self.records = records
        decoder = TepDecoder(tep: records.tep, names: records.reader.names, path: records.path, format: .perfData, lock: records.tepLock)
        decoder.preparePlans()
    }

    /// Decodes the records of `chunk` into `sink`, samples numbered from 1 (`RawEvent.line`).
    /// - Throws: `InputError` for a sample that does not fit its record or names an event the file does not
    ///   define (the records before it were sunk).
    public func decode(_ chunk: PerfRecordChunk, into sink: RawEventSink) throws {
        emitted = 0
        for ref in chunk.records { try decode(ref, chunk.base(of: ref), into: sink) }
    }

    func decode(_ ref: PerfRecordRef, _ base: UnsafeRawPointer, into sink: RawEventSink) throws {
        let off = ref.offset
        let end = off + Int(base.loadUnaligned(fromByteOffset: off + 6, as: UInt16.self))
        switch ref.kind {
        case .lost:
            let (_, cpu) = records.trailer(base, off, end)
            let type = base.loadUnaligned(fromByteOffset: off, as: UInt32.self)
            event = RawEvent()
            event.kind = .lostEvents
            event.cpu = cpu ?? 0
            event.lostCount = base.loadUnaligned(fromByteOffset: off + (type == 2 ? 16 : 8), as: UInt64.self)
            event.timestamp = ref.time
            event.offset = ref.reportOffset
            event.line = emitted
            sink.consume(&event)
        case .sample:
            emitted += 1
            try sample(base, off, end, records.attrFor(base, off, end), ref, sink)
        }
    }

    private func corrupt(_ ref: PerfRecordRef, _ what: String) -> InputError {
        InputError.corrupt(path: records.path, format: .perfData, offset: ref.reportOffset, what: what)
    }

    private func sample(_ base: UnsafeRawPointer, _ off: Int, _ end: Int, _ a: PerfDataReader.Attr, _ ref: PerfRecordRef, _ sink: RawEventSink) throws {
        @inline(__always) func u64(_ o: Int) -> UInt64 { base.loadUnaligned(fromByteOffset: o, as: UInt64.self) }
        @inline(__always) func u32(_ o: Int) -> UInt32 { base.loadUnaligned(fromByteOffset: o, as: UInt32.self) }
        let st = a.sampleType
        var p = off + 8
        @inline(__always) func need(_ n: Int, _ what: StaticString) throws {
            if p + n > end { throw corrupt(ref, "sample record ends inside its \(what) (record size \(end - off))") }
        }
        if st & PerfDataReader.IDENTIFIER != 0 { try need(8, "identifier"); p += 8 }
        if st & PerfDataReader.IP != 0 { try need(8, "ip"); p += 8 }
        var tid: Int32 = 0
        if st & PerfDataReader.TID != 0 { try need(8, "pid/tid"); tid = Int32(bitPattern: u32(p + 4)); p += 8 }
        var time: UInt64 = 0
        if st & PerfDataReader.TIME != 0 { try need(8, "time"); time = u64(p); p += 8 }
        if st & PerfDataReader.ADDR != 0 { try need(8, "addr"); p += 8 }
        if st & PerfDataReader.ID != 0 { try need(8, "id"); p += 8 }
        if st & PerfDataReader.STREAM_ID != 0 { try need(8, "stream id"); p += 8 }
        var cpu: Int32 = 0
        if st & PerfDataReader.CPU != 0 { try need(8, "cpu"); cpu = Int32(bitPattern: u32(p)); p += 8 }
        if st & PerfDataReader.PERIOD != 0 { try need(8, "period"); p += 8 }
        var chain = (start: 0, count: 0)
        if st & PerfDataReader.CALLCHAIN != 0 {
            try need(8, "callchain length")
            let nr = u64(p)
            p += 8
            guard nr <= UInt64(end - p) / 8 else { throw corrupt(ref, "callchain of \(nr) entries does not fit in its sample record") }
            chain = (p, Int(nr))
            p += Int(nr) * 8
        }
        event = RawEvent()
        event.kind = .event
        event.line = emitted
        event.offset = ref.reportOffset
        event.timestamp = time
        event.cpu = cpu
        if a.isTracepoint && st & PerfDataReader.RAW != 0 {
            try need(4, "raw size")
            let rawSize = Int(u32(p))
            p += 4
            try need(rawSize, "raw tracepoint data")
            guard try decodeRaw(base + p, rawSize, ref.reportOffset, for: sink) != nil else {
                sink.malformed(line: emitted, offset: ref.reportOffset, reason: "raw tracepoint data shorter than its common fields",
                               text: UnsafeRawBufferPointer(start: base + p, count: rawSize))
                return
            }
        } else {
            // A counter or software event: perf script prints its name, the period and the ip.
            event.name = a.name
        }
        // perf names the task by the sample's tid and the comm its COMM/FORK records gave it.
        event.pid = tid
        event.comm = ref.comm
        sink.consume(&event)
        if chain.count > 0 {
            event.kind = .stackTrace
            event.name = 0
            event.payload = UnsafeRawBufferPointer(start: nil, count: 0)
            sink.consume(&event)
            event.kind = .stackFrame
            for k in 0..<chain.count {
                let ip = u64(chain.start + k * 8)
                if ip >= 0xffff_ffff_ffff_f000 { continue }   // PERF_CONTEXT_KERNEL/USER markers
                decoder.writeFrame(ip)
                event.payload = decoder.writer.bytes
                sink.consume(&event)
            }
        }
    }

    private func decodeRaw(_ p: UnsafeRawPointer, _ n: Int, _ off: Int, for sink: RawEventSink) throws -> TepDecoder.Kind? {
        do {
            return try decoder.decode(p, n, into: &event, offset: off, for: sink)
        } catch let e as InputError {
            if case .corrupt = e, let type = decoder.typeID(p, n), let name = records.reader.failedFormats[type] {
                throw InputError.unusable(path: decoder.path, format: .perfData, what: "the format of event \(name) (id \(type)) could not be parsed by libtraceevent")
            }
            throw e
        }
    }
}
