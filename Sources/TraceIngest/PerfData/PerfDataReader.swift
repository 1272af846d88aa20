import CTraceCmd
import CZstd
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads `perf.data` (`PERFILE2`, file or pipe mode) directly: no `perf`.
///
/// - File mode (`perf record -o FILE`): the header gives the attribute table, the data section and the
///   feature bitmap. Pipe mode (`perf record -o -`, a 16-byte header): the same things arrive as
///   records in the stream (`HEADER_ATTR`, `HEADER_FEATURE`, `HEADER_TRACING_DATA` followed by its
///   data, `EVENT_UPDATE`), before the samples that need them.
/// - The tracing data (feature bit 1, or the pipe record) holds the event formats, kallsyms and printk
///   formats perf copied from tracefs, which are fed to libtraceevent. A file of counter samples only
///   (`perf record -e cycles -g`) has none and needs none.
/// - Every `PERF_RECORD_SAMPLE` is one event. A tracepoint sample (`PERF_SAMPLE_RAW` of a
///   `PERF_TYPE_TRACEPOINT` attribute) is decoded like a trace.dat record (`TepDecoder`); any other
///   sample (cycles, cpu-clock, page-faults, ...) is an event named as `perf script` names it (the
///   `HEADER_EVENT_DESC` name, else one built from the attribute like perf's `evsel__name`), with an
///   empty payload, which the probe map leaves unmapped: counted, never skipped.
/// - `PERF_RECORD_COMPRESSED` (`perf record -z`) records hold one zstd stream across the file; their
///   decompressed records are read as if they stood in the file.
/// - Each `PERF_RECORD_SAMPLE` is laid out by its attribute's `sample_type` (IDENTIFIER, IP, TID,
///   TIME, ADDR, ID, STREAM_ID, CPU, PERIOD, CALLCHAIN, RAW, in that order); its `PERF_SAMPLE_RAW`
///   payload is a tracepoint record decoded like a trace.dat record (`TepDecoder`).
/// - `PERF_RECORD_COMM`/`FORK` give each thread its comm as `perf script` shows it; `LOST` and
///   `LOST_SAMPLES` become `.lostEvents` (CPU from the `sample_id_all` trailer).
/// - Records are put in timestamp order the way perf does: everything up to the newest timestamp
///   of the previous `FINISHED_ROUND` is sorted and emitted at each round, so memory holds about
///   two rounds, not the file.
/// - The data section is read by `PerfDataRecords` (`withRecords`): on one thread (`read`), or ordered
///   on one thread and decoded in chunks on others (`ParallelIngest` with `PerfDataPieceSource` in EventModel).
public final class PerfDataReader {
    public let names: StringTable
    public internal(set) var samples = 0

    public init(names: StringTable) { self.names = names }

    /// Comms handed out with records; lives as long as the reader.
    let arena = ByteArena()

    // sample_type bits (include/uapi/linux/perf_event.h)
    static let IP: UInt64 = 1 << 0, TID: UInt64 = 1 << 1, TIME: UInt64 = 1 << 2, ADDR: UInt64 = 1 << 3, READ: UInt64 = 1 << 4
    static let CALLCHAIN: UInt64 = 1 << 5, ID: UInt64 = 1 << 6, CPU: UInt64 = 1 << 7, PERIOD: UInt64 = 1 << 8
    static let STREAM_ID: UInt64 = 1 << 9, RAW: UInt64 = 1 << 10, IDENTIFIER: UInt64 = 1 << 16

    struct Attr {
        var sampleType: UInt64
        var sampleIDAll: Bool
        /// `perf_event_attr.type`: 2 is `PERF_TYPE_TRACEPOINT`.
        var type: UInt32 = 2
        /// The event name samples of this attribute get (non-tracepoint events).
        var name: StringTable.ID = 0
        var isTracepoint: Bool { type == 2 }
        /// Offset of PERF_SAMPLE_TIME in a sample record (nil without it).
        var timeOffset: Int?
        /// Offset of PERF_SAMPLE_TID (u32 pid, u32 tid) in a sample record (nil without it).
        var tidOffset: Int?
        /// The sample_id_all trailer of other records: its size and where time and cpu sit in it.
        var trailerSize = 0
        var trailerTime: Int?
        var trailerCPU: Int?

