import CTraceCmd
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads `perf.data` (file mode, `PERFILE2`) recorded with tracepoints or probes, directly: no `perf`.
///
/// - The header gives the attribute table, the data section and the feature bitmap; the
///   `HEADER_TRACING_DATA` feature (bit 1) holds the event formats, kallsyms and printk formats perf
///   copied from tracefs, which are fed to libtraceevent.
/// - Each `PERF_RECORD_SAMPLE` is laid out by its attribute's `sample_type` (IDENTIFIER, IP, TID,
///   TIME, ADDR, ID, STREAM_ID, CPU, PERIOD, CALLCHAIN, RAW, in that order); its `PERF_SAMPLE_RAW`
///   payload is a tracepoint record decoded like a trace.dat record (`TepDecoder`).
/// - `PERF_RECORD_COMM`/`FORK` give each thread its comm as `perf script` shows it; `LOST` and
///   `LOST_SAMPLES` become `.lostEvents` (CPU from the `sample_id_all` trailer).
/// - Records are put in timestamp order the way perf does: everything up to the newest timestamp
///   of the previous `FINISHED_ROUND` is sorted and emitted at each round, so memory holds about
///   two rounds, not the file.
public final class PerfDataReader {
    public let names: StringTable
    public private(set) var samples = 0

    public init(names: StringTable) { self.names = names }

    /// Comms handed out with records; lives as long as the reader.
    private let arena = ByteArena()

    // sample_type bits (include/uapi/linux/perf_event.h)
    static let IP: UInt64 = 1 << 0, TID: UInt64 = 1 << 1, TIME: UInt64 = 1 << 2, ADDR: UInt64 = 1 << 3, READ: UInt64 = 1 << 4
    static let CALLCHAIN: UInt64 = 1 << 5, ID: UInt64 = 1 << 6, CPU: UInt64 = 1 << 7, PERIOD: UInt64 = 1 << 8
    static let STREAM_ID: UInt64 = 1 << 9, RAW: UInt64 = 1 << 10, IDENTIFIER: UInt64 = 1 << 16

    struct Attr {
        var sampleType: UInt64
        var sampleIDAll: Bool
        /// Offset of PERF_SAMPLE_TIME in a sample record (nil without it).
        var timeOffset: Int?
        /// The sample_id_all trailer of other records: its size and where time and cpu sit in it.
        var trailerSize = 0
        var trailerTime: Int?
        var trailerCPU: Int?

        init(sampleType st: UInt64, sampleIDAll: Bool) {
            sampleType = st
            self.sampleIDAll = sampleIDAll
            if st & PerfDataReader.TIME != 0 {
                var p = 8
                for bit in [PerfDataReader.IDENTIFIER, PerfDataReader.IP, PerfDataReader.TID] where st & bit != 0 { p += 8 }
                timeOffset = p
            }
            if sampleIDAll {
                var n = 0
                for bit in [PerfDataReader.TID, PerfDataReader.TIME, PerfDataReader.ID, PerfDataReader.STREAM_ID, PerfDataReader.CPU, PerfDataReader.IDENTIFIER] where st & bit != 0 {
                    if bit == PerfDataReader.TIME { trailerTime = n }
                    if bit == PerfDataReader.CPU { trailerCPU = n }
                    n += 8
                }
                trailerSize = n
            }
        }
    }

    enum EntryKind: UInt8 { case sample, comm, fork, lost }
    struct Entry { var time: UInt64; var seq: Int; var offset: Int; var kind: EntryKind }

    public func read(_ input: TraceInput, into sink: RawEventSink, check: () throws -> Void) throws {
        let path = input.path == "-" ? "<stdin>" : input.path
        try input.withWholeFile { file, _ in
            // One thread: parsing and decoding are most of the work here (a second thread for the
            // sink was measured no faster).
            try read(file.bytes, path: path, into: sink, check: check, release: { file.release(upTo: $0) })
        }
    }

    // MARK: Header

