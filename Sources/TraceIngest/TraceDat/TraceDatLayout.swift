/// Bounds-checked little reader over a mapped file, throwing one clear `InputError` line at the
/// first byte that is not what the format needs.
struct BinaryCursor {
    let bytes: UnsafeRawBufferPointer
    var pos: Int
    let path: String
    let format: TraceFormat
    var bigEndian = false

    init(_ bytes: UnsafeRawBufferPointer, at pos: Int = 0, path: String, format: TraceFormat) {
        self.bytes = bytes
        self.pos = pos
        self.path = path
        self.format = format
    }

    var remaining: Int { bytes.count - pos }

    func fail(_ what: String, at offset: Int? = nil) -> InputError {
        .corrupt(path: path, format: format, offset: offset ?? pos, what: what)
    }

    /// Throws "file ends inside WHAT" unless `n` more bytes exist.
    func need(_ n: Int, _ what: String) throws {
        if n < 0 || n > remaining {
            throw fail("file ends inside \(what) (needs \(n) bytes, \(max(0, remaining)) left of \(bytes.count))")
        }
    }

    mutating func u8(_ what: String) throws -> UInt8 {
        try need(1, what); defer { pos += 1 }
        return bytes[pos]
    }
    mutating func u16(_ what: String) throws -> UInt16 {
        try need(2, what); defer { pos += 2 }
        let v = bytes.loadUnaligned(fromByteOffset: pos, as: UInt16.self)
        return bigEndian ? v.bigEndian : v.littleEndian
    }
    mutating func u32(_ what: String) throws -> UInt32 {
        try need(4, what); defer { pos += 4 }
        let v = bytes.loadUnaligned(fromByteOffset: pos, as: UInt32.self)
        return bigEndian ? v.bigEndian : v.littleEndian
    }
    mutating func u64(_ what: String) throws -> UInt64 {
        try need(8, what); defer { pos += 8 }
        let v = bytes.loadUnaligned(fromByteOffset: pos, as: UInt64.self)
        return bigEndian ? v.bigEndian : v.littleEndian
    }
    /// A NUL-terminated string of at most `limit` bytes.
    mutating func cString(_ what: String, limit: Int = 4096) throws -> String {
        let start = pos
        var i = pos
        while i < bytes.count && i - start < limit && bytes[i] != 0 { i += 1 }
        guard i < bytes.count, bytes[i] == 0 else {
            if i >= bytes.count { throw fail("file ends inside \(what) (no terminating NUL)", at: start) }
            throw fail("\(what) is not a NUL-terminated string of at most \(limit) bytes", at: start)
        }
        pos = i + 1
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
    }
    /// Skips `n` bytes of `what` (sizes read from the file are checked against the file size).
    mutating func skip(_ n: UInt64, _ what: String) throws {
        guard n <= UInt64(Int.max) else { throw fail("\(what) claims \(n) bytes, more than the file has") }
        try need(Int(n), what)
        pos += Int(n)
    }
    mutating func expect(_ s: String, _ what: String) throws {
        let b = Array(s.utf8)
        try need(b.count, what)
        for (k, c) in b.enumerated() where bytes[pos + k] != c {
            throw fail("expected \(what) \"\(s.filter { $0 != "\0" })\"")
        }
        pos += b.count
    }
}

import CTraceCmd
import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the structure walk of a trace.dat found.
struct TraceDatSummary {
    var version = 0
    var compression = "none"
    var bigEndian = false
    var cpus = 0
    var longSize = 8
    var pageSize = 4096
    /// The largest ring-buffer page (sub-buffer) of any buffer: no record is bigger.
    var maxPageSize = 4096
    /// Every event format text (system, text), for `FormatGuard` before libtracecmd parses them.
    var formats: [(system: String, text: [UInt8])] = []
    /// Where each buffer's per-CPU ring-buffer data lies: the top buffer first (when the file has one),
    /// then the instances in the order of their options (the order libtracecmd merges them in).
    var buffers: [TraceDatBuffer] = []
    /// Why the direct decoder (`TraceDatDirectReader`) cannot read this file exactly as libtracecmd
    /// would (nil: it can). Such files are read through libtracecmd.
    var directBlocker: String?
    /// `TRACECMD_OPTION_OFFSET` (`trace-cmd record --ts-offset`): added to every timestamp.
    var timestampOffset: Int64 = 0
    /// Where each metadata section (v7 option ids 15...22: headers, formats, kallsyms, printk
    /// formats, saved cmdlines ...; in v6 the same contents at fixed places, as 16, 19, 20 and 21)
    /// lies, for `TraceDatMetadata` to parse them without libtracecmd.
    var sections: [UInt16: TraceDatSection] = [:]
}