        init(sampleType st: UInt64, sampleIDAll: Bool) {
            sampleType = st
            self.sampleIDAll = sampleIDAll
            if st & PerfDataReader.TID != 0 {
                tidOffset = 8 + (st & PerfDataReader.IDENTIFIER != 0 ? 8 : 0) + (st & PerfDataReader.IP != 0 ? 8 : 0)
            }
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

    /// Reads every record on this thread, in time order, into `sink`.
    public func read(_ input: TraceInput, into sink: RawEventSink, check: () throws -> Void) throws {
        try withRecords(input) { try $0.read(into: sink, check: check) }
    }

    /// Parses the header, attributes and tracing data of `input` and hands `body` its records, to read
    /// on one thread (`PerfDataRecords.read`) or in chunks on several (`PerfDataRecords.forEachChunk`).
    /// The records are valid only inside `body`.
    public func withRecords(_ input: TraceInput, _ body: (PerfDataRecords) throws -> Void) throws {
        let path = input.path == "-" ? "<stdin>" : input.path
        try input.withWholeFile { file, _ in
            try open(file.bytes, path: path, release: { file.release(upTo: $0) }, body)
        }
    }


    // MARK: Header

    /// - Parameter release: told the offset below which no record will be read again (mapped pages
    ///   behind it can be dropped).
    func open(_ bytes: UnsafeRawBufferPointer, path: String, release: @escaping (Int) -> Void,
              _ body: (PerfDataRecords) throws -> Void) throws {
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
            try readPipe(bytes, path: path, release: release, body)
            return
        }
        guard headerSize >= 104 else { throw c.fail("header size \(headerSize), expected 104", at: 8) }
        let attrSize = try c.u64("the attribute size")
        let attrsOff = try c.u64("the attribute section offset"), attrsSize = try c.u64("the attribute section size")
        let dataOff = try c.u64("the data section offset")
        var dataSize = try c.u64("the data section size")
        _ = try c.u64("the event types offset"); _ = try c.u64("the event types size")
        var features: [UInt64] = []
        for _ in 0..<4 { features.append(try c.u64("the feature bitmap")) }
        if dataSize == 0 && dataOff < UInt64(bytes.count) {
            // perf record did not finish (killed): the header still has its first version, data size 0 and no
            // feature sections. perf report reads to the end of the file; so does this (counter samples only:
            // tracepoints need the tracing data feature it never wrote).
            dataSize = UInt64(bytes.count) - dataOff
            features = [0, 0, 0, 0]
        }
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
            attrs.append(try attribute(a, at: base, "attribute \(k)"))
            a.pos = base + Int(attrSize) - 16
            let idsOff = try a.u64("the id section offset of attribute \(k)")
            let idsSize = try a.u64("the id section size of attribute \(k)")
            try checkRange(c, idsOff, idsSize, "the sample ids of attribute \(k)")
            var ic = c
            ic.pos = Int(idsOff)
            for _ in 0..<Int(idsSize / 8) { idToAttr[try ic.u64("a sample id")] = k }
        }
        guard !attrs.isEmpty else { throw InputError.unusable(path: path, format: .perfData, what: "no event attributes: nothing was recorded") }