    /// - Parameter release: told the offset below which no record will be read again (mapped pages
    ///   behind it can be dropped).
    func read(_ bytes: UnsafeRawBufferPointer, path: String, into sink: RawEventSink, check: () throws -> Void,
              release: (Int) -> Void = { _ in }) throws {
        var c = BinaryCursor(bytes, path: path, format: .perfData)
        try c.need(8, "the perf.data magic")
        let magic = Array(UnsafeRawBufferPointer(rebasing: bytes[0..<8]))
        if magic == Array("2ELIFREP".utf8) {
            throw InputError.unusable(path: path, format: .perfData, what: "big-endian perf.data files are not supported")
        }
        guard magic == Array("PERFILE2".utf8) else { throw c.fail("wrong magic: expected PERFILE2 at the start of a perf.data", at: 0) }
        c.pos = 8
        let headerSize = try c.u64("the header size")
        if headerSize == 16 {
            throw InputError.unusable(path: path, format: .perfData, what: "pipe-mode perf.data (perf record -o -) is not supported; record to a file")
        }
        guard headerSize >= 104 else { throw c.fail("header size \(headerSize), expected 104", at: 8) }
        let attrSize = try c.u64("the attribute size")
        let attrsOff = try c.u64("the attribute section offset"), attrsSize = try c.u64("the attribute section size")
        let dataOff = try c.u64("the data section offset"), dataSize = try c.u64("the data section size")
        _ = try c.u64("the event types offset"); _ = try c.u64("the event types size")
        var features: [UInt64] = []
        for _ in 0..<4 { features.append(try c.u64("the feature bitmap")) }
        try checkRange(c, attrsOff, attrsSize, "the attribute section")
        try checkRange(c, dataOff, dataSize, "the data section")
        guard attrSize >= 16 + 64 && attrSize < 4096 else { throw c.fail("attribute size \(attrSize) is not plausible", at: 16) }

        // Attributes and their sample ids.
        var attrs: [Attr] = []
        var idToAttr: [UInt64: Int] = [:]
        let nAttrs = Int(attrsSize / attrSize)
        for k in 0..<nAttrs {
            var a = c
            a.pos = Int(attrsOff) + k * Int(attrSize)
            let base = a.pos
            a.pos = base + 24
            let sampleType = try a.u64("sample_type of attribute \(k)")
            a.pos = base + 40
            let flags = try a.u64("the flags of attribute \(k)")
            attrs.append(Attr(sampleType: sampleType, sampleIDAll: flags & (1 << 18) != 0))
            a.pos = base + Int(attrSize) - 16
            let idsOff = try a.u64("the id section offset of attribute \(k)")
            let idsSize = try a.u64("the id section size of attribute \(k)")
            try checkRange(c, idsOff, idsSize, "the sample ids of attribute \(k)")
            var ic = c
            ic.pos = Int(idsOff)
            for _ in 0..<Int(idsSize / 8) { idToAttr[try ic.u64("a sample id")] = k }
        }
        guard !attrs.isEmpty else { throw InputError.unusable(path: path, format: .perfData, what: "no event attributes: nothing was recorded") }

        // The tracing data feature.
        guard features[0] & 2 != 0 else {
            throw InputError.unusable(path: path, format: .perfData,
                                      what: "no tracing data (HEADER_TRACING_DATA feature): record tracepoints or probes (perf record -e sched:sched_switch ...)")
        }
        // The feature table: one {offset, size} per set bit (from bit 1), each section inside the file.
        let table = dataOff + dataSize
        let nFeatures = features.reduce(0) { $0 + $1.nonzeroBitCount }
        try checkRange(c, table, UInt64(nFeatures * 16), "the feature section table")
        var ft = c
        ft.pos = Int(table)
        for k in 0..<nFeatures {
            let o = try ft.u64("feature section \(k)'s offset"), sz = try ft.u64("feature section \(k)'s size")
            try checkRange(c, o, sz, "feature section \(k)")
        }
        var t = c
        t.pos = Int(table)
        let tdOff = try t.u64("the tracing data offset"), tdSize = try t.u64("the tracing data size")
        try checkRange(c, tdOff, tdSize, "the tracing data feature section")
        let tep = try loadTracingData(UnsafeRawBufferPointer(rebasing: bytes[Int(tdOff)..<Int(tdOff + tdSize)]), base: Int(tdOff), path: path)
        defer { tep_free(tep) }

        try readData(bytes, Int(dataOff), Int(dataSize), attrs: attrs, idToAttr: idToAttr, tep: tep, path: path, sink: sink, check: check,
                     release: release)
    }

    private func checkRange(_ c: BinaryCursor, _ off: UInt64, _ size: UInt64, _ what: String) throws {
        let total = UInt64(c.bytes.count)
        if off > total || size > total || off + size > total {
            throw c.fail("\(what) is recorded at offset \(off) with \(size) bytes, past the end of the file (\(total) bytes): truncated file",
                         at: Int(min(off, total)))
        }
    }

    /// The tracing data perf stores (the layout of a trace.dat v6 head): formats -> libtraceevent.
    private var failedFormats: [Int: String] = [:]