/// One v7 section's content: `flags` bit 0 set means it is one compressed block
/// (`compressed u32, uncompressed u32, data`) of the file's compression algorithm.
struct TraceDatSection {
    var flags: UInt16
    var start: Int
    var size: Int
}

/// One ring buffer of a trace.dat (the top one or an instance) and where its per-CPU data lies.
struct TraceDatBuffer {
    struct CPUData { var cpu: Int; var offset: Int; var size: Int }
    var name: String
    var pageSize: Int
    /// v7 with compression: the data of each CPU is `count u32` and `count` compressed chunks.
    var compressed: Bool
    var cpus: [CPUData]
}

/// Walks a trace.dat (versions 6 and 7) without decompressing it: every section, option and per-CPU
/// data block must lie inside the file, every compressed block must start like its algorithm's
/// stream. libtracecmd is given only files that pass, so a truncated or damaged file gives one
/// clear line instead of a silent short read.
///
/// Layout (trace-cmd.dat(5)): `\x17\x08\x44tracing`, version string, endianness, long size, page size;
/// v6 then has header_page, header_event, ftrace and event formats, kallsyms, printk, cmdlines, the
/// CPU count, options and `flyrecord` offsets; v7 has the compression algorithm and a chain of
/// option sections pointing at sections (`id u16, flags u16, string u32, size u64`, compressed ones
/// holding `compressed u32, uncompressed u32, data`).
enum TraceDatLayout {
    static let magic: [UInt8] = [0x17, 0x08, 0x44] + Array("tracing".utf8)

    static func validate(_ bytes: UnsafeRawBufferPointer, path: String) throws -> TraceDatSummary {
        var c = BinaryCursor(bytes, path: path, format: .traceDat)
        try c.need(10, "the trace.dat magic")
        for (k, m) in magic.enumerated() where bytes[k] != m {
            throw c.fail("wrong magic: expected \\x17\\x08\\x44tracing at the start of a trace.dat", at: k)
        }
        c.pos = 10
        var s = TraceDatSummary()
        let vs = try c.cString("the version string", limit: 16)
        guard let v = Int(vs) else { throw c.fail("version string \"\(vs)\" is not a number", at: 10) }
        s.version = v
        let endian = try c.u8("the endianness byte")
        guard endian <= 1 else { throw c.fail("endianness byte is \(endian), expected 0 (little) or 1 (big)", at: c.pos - 1) }
        c.bigEndian = endian == 1
        s.bigEndian = c.bigEndian
        if c.bigEndian { s.directBlocker = "a big-endian file" }
        s.longSize = Int(try c.u8("the long-size byte"))
        guard s.longSize == 4 || s.longSize == 8 else { throw c.fail("long size is \(s.longSize), expected 4 or 8", at: c.pos - 1) }
        s.pageSize = Int(try c.u32("the page size"))
        guard s.pageSize >= 512 && s.pageSize <= 1 << 24 else { throw c.fail("page size \(s.pageSize) is not plausible", at: c.pos - 4) }
        s.maxPageSize = s.pageSize
        switch v {
        case 6: try walkV6(&c, &s)
        case 7: try walkV7(&c, &s)
        default:
            throw InputError.unusable(path: path, format: .traceDat, what: "file version \(v) is not supported (versions 6 and 7 are)")
        }
        return s
    }

    // MARK: v6