        // The feature table: one {offset, size} per set bit (from bit 1), each section inside the file.
        let table = dataOff + dataSize
        let nFeatures = features.reduce(0) { $0 + $1.nonzeroBitCount }
        try checkRange(c, table, UInt64(nFeatures * 16), "the feature section table")
        var ft = c
        ft.pos = Int(table)
        var sections: [Int: (Int, Int)] = [:]
        var bit = 0
        for k in 0..<nFeatures {
            while bit < 256 && features[bit / 64] & (1 << UInt64(bit % 64)) == 0 { bit += 1 }
            let o = try ft.u64("feature section \(k)'s offset"), sz = try ft.u64("feature section \(k)'s size")
            try checkRange(c, o, sz, "feature section \(k)")
            sections[bit] = (Int(o), Int(sz))
            bit += 1
        }
        if sections[1] == nil && attrs.contains(where: \.isTracepoint) {
            throw InputError.unusable(path: path, format: .perfData,
                                      what: "no tracing data (HEADER_TRACING_DATA feature) for its tracepoint events: perf record copies it from tracefs; was it readable?")
        }
        // HEADER_EVENT_DESC (bit 12): the names perf script prints.
        var eventNames = EventNames()
        if let (o, sz) = sections[12] { try readEventDesc(UnsafeRawBufferPointer(rebasing: bytes[o..<o + sz]), base: o, path: path, into: &eventNames) }
        for k in attrs.indices { attrs[k].name = eventNames.name(forAttr: k, ids: idToAttr, attr: attrs[k], rawAttr: attrBytes(bytes, Int(attrsOff) + k * Int(attrSize)), reader: self) }

        let tep: OpaquePointer
        if let (o, sz) = sections[1] {
            tep = try loadTracingData(UnsafeRawBufferPointer(rebasing: bytes[o..<o + sz]), base: o, path: path)
        } else {
            tep = try emptyTep(path)
        }
        defer { tep_free(tep) }

        try body(PerfDataRecords(reader: self, bytes: bytes, start: Int(dataOff), size: Int(dataSize), attrs: attrs, idToAttr: idToAttr,
                                 tep: tep, pipe: false, path: path, release: release))
    }

    /// `perf_event_attr` at `base`: type, sample_type, flags.
    private func attribute(_ c: BinaryCursor, at base: Int, _ what: String) throws -> Attr {
        var a = c
        a.pos = base
        let type = try a.u32("the type of \(what)")
        a.pos = base + 24
        let sampleType = try a.u64("sample_type of \(what)")
        a.pos = base + 40
        let flags = try a.u64("the flags of \(what)")
        var attr = Attr(sampleType: sampleType, sampleIDAll: flags & (1 << 18) != 0)
        attr.type = type
        return attr
    }