    private func loadTracingData(_ b: UnsafeRawBufferPointer, base: Int, path: String) throws -> OpaquePointer {
        var c = BinaryCursor(b, path: path, format: .perfData)
        func at(_ e: InputError) -> InputError {
            if case let .corrupt(p, f, off, what) = e { return .corrupt(path: p, format: f, offset: off + base, what: "tracing data: " + what) }
            return e
        }
        guard let tep = tep_alloc() else { throw InputError.unusable(path: path, format: .perfData, what: "libtraceevent: out of memory") }
        do {
            for (k, m) in TraceDatLayout.magic.enumerated() {
                try c.need(k + 1, "the tracing data magic")
                if b[k] != m { throw c.fail("tracing data does not start with \\x17\\x08\\x44tracing", at: k) }
            }
            c.pos = 10
            let version = try c.cString("the tracing data version", limit: 16)
            let big = try c.u8("the endianness byte")
            c.bigEndian = big == 1
            let longSize = Int32(try c.u8("the long size"))
            let pageSize = Int32(bitPattern: try c.u32("the page size"))
            tep_set_file_bigendian(tep, big == 1 ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN)
            tep_set_local_bigendian(tep, TEP_LITTLE_ENDIAN)
            tep_set_long_size(tep, longSize)
            tep_set_page_size(tep, pageSize)
            try c.expect("header_page\0", "section name")
            let hp = try c.u64("the header_page size")
            try c.skip(hp, "the header_page section")
            _ = tep_parse_header_page(tep, UnsafeMutableRawPointer(mutating: b.baseAddress! + c.pos - Int(hp)).assumingMemoryBound(to: CChar.self), UInt(hp), longSize)
            try c.expect("header_event\0", "section name")
            try c.skip(try c.u64("the header_event size"), "the header_event section")
            var formats: [(system: String, text: [UInt8])] = []
            func collectFormats(_ system: String, _ count: UInt32) throws {
                guard Int(count) <= c.remaining / 8 else { throw c.fail("format count \(count) of \(system) does not fit", at: c.pos - 4) }
                for _ in 0..<count {
                    let size = try c.u64("an event format size of \(system)")
                    let start = c.pos
                    try c.skip(size, "an event format of \(system)")
                    formats.append((system, Array(b[start..<start + Int(size)])))
                }
            }
            try collectFormats("ftrace", try c.u32("the ftrace format count"))
            let systems = try c.u32("the event system count")
            guard Int(systems) <= c.remaining / 5 else { throw c.fail("event system count \(systems) does not fit", at: c.pos - 4) }
            for _ in 0..<systems {
                let sys = try c.cString("an event system name")
                try collectFormats(sys, try c.u32("the event count of \(sys)"))
            }
            // A damaged format can crash libtraceevent: parse them in a child process first.
            try FormatGuard.check(formats, longSize: Int(longSize), path: path, format: .perfData)
            for f in formats {
                let rc = f.text.withUnsafeBytes { t in
                    tep_parse_event(tep, t.baseAddress?.assumingMemoryBound(to: CChar.self), UInt(t.count), f.system)
                }
                if rc.rawValue != 0 { f.text.withUnsafeBytes { noteFailure($0, system: f.system) } }
            }
            let ks = try c.u32("the kallsyms size")
            let ksStart = c.pos
            try c.skip(UInt64(ks), "the kallsyms section")
            if ks > 0 {
                var text = [CChar](repeating: 0, count: Int(ks) + 1)
                text.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[ksStart..<ksStart + Int(ks)])) }
                _ = tep_parse_kallsyms(tep, text)
            }
            let pk = try c.u32("the printk formats size")
            let pkStart = c.pos
            try c.skip(UInt64(pk), "the printk formats section")
            if pk > 0 {
                let text = PrintkFormats.sanitized(UnsafeRawBufferPointer(rebasing: b[pkStart..<pkStart + Int(pk)])).text
                if text.count > 1 { _ = tep_parse_printk_formats(tep, text) }
            }
            if version >= "0.6" && c.remaining >= 8 {
                let cl = try c.u64("the saved cmdlines size")
                try c.skip(cl, "the saved cmdlines section")
            }
        } catch let e as InputError {
            tep_free(tep)
            throw at(e)
        }
        return tep
    }

    /// Remembers "system:name (ID n)" of a format libtraceevent rejected, for the error a record of it gets.
    private func noteFailure(_ text: UnsafeRawBufferPointer, system: String) {
        let s = String(decoding: text, as: UTF8.self)
        var name = "?", id = -1
        for line in s.split(separator: "\n").prefix(4) {
            if line.hasPrefix("name: ") { name = String(line.dropFirst(6)) }
            if line.hasPrefix("ID: "), let v = Int(line.dropFirst(4)) { id = v }
        }
        failedFormats[id] = "\(system):\(name)"
    }

    // MARK: Data

    private func readData(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ size: Int, attrs: [Attr], idToAttr: [UInt64: Int],
                          tep: OpaquePointer, path: String, sink: RawEventSink, check: () throws -> Void,
                          release: (Int) -> Void) throws {
        let decoder = TepDecoder(tep: tep, names: names, path: path, format: .perfData)
        decoder.preparePlans()
        let uniform = attrs.allSatisfy { $0.sampleType == attrs[0].sampleType }
        if !uniform && !attrs.allSatisfy({ $0.sampleType & PerfDataReader.IDENTIFIER != 0 }) {
            throw InputError.unusable(path: path, format: .perfData, what: "events with different sample types need PERF_SAMPLE_IDENTIFIER, which this file lacks")
        }
        for a in attrs where a.sampleType & PerfDataReader.READ != 0 {
            throw InputError.unusable(path: path, format: .perfData, what: "PERF_SAMPLE_READ samples (perf record -s / group reads) are not supported")
        }
        let base = bytes.baseAddress!
        func u64(_ o: Int) -> UInt64 { base.loadUnaligned(fromByteOffset: o, as: UInt64.self) }
        func u32(_ o: Int) -> UInt32 { base.loadUnaligned(fromByteOffset: o, as: UInt32.self) }
        func u16(_ o: Int) -> UInt16 { base.loadUnaligned(fromByteOffset: o, as: UInt16.self) }

        func attrFor(_ off: Int, _ recEnd: Int) -> Attr {
            if uniform { return attrs[0] }
            guard off + 8 + 8 <= recEnd else { return attrs[0] }
            return attrs[idToAttr[u64(off + 8)] ?? 0]
        }
        /// The sample_id_all trailer of a non-sample record: (time, cpu).
        let first = attrs[0]
        func trailer(_ off: Int, _ end: Int) -> (UInt64?, Int32?) {
            guard first.sampleIDAll else { return (nil, nil) }
            let p = end - first.trailerSize
            guard p >= off + 8 else { return (nil, nil) }
            return (first.trailerTime.map { u64(p + $0) }, first.trailerCPU.map { Int32(bitPattern: u32(p + $0)) })
        }

        var queue: [Entry] = []
        var seq = 0
        var lastTime: UInt64 = 0
        var maxSeen: UInt64 = 0
        var previousRoundMax: UInt64 = 0
        // Comm per tid (tids up to 4M), bytes in the reader's `arena`.
        var comms: [UnsafeRawBufferPointer?] = []
        func setComm(_ tid: Int32, _ c: UnsafeRawBufferPointer) {
            let i = Int(tid)
            guard i >= 0 && i < 1 << 22 else { return }
            if i >= comms.count { comms.append(contentsOf: repeatElement(nil, count: i + 1 - comms.count)) }
            comms[i] = c
        }
        func commOf(_ tid: Int32) -> UnsafeRawBufferPointer? {
            let i = Int(tid)
            return i >= 0 && i < comms.count ? comms[i] : nil
        }
        var event = RawEvent()
        var emitted = 0

        func emit(_ e: Entry) throws {
            let off = e.offset
            let recSize = Int(u16(off + 6))
            let end = off + recSize
            switch e.kind {
            case .comm:
                let tid = Int32(bitPattern: u32(off + 12))
                var n = 0
                while off + 16 + n < end && base.load(fromByteOffset: off + 16 + n, as: UInt8.self) != 0 && n < 64 { n += 1 }
                setComm(tid, arena.store(Array(UnsafeRawBufferPointer(start: base + off + 16, count: n))))
            case .fork:
                let tid = Int32(bitPattern: u32(off + 16)), ptid = Int32(bitPattern: u32(off + 20))
                if let pc = commOf(ptid) { setComm(tid, pc) }
            case .lost:
                let (_, cpu) = trailer(off, end)
                let type = u32(off)
                event = RawEvent()
                event.kind = .lostEvents
                event.cpu = cpu ?? 0
                event.lostCount = type == 2 ? u64(off + 16) : u64(off + 8)
                event.timestamp = e.time
                event.offset = off
                event.line = emitted
                sink.consume(&event)
            case .sample:
                emitted += 1
                try emitSample(off, end, attrFor(off, end))
                if emitted & 4095 == 0 { try check() }
            }
        }

        func emitSample(_ off: Int, _ end: Int, _ a: Attr) throws {
            let st = a.sampleType
            var p = off + 8
            func need(_ n: Int, _ what: String) throws {
                if p + n > end { throw InputError.corrupt(path: path, format: .perfData, offset: off, what: "sample record ends inside its \(what) (record size \(end - off))") }
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
                guard nr <= UInt64(end - p) / 8 else { throw InputError.corrupt(path: path, format: .perfData, offset: off, what: "callchain of \(nr) entries does not fit in its sample record") }
                chain = (p, Int(nr))
                p += Int(nr) * 8
            }
            guard st & PerfDataReader.RAW != 0 else { return }   // not a tracepoint sample
            try need(4, "raw size")
            let rawSize = Int(u32(p))
            p += 4
            try need(rawSize, "raw tracepoint data")
            event = RawEvent()
            event.kind = .event
            event.line = emitted
            event.offset = off
            event.timestamp = time
            event.cpu = cpu
            guard let kind = try decodeRaw(decoder, base + p, rawSize, &event, off) else {
                sink.malformed(line: emitted, offset: off, reason: "raw tracepoint data shorter than its common fields",
                               text: UnsafeRawBufferPointer(start: base + p, count: rawSize))
                return
            }
            // perf names the task by the sample's tid and the comm its COMM/FORK records gave it.
            event.pid = tid
            if let cm = commOf(tid) {
                event.comm = cm
            } else {
                // perf script's name for a thread it has no COMM for.
                let unknown = arena.store(Array(":\(tid)".utf8))
                setComm(tid, unknown)
                event.comm = unknown
            }
            sink.consume(&event)
            _ = kind
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

        func flush(upTo limit: UInt64?) throws {
            queue.sort { $0.time != $1.time ? $0.time < $1.time : $0.seq < $1.seq }
            var k = 0
            while k < queue.count, limit == nil || queue[k].time <= limit! {
                try emit(queue[k])
                k += 1
            }
            queue.removeFirst(k)
        }

        var off = start
        let end = start + size
        while off + 8 <= end {
            let type = u32(off)
            let recSize = Int(u16(off + 6))
            guard recSize >= 8, off + recSize <= end else {
                throw InputError.corrupt(path: path, format: .perfData, offset: off,
                                         what: recSize < 8 ? "record of size \(recSize), expected at least 8" : "record of \(recSize) bytes runs past the end of the data section: truncated file")
            }
            switch type {
            case 9:  // SAMPLE
                let a = attrFor(off, off + recSize)
                var time = lastTime
                if let t = a.timeOffset, t + 8 <= recSize { time = u64(off + t) }
                lastTime = time
                maxSeen = max(maxSeen, time)
                queue.append(Entry(time: time, seq: seq, offset: off, kind: .sample))
            case 3, 7, 2, 13:  // COMM, FORK, LOST, LOST_SAMPLES
                let need = type == 3 ? 16 : (type == 7 ? 32 : (type == 2 ? 24 : 16))
                guard recSize >= need else {
                    throw InputError.corrupt(path: path, format: .perfData, offset: off, what: "record of type \(type) is \(recSize) bytes, expected at least \(need)")
                }
                var time = trailer(off, off + recSize).0 ?? lastTime
                if type == 7 { time = u64(off + 24) }
                queue.append(Entry(time: time, seq: seq, offset: off, kind: type == 3 ? .comm : (type == 7 ? .fork : .lost)))
            case 68:  // FINISHED_ROUND
                try flush(upTo: previousRoundMax)
                previousRoundMax = maxSeen
                release(queue.reduce(off) { min($0, $1.offset) })
            case 81:
                throw InputError.unusable(path: path, format: .perfData, what: "compressed records (perf record -z) are not supported")
            default:
                break
            }
            seq += 1
            off += recSize
        }
        try flush(upTo: nil)
        samples = emitted
    }

    private func decodeRaw(_ decoder: TepDecoder, _ p: UnsafeRawPointer, _ n: Int, _ ev: inout RawEvent, _ off: Int) throws -> TepDecoder.Kind? {
        do {
            return try decoder.decode(p, n, into: &ev, offset: off)
        } catch let e as InputError {
            if case .corrupt = e, let type = decoder.typeID(p, n), let name = failedFormats[type] {
                throw InputError.unusable(path: decoder.path, format: .perfData, what: "the format of event \(name) (id \(type)) could not be parsed by libtraceevent")
            }
            throw e
        }
    }
}