    private static func walkV6(_ c: inout BinaryCursor, _ s: inout TraceDatSummary) throws {
        let headersStart = c.pos
        try c.expect("header_page\0", "section name")
        let hpSize = try c.u64("the header_page size")
        let hpStart = c.pos
        try c.skip(hpSize, "the header_page section")
        try checkHeaderPage(UnsafeRawBufferPointer(rebasing: c.bytes[hpStart..<c.pos]), longSize: s.longSize, c, at: hpStart)
        try c.expect("header_event\0", "section name")
        try c.skip(try c.u64("the header_event size"), "the header_event section")
        // The same bytes as v7's headers, kallsyms, printk and cmdlines sections, uncompressed.
        s.sections[16] = TraceDatSection(flags: 0, start: headersStart, size: c.pos - headersStart)
        let ftrace = try c.u32("the ftrace event format count")
        guard Int(ftrace) <= c.remaining / 8 else { throw c.fail("ftrace event format count \(ftrace) does not fit in the file", at: c.pos - 4) }
        for _ in 0..<ftrace {
            let n = try c.u64("an ftrace event format size")
            let p = c.pos
            try c.skip(n, "an ftrace event format")
            s.formats.append(("ftrace", Array(c.bytes[p..<c.pos])))
        }
        let systems = try c.u32("the event system count")
        guard Int(systems) <= c.remaining / 5 else { throw c.fail("event system count \(systems) does not fit in the file", at: c.pos - 4) }
        for _ in 0..<systems {
            let name = try c.cString("an event system name")
            let n = try c.u32("the event count of system \(name)")
            guard Int(n) <= c.remaining / 8 else { throw c.fail("event count \(n) of system \(name) does not fit in the file", at: c.pos - 4) }
            for _ in 0..<n {
                let size = try c.u64("an event format size of system \(name)")
                let p = c.pos
                try c.skip(size, "an event format of system \(name)")
                s.formats.append((name, Array(c.bytes[p..<c.pos])))
            }
        }
        var start = c.pos
        try c.skip(UInt64(try c.u32("the kallsyms size")), "the kallsyms section")
        s.sections[19] = TraceDatSection(flags: 0, start: start, size: c.pos - start)
        start = c.pos
        try c.skip(UInt64(try c.u32("the printk formats size")), "the printk formats section")
        s.sections[20] = TraceDatSection(flags: 0, start: start, size: c.pos - start)
        start = c.pos
        try c.skip(try c.u64("the saved cmdlines size"), "the saved cmdlines section")
        s.sections[21] = TraceDatSection(flags: 0, start: start, size: c.pos - start)
        let cpus = try c.u32("the CPU count")
        guard cpus > 0 && cpus <= 1 << 16 else { throw c.fail("CPU count \(cpus) is not plausible", at: c.pos - 4) }
        s.cpus = Int(cpus)
        var tag = try c.cString("the options/flyrecord tag", limit: 16)
        if tag.hasPrefix("options") {
            while true {
                let id = try c.u16("an option id")
                if id == 0 { break }
                let size = try c.u32("the size of option \(id)")
                let start = c.pos
                try c.skip(UInt64(size), "option \(id)")
                noteTimeOption(id, UnsafeRawBufferPointer(rebasing: c.bytes[start..<c.pos]), &s)
                if id == 3 { s.directBlocker = s.directBlocker ?? "a version 6 file with buffer instances" }
            }
            tag = try c.cString("the flyrecord/latency tag", limit: 16)
        }
        if tag.hasPrefix("latency") { s.directBlocker = s.directBlocker ?? "a latency-format file"; return }
        guard tag == "flyrecord" else { throw c.fail("expected \"flyrecord\" or \"latency\" before the trace data, found \"\(tag)\"", at: c.pos - tag.utf8.count - 1) }
        var top = TraceDatBuffer(name: "", pageSize: s.pageSize, compressed: false, cpus: [])
        for cpu in 0..<Int(cpus) {
            let off = try c.u64("the data offset of CPU \(cpu)")
            let size = try c.u64("the data size of CPU \(cpu)")
            try checkRange(c, off, size, "the ring-buffer data of CPU \(cpu)")
            top.cpus.append(.init(cpu: cpu, offset: Int(off), size: Int(size)))
        }
        s.buffers.append(top)
    }