    private func attrBytes(_ bytes: UnsafeRawBufferPointer, _ o: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[o..<min(bytes.count, o + 72)])
    }

    private func emptyTep(_ path: String) throws -> OpaquePointer {
        guard let tep = tep_alloc() else { throw InputError.unusable(path: path, format: .perfData, what: "libtraceevent: out of memory") }
        tep_set_long_size(tep, 8)
        return tep
    }

    /// Event names by sample id (`HEADER_EVENT_DESC`, pipe-mode `EVENT_UPDATE` names).
    struct EventNames {
        var byID: [UInt64: String] = [:]
        var byIndex: [Int: String] = [:]

        func name(forAttr k: Int, ids: [UInt64: Int], attr: Attr, rawAttr: UnsafeRawBufferPointer, reader: PerfDataReader) -> StringTable.ID {
            var n = byIndex[k]
            if n == nil { for (id, a) in ids where a == k { if let m = byID[id] { n = m; break } } }
            let text = n ?? PerfEventNames.name(rawAttr)
            return reader.internEventName(text)
        }
    }

    /// `HEADER_EVENT_DESC`: u32 nr, u32 attr_size, then per event the attr, u32 nr_ids, a string
    /// (u32 length, bytes padded), nr_ids u64 ids.
    private func readEventDesc(_ b: UnsafeRawBufferPointer, base: Int, path: String, into names: inout EventNames) throws {
        var c = BinaryCursor(b, path: path, format: .perfData)
        do {
            let nr = try c.u32("the event description count")
            let attrSize = try c.u32("the event description attribute size")
            guard nr < 1 << 16, attrSize >= 64, attrSize < 4096 else { throw c.fail("event descriptions: \(nr) of \(attrSize) bytes is not plausible", at: 0) }
            for k in 0..<Int(nr) {
                try c.skip(UInt64(attrSize), "an event description's attribute")
                let nrIDs = try c.u32("an event description's id count")
                let len = try c.u32("an event name's length")
                let start = c.pos
                try c.skip(UInt64(len), "an event name")
                var e = start
                while e < start + Int(len) && b[e] != 0 { e += 1 }
                let name = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<e]), as: UTF8.self)
                names.byIndex[k] = name
                guard Int(nrIDs) <= c.remaining / 8 else { throw c.fail("\(nrIDs) sample ids do not fit", at: c.pos) }
                for _ in 0..<nrIDs { names.byID[try c.u64("a sample id")] = name }
            }
        } catch let InputError.corrupt(p, f, off, what) {
            throw InputError.corrupt(path: p, format: f, offset: off + base, what: "HEADER_EVENT_DESC: " + what)
        }
    }

    /// The name an event of perf's name `text` goes by, as the perf script reader names it.
    func internEventName(_ text: String) -> StringTable.ID {
        let bytes = text.isEmpty ? Array("[unknown]".utf8) : Array(text.utf8)
        return bytes.withUnsafeBufferPointer { b in PerfScriptReader.eventName(b.baseAddress!, 0, b.count, names: names) }
    }

    // MARK: Pipe mode

    /// `perf record -o -`: header records first, then data, all in one stream after a 16-byte header.
    private func readPipe(_ bytes: UnsafeRawBufferPointer, path: String, release: @escaping (Int) -> Void,
                          _ body: (PerfDataRecords) throws -> Void) throws {
        let base = bytes.baseAddress!
        var attrs: [Attr] = []
        var rawAttrs: [UnsafeRawBufferPointer] = []
        var idToAttr: [UInt64: Int] = [:]
        var eventNames = EventNames()
        var tep: OpaquePointer?
        defer { if let tep { tep_free(tep) } }
        var off = 16
        let c = BinaryCursor(bytes, path: path, format: .perfData)
        while off + 8 <= bytes.count {
            let type = base.loadUnaligned(fromByteOffset: off, as: UInt32.self)
            let size = Int(base.loadUnaligned(fromByteOffset: off + 6, as: UInt16.self))
            guard size >= 8, off + size <= bytes.count else { break }   // readData reports it
            switch type {
            case 64:   // HEADER_ATTR: the attribute, then its ids
                guard size >= 8 + 64 else { throw c.fail("HEADER_ATTR record of \(size) bytes", at: off) }
                let attrSize = Int(base.loadUnaligned(fromByteOffset: off + 12, as: UInt32.self))
                guard attrSize >= 64, 8 + attrSize <= size else { throw c.fail("HEADER_ATTR with an attribute of \(attrSize) bytes in a record of \(size)", at: off) }
                attrs.append(try attribute(c, at: off + 8, "HEADER_ATTR record"))
                rawAttrs.append(attrBytes(bytes, off + 8))
                var i = off + 8 + attrSize
                while i + 8 <= off + size { idToAttr[base.loadUnaligned(fromByteOffset: i, as: UInt64.self)] = attrs.count - 1; i += 8 }
            case 66:   // HEADER_TRACING_DATA: u32 size; the data follows the record, padded to 8
                guard size >= 12 else { throw c.fail("HEADER_TRACING_DATA record of \(size) bytes", at: off) }
                let n = Int(base.loadUnaligned(fromByteOffset: off + 8, as: UInt32.self))
                try checkRange(c, UInt64(off + size), UInt64(n), "the tracing data")
                if tep == nil {
                    tep = try loadTracingData(UnsafeRawBufferPointer(rebasing: bytes[(off + size)..<(off + size + n)]), base: off + size, path: path)
                }
                off += (n + 7) & ~7
            case 78:   // EVENT_UPDATE: u64 type (2 = NAME), u64 id, the name
                if size > 24 && base.loadUnaligned(fromByteOffset: off + 8, as: UInt64.self) == 2 {
                    let id = base.loadUnaligned(fromByteOffset: off + 16, as: UInt64.self)
                    var e = off + 24
                    while e < off + size && bytes[e] != 0 { e += 1 }
                    eventNames.byID[id] = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(off + 24)..<e]), as: UTF8.self)
                }
            case 80:   // HEADER_FEATURE: u64 feature id, the feature section
                if size > 16 && base.loadUnaligned(fromByteOffset: off + 8, as: UInt64.self) == 12 {
                    var descNames = EventNames()
                    try readEventDesc(UnsafeRawBufferPointer(rebasing: bytes[(off + 16)..<(off + size)]), base: off + 16, path: path, into: &descNames)
                    eventNames.byID.merge(descNames.byID) { a, _ in a }
                }
            default: break
            }
            off += size
        }
        guard !attrs.isEmpty else { throw InputError.unusable(path: path, format: .perfData, what: "no event attributes (HEADER_ATTR records): nothing was recorded") }
        for k in attrs.indices { attrs[k].name = eventNames.name(forAttr: k, ids: idToAttr, attr: attrs[k], rawAttr: rawAttrs[k], reader: self) }
        if tep == nil {
            if attrs.contains(where: \.isTracepoint) {
                throw InputError.unusable(path: path, format: .perfData, what: "no tracing data (HEADER_TRACING_DATA record) for its tracepoint events")
            }
            tep = try emptyTep(path)
        }
        try body(PerfDataRecords(reader: self, bytes: bytes, start: 16, size: bytes.count - 16, attrs: attrs, idToAttr: idToAttr,
                                 tep: tep!, pipe: true, path: path, release: release))
    }

    private func checkRange(_ c: BinaryCursor, _ off: UInt64, _ size: UInt64, _ what: String) throws {
        let total = UInt64(c.bytes.count)
        if off > total || size > total || off + size > total {
            throw c.fail("\(what) is recorded at offset \(off) with \(size) bytes, past the end of the file (\(total) bytes): truncated file",
                         at: Int(min(off, total)))
        }
    }

    /// The tracing data perf stores (the layout of a trace.dat v6 head): formats -> libtraceevent.
    private(set) var failedFormats: [Int: String] = [:]

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
}