    /// Options that change timestamps: `OFFSET` is applied by the direct decoder; the date, guest
    /// time-sync and TSC-conversion options are left to libtracecmd.
    private static func noteTimeOption(_ id: UInt16, _ body: UnsafeRawBufferPointer, _ s: inout TraceDatSummary) {
        switch id {
        case 1: s.directBlocker = s.directBlocker ?? "a file with a DATE option"
        case 12: s.directBlocker = s.directBlocker ?? "a guest file with TIME_SHIFT offsets"
        case 14: s.directBlocker = s.directBlocker ?? "a file with a TSC2NSEC option"
        case 22: s.directBlocker = s.directBlocker ?? "a file with a latency-format buffer"
        case 7:
            // ASCII, as strtoll(buf, NULL, 0) reads it: decimal, 0x hex or 0 octal, optional sign.
            var digits = Substring(String(decoding: body.prefix { $0 != 0 }, as: UTF8.self).filter { !$0.isWhitespace })
            var negative = false
            if digits.hasPrefix("-") { negative = true; digits = digits.dropFirst() } else if digits.hasPrefix("+") { digits = digits.dropFirst() }
            var value: Int64?
            if digits.hasPrefix("0x") || digits.hasPrefix("0X") { value = Int64(digits.dropFirst(2), radix: 16) }
            else if digits.hasPrefix("0") && digits.count > 1 { value = Int64(digits.dropFirst(), radix: 8) }
            else { value = Int64(digits) }
            if let v = value { s.timestampOffset &+= negative ? -v : v }
            else { s.directBlocker = s.directBlocker ?? "a file with an OFFSET option that is not a plain number" }
        default: break
        }
    }

    private static func checkRange(_ c: BinaryCursor, _ off: UInt64, _ size: UInt64, _ what: String) throws {
        let total = UInt64(c.bytes.count)
        if off > total || size > total || off + size > total {
            throw c.fail("\(what) is recorded at offset \(off) with \(size) bytes, past the end of the file (\(total) bytes): truncated file",
                         at: Int(min(off, total)))
        }
    }

    // MARK: v7

    private static func walkV7(_ c: inout BinaryCursor, _ s: inout TraceDatSummary) throws {
        s.compression = try c.cString("the compression algorithm name", limit: 64)
        _ = try c.cString("the compression version", limit: 64)
        switch s.compression {
        case "none", "zstd", "zlib": break
        default:
            throw InputError.unusable(path: c.path, format: .traceDat, what: "compression \"\(s.compression)\" is not supported (none, zstd, zlib are)")
        }
        var next = try c.u64("the offset of the first options section")
        var seen = Set<UInt64>()
        while next != 0 {
            guard seen.insert(next).inserted, seen.count < 4096 else { throw c.fail("the options sections form a loop", at: Int(min(next, UInt64(c.bytes.count)))) }
            next = try walkOptions(&c, at: next, &s)
        }
        if s.cpus == 0 && s.compression != "none" {
            // No BUFFER option: nothing to read, but not broken.
        }
    }

    /// One section header at `off`: returns (flags, data start, data size).
    private static func section(_ c: BinaryCursor, at off: UInt64, _ what: String, compression: String) throws -> (UInt16, Int, Int) {
        try checkRange(c, off, 16, "the header of \(what)")
        var h = c
        h.pos = Int(off)
        let id = try h.u16("the id of \(what)")
        let flags = try h.u16("the flags of \(what)")
        _ = try h.u32("the name of \(what)")
        let size = try h.u64("the size of \(what)")
        try checkRange(c, off + 16, size, "\(what) (section id \(id))")
        if flags & 1 != 0 && compression != "none" && size > 0 {
            try checkCompressedBlock(h, at: h.pos, limit: h.pos + Int(size), what: what, compression: compression)
        }
        return (flags, h.pos, Int(size))
    }

    /// `compressed u32, uncompressed u32, data`: the data must fit and start like a stream of the algorithm.
    @discardableResult
    private static func checkCompressedBlock(_ c: BinaryCursor, at pos: Int, limit: Int, what: String, compression: String) throws -> Int {
        var h = c
        h.pos = pos
        let comp = Int(try h.u32("the compressed size of \(what)"))
        _ = try h.u32("the uncompressed size of \(what)")
        if h.pos + comp > limit || comp > h.remaining {
            throw c.fail("compressed block of \(what) claims \(comp) bytes but its section ends \(max(0, limit - h.pos)) bytes later: truncated section", at: pos)
        }
        if comp >= 4 {
            let b = UnsafeRawBufferPointer(rebasing: c.bytes[h.pos..<h.pos + 4])
            let ok: Bool
            switch compression {
            case "zstd": ok = b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd
            case "zlib": ok = b[0] & 0x0f == 8 && (UInt16(b[0]) << 8 | UInt16(b[1])) % 31 == 0
            default: ok = true
            }
            if !ok { throw c.fail("corrupt \(compression) block in \(what): the data does not start with a \(compression) header", at: h.pos) }
        }
        return h.pos + comp
    }

    private static let optionNames: [UInt16: String] = [
        15: "the strings section", 16: "the headers section", 17: "the ftrace event formats section",
        18: "the event formats section", 19: "the kallsyms section", 20: "the printk formats section",
        21: "the saved cmdlines section", 22: "the latency text section",
    ]

    /// Walks one options section; returns the offset of the next one (0 at the end).
    private static func walkOptions(_ c: inout BinaryCursor, at off: UInt64, _ s: inout TraceDatSummary) throws -> UInt64 {
        let (flags, start, size) = try section(c, at: off, "an options section", compression: s.compression)
        if flags & 1 != 0 {
            // Compressed options cannot be walked without decompressing; libtracecmd checks them.
            s.directBlocker = s.directBlocker ?? "a file with compressed options"
            return 0
        }
        var o = c
        o.pos = start
        let end = start + size
        var next: UInt64 = 0
        while o.pos + 6 <= end {
            let optStart = o.pos
            let id = try o.u16("an option id")
            let osz = Int(try o.u32("the size of option \(id)"))
            guard o.pos + osz <= end else { throw c.fail("option \(id) claims \(osz) bytes, past the end of its options section: truncated section", at: optStart) }
            var d = o
            switch id {
            case 0:
                if osz >= 8 { next = try d.u64("the next options offset") }
                return next
            case 3:
                let bufOff = try d.u64("the BUFFER option's data offset")
                let bufferName = try d.cString("the buffer name")
                _ = try d.cString("the buffer clock")
                let bufferPage = Int(try d.u32("the buffer page size"))
                guard bufferPage <= 1 << 24 else { throw c.fail("buffer page size \(bufferPage) is not plausible", at: optStart) }
                s.maxPageSize = max(s.maxPageSize, bufferPage)
                let cpus = try d.u32("the buffer CPU count")
                guard Int(cpus) <= osz / 20 + 1 else { throw c.fail("BUFFER option claims \(cpus) CPUs, more than it has room for", at: optStart) }
                let (bflags, _, _) = try section(c, at: bufOff, "the trace data section", compression: s.compression)
                var buffer = TraceDatBuffer(name: bufferName, pageSize: bufferPage > 0 ? bufferPage : s.pageSize, compressed: bflags & 1 != 0 && s.compression != "none", cpus: [])
                for _ in 0..<cpus {
                    let cpu = try d.u32("a CPU id")
                    let coff = try d.u64("the data offset of CPU \(cpu)")
                    let csize = try d.u64("the data size of CPU \(cpu)")
                    try checkRange(c, coff, csize, "the ring-buffer data of CPU \(cpu)")
                    if bflags & 1 != 0 && s.compression != "none" && csize > 0 {
                        try checkChunks(c, Int(coff), Int(csize), cpu: Int(cpu), compression: s.compression)
                    }
                    if buffer.cpus.contains(where: { $0.cpu == Int(cpu) }) {
                        throw c.fail("buffer \"\(bufferName)\" has two data blocks for CPU \(cpu)", at: optStart)
                    }
                    buffer.cpus.append(.init(cpu: Int(cpu), offset: Int(coff), size: Int(csize)))
                }
                buffer.cpus.sort { $0.cpu < $1.cpu }
                if bufferPage > 0 && bufferPage < 64 { s.directBlocker = s.directBlocker ?? "a buffer with a \(bufferPage)-byte page" }
                if bufferName.isEmpty { s.buffers.insert(buffer, at: 0) } else { s.buffers.append(buffer) }
                s.cpus = max(s.cpus, Int(cpus))
            case 15...22:
                let sec = try d.u64("the offset in option \(id)")
                let (flags, start, size) = try section(c, at: sec, optionNames[id] ?? "section \(id)", compression: s.compression)
                s.sections[id] = TraceDatSection(flags: flags, start: start, size: size)
                if id == 16 { try checkHeadersSection(c, flags: flags, start: start, size: size, s) }
                if id == 17 || id == 18 {
                    if let text = try sectionText(c, flags: flags, start: start, size: size, s, what: optionNames[id] ?? "a format section") {
                        try collectFormats(text, ftrace: id == 17, c, at: start, into: &s)
                    }
                }
            case 8:
                s.cpus = max(s.cpus, Int(try d.u32("the CPU count")))
            case 1, 7, 12, 14, 22:
                try d.need(osz, "option \(id)")
                noteTimeOption(id, UnsafeRawBufferPointer(rebasing: c.bytes[d.pos..<d.pos + osz]), &s)
            default:
                break
            }
            o.pos += osz
        }
        return next
    }