/// The records `perf record -z` packed into `PERF_RECORD_COMPRESSED` records: one zstd stream across
/// the whole file, decompressed into a buffer that grows at the end and is trimmed at the front
/// once every record before a point has been emitted. A record may continue in the next compressed record.
final class UnpackedRecords {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private var capacity = 1 << 20
    /// Bytes up to here are whole records already queued.
    var parsed = 0
    /// File offset of the last compressed record, for messages.
    private(set) var lastRecord = 0
    private var stream: OpaquePointer?
    private let path: String

    init(path: String) {
        self.path = path
        base = .allocate(byteCount: capacity, alignment: 16)
    }
    deinit {
        base.deallocate()
        if let stream { ZSTD_freeDStream(stream) }
    }

    func decompress(_ data: UnsafeRawBufferPointer, at fileOffset: Int) throws {
        lastRecord = fileOffset
        if stream == nil {
            stream = ZSTD_createDStream()
            guard stream != nil else { throw InputError.unusable(path: path, format: .perfData, what: "cannot create a zstd context") }
        }
        var inb = ZSTD_inBuffer(src: data.baseAddress, size: data.count, pos: 0)
        while true {
            if capacity - count < 64 << 10 { grow() }
            var outb = ZSTD_outBuffer(dst: base + count, size: capacity - count, pos: 0)
            let rc = ZSTD_decompressStream(stream, &outb, &inb)
            if ZSTD_isError(rc) != 0 {
                throw InputError.corrupt(path: path, format: .perfData, offset: fileOffset,
                                         what: "compressed record (perf record -z): zstd: " + String(cString: ZSTD_getErrorName(rc)))
            }
            count += outb.pos
            if inb.pos == inb.size && outb.pos < outb.size { break }
            if outb.pos == 0 && inb.pos == inb.size { break }
        }
    }

    private func grow() {
        capacity *= 2
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        bigger.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = bigger
    }

    /// Forgets the first `n` bytes (every record in them has been emitted).
    func drop(_ n: Int) {
        guard n > 0 else { return }
        memmove(base, base + n, count - n)
        count -= n
        parsed -= n
    }
}