    /// The ring-buffer page header format (`header_page`): libtracecmd trusts it, and crashes on one
    /// without a usable timestamp or commit field, so it is parsed here first with libtraceevent.
    static func checkHeaderPage(_ text: UnsafeRawBufferPointer, longSize: Int, _ c: BinaryCursor, at offset: Int) throws {
        guard let tep = tep_alloc() else { return }
        defer { tep_free(tep) }
        tep_set_loglevel(TEP_LOG_NONE)
        var copy = [CChar](repeating: 0, count: text.count + 1)
        copy.withUnsafeMutableBytes { if text.count > 0 { $0.copyMemory(from: text) } }
        let rc = copy.withUnsafeMutableBufferPointer { tep_parse_header_page(tep, $0.baseAddress, UInt(text.count), Int32(longSize)) }
        if rc != 0 || tep_get_header_timestamp_size(tep) <= 0 || tep_get_header_page_size(tep) <= 0 {
            throw c.fail("the header_page format is damaged: expected its timestamp and commit fields", at: offset)
        }
    }

    /// A v7 section's content, decompressed if it has to be; nil when it cannot be (zstd without libzstd).
    static func sectionText(_ c: BinaryCursor, flags: UInt16, start: Int, size: Int, _ s: TraceDatSummary, what: String) throws -> [UInt8]? {
        guard flags & 1 != 0 && s.compression != "none" else { return Array(c.bytes[start..<start + size]) }
        let zstd = Zstd.shared
        if s.compression == "zstd" && zstd == nil { return nil }   // libtracecmd checks what we cannot
        var h = c
        h.pos = start
        let comp = Int(try h.u32("the compressed size of \(what)"))
        let raw = Int(try h.u32("the uncompressed size of \(what)"))
        guard raw <= 256 << 20, comp <= size - 8 else { throw c.fail("\(what) claims \(raw) bytes uncompressed, not plausible", at: start) }
        var text = [UInt8](repeating: 0, count: raw)
        let src = c.bytes.baseAddress! + h.pos
        let ok = text.withUnsafeMutableBytes { dst -> Bool in
            if s.compression == "zstd", let zstd {
                let got = zstd.decompress(dst.baseAddress, raw, src, comp)
                return zstd.isError(got) == 0 && got == raw
            }
            // zlib: trace-cmd's zlib protocol writes each block as one zlib stream (`compress2`) and
            // reads it back with `uncompress`, as here.
            guard raw > 0 else { return true }
            var n = uLong(raw)
            let rc = uncompress(dst.baseAddress!.assumingMemoryBound(to: Bytef.self), &n, src.assumingMemoryBound(to: Bytef.self), uLong(comp))
            return rc == Z_OK && n == uLong(raw)
        }
        if !ok {
            throw c.fail("corrupt \(s.compression) block in \(what): it does not decompress to its recorded \(raw) bytes", at: h.pos)
        }
        return text
    }

    /// `count u32, (size u64, text)*` (ftrace) or `systems u32, (name, count u32, (size u64, text)*)*`.
    private static func collectFormats(_ text: [UInt8], ftrace: Bool, _ c: BinaryCursor, at start: Int, into s: inout TraceDatSummary) throws {
        try text.withUnsafeBytes { t in
            var h = BinaryCursor(t, path: c.path, format: .traceDat)
            h.bigEndian = c.bigEndian
            do {
                func formats(_ system: String) throws {
                    let n = try h.u32("the format count of \(system)")
                    guard Int(n) <= h.remaining / 8 else { throw h.fail("format count \(n) of \(system) does not fit") }
                    for _ in 0..<n {
                        let size = try h.u64("a format size of \(system)")
                        let p = h.pos
                        try h.skip(size, "a format of \(system)")
                        s.formats.append((system, Array(t[p..<h.pos])))
                    }
                }
                if ftrace {
                    try formats("ftrace")
                } else {
                    let systems = try h.u32("the event system count")
                    guard Int(systems) <= h.remaining / 5 else { throw h.fail("event system count \(systems) does not fit") }
                    for _ in 0..<systems { try formats(try h.cString("an event system name")) }
                }
            } catch let e as InputError {
                if case let .corrupt(_, _, _, what) = e { throw c.fail((ftrace ? "ftrace formats section: " : "event formats section: ") + what, at: start) }
                throw e
            }
        }
    }

    /// The headers section of a v7 file (header_page, header_event), decompressed if it has to be.
    private static func checkHeadersSection(_ c: BinaryCursor, flags: UInt16, start: Int, size: Int, _ s: TraceDatSummary) throws {
        guard let text = try sectionText(c, flags: flags, start: start, size: size, s, what: "the headers section") else { return }
        try text.withUnsafeBytes { t in
            var h = BinaryCursor(t, path: c.path, format: .traceDat)
            h.bigEndian = c.bigEndian
            do {
                try h.expect("header_page\0", "section name")
                let n = try h.u64("the header_page size")
                let p = h.pos
                try h.skip(n, "the header_page section")
                try checkHeaderPage(UnsafeRawBufferPointer(rebasing: t[p..<h.pos]), longSize: s.longSize, c, at: start)
            } catch let e as InputError {
                if case let .corrupt(_, _, _, what) = e { throw c.fail("headers section: " + what, at: start) }
                throw e
            }
        }
    }

    /// Compressed per-CPU data: `count u32`, then `count` blocks of `compressed u32, uncompressed u32, data`
    /// (the recorded size does not count the leading `count`).
    private static func checkChunks(_ c: BinaryCursor, _ off: Int, _ size: Int, cpu: Int, compression: String) throws {
        var h = c
        h.pos = off
        let end = off + size + 4
        let count = Int(try h.u32("the block count of CPU \(cpu)'s data"))
        guard count <= size / 8 else { throw c.fail("CPU \(cpu)'s data claims \(count) compressed blocks, more than fit in \(size) bytes", at: off) }
        for k in 0..<count {
            h.pos = try checkCompressedBlock(h, at: h.pos, limit: end, what: "block \(k) of CPU \(cpu)'s data", compression: compression)
        }
    }
}

/// libzstd's one-shot decompression, looked up at run time (libtracecmd loads the library for zstd
/// files; no development package is needed to build protreplay).
final class Zstd {
    typealias Decompress = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int) -> Int
    typealias IsError = @convention(c) (Int) -> UInt32
    let decompress: Decompress
    let isError: IsError

    nonisolated(unsafe) static let shared: Zstd? = {
        guard let h = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL),
              let d = dlsym(h, "ZSTD_decompress"), let e = dlsym(h, "ZSTD_isError") else { return nil }
        return Zstd(decompress: unsafeBitCast(d, to: Decompress.self), isError: unsafeBitCast(e, to: IsError.self))
    }()

    private init(decompress: @escaping Decompress, isError: @escaping IsError) {
        self.decompress = decompress
        self.isError = isError
    }
}

/// libtraceevent can crash (not fail) on a damaged event format (a print format cut in the middle of
/// `__print_symbolic(...)`). Before the formats reach libtracecmd or the perf.data reader's own
/// `tep_parse_event`, a child process parses them all; if it dies, the read stops with one line
/// naming the format instead of the whole program crashing.
enum FormatGuard {
    /// How long the child may take before it counts as hung.
    static let timeLimit: Double = 60

    static func check(_ formats: [(system: String, text: [UInt8])], longSize: Int, path: String, format: TraceFormat) throws {
        guard !formats.isEmpty else { return }
        // Everything the child touches is plain C memory made here: after fork() it calls only
        // libtraceevent and write/_exit (no Swift allocation, no runtime locks).
        let n = formats.count
        let systems = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: n)
        let texts = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: n)
        let sizes = UnsafeMutablePointer<Int>.allocate(capacity: n)
        for (i, f) in formats.enumerated() {
            systems[i] = strdup(f.system)
            let t = UnsafeMutablePointer<CChar>.allocate(capacity: f.text.count + 1)
            f.text.withUnsafeBytes { UnsafeMutableRawPointer(t).copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(t), byteCount: $0.count) }
            t[f.text.count] = 0
            texts[i] = t
            sizes[i] = f.text.count
        }
        defer {
            for i in 0..<n { free(systems[i]); texts[i]?.deallocate() }
            systems.deallocate(); texts.deallocate(); sizes.deallocate()
        }
        // The child notes the index of the format it is parsing in a shared page (one store per format,
        // no system call); the pipe only tells the parent when the child is gone (EOF).
        let shared = mmap(nil, 4, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        guard let shared, shared != MAP_FAILED else { return }
        defer { munmap(shared, 4) }
        let current = shared.bindMemory(to: UInt32.self, capacity: 1)
        current.pointee = 0
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return }
        let readFD = fds[0], writeFD = fds[1]
        fflush(stdout)
        fflush(stderr)
        let pid = fork()
        if pid < 0 { close(readFD); close(writeFD); return }
        if pid == 0 {
            // Die of the signal itself, as in a normal build: not through handlers inherited from the parent
            // (a sanitizer's or libFuzzer's would report the expected crash as the parent's own).
            signal(SIGSEGV, SIG_DFL); signal(SIGBUS, SIG_DFL); signal(SIGABRT, SIG_DFL)
            signal(SIGFPE, SIG_DFL); signal(SIGILL, SIG_DFL)
            close(readFD)
            let devnull = open("/dev/null", O_WRONLY)
            if devnull >= 0 { dup2(devnull, 2) }
            tep_set_loglevel(TEP_LOG_NONE)
            guard let tep = tep_alloc() else { _exit(0) }
            tep_set_long_size(tep, Int32(longSize))
            var i = 0
            while i < n {
                current.pointee = UInt32(i)
                _ = tep_parse_event(tep, texts[i], UInt(sizes[i]), systems[i])
                i += 1
            }
            _exit(0)
        }
        close(writeFD)
        var hung = false
        var started = timespec()
        clock_gettime(CLOCK_MONOTONIC, &started)
        var pfd = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
        waiting: while true {
            let r = poll(&pfd, 1, 1000)
            if r > 0 {
                var byte: UInt8 = 0
                let got = read(readFD, &byte, 1)
                if got < 0 && errno == EINTR { continue }
                break waiting   // EOF: the child is done (or died)
            }
            if r < 0 && errno != EINTR { break }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            if Double(now.tv_sec - started.tv_sec) > timeLimit {
                kill(pid, SIGKILL)
                hung = true
                break
            }
        }
        close(readFD)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let last = current.pointee
        // Killed by a signal (WIFSIGNALED): the low 7 bits hold it. The child exits 0 after the last
        // format, so any other exit status is a crash too (AddressSanitizer turns a SIGSEGV into exit 1).
        let signal = status & 0x7f
        let exitStatus = signal == 0 ? (status >> 8) & 0xff : 0
        if hung || (signal != 0 && signal != 0x7f) || exitStatus != 0 {
            let f = formats[Int(min(last, UInt32(n - 1)))]
            var name = "?"
            for line in String(decoding: f.text.prefix(200), as: UTF8.self).split(separator: "\n") where line.hasPrefix("name: ") {
                name = String(line.dropFirst(6))
                break
            }
            let how = hung ? "hangs parsing it" : "crashes parsing it (" + (signal != 0 ? "signal \(signal)" : "exit status \(exitStatus)") + ")"
            throw InputError.unusable(path: path, format: format, what: "the format of event \(f.system):\(name) is damaged: libtraceevent \(how)")
        }
    }
}
