import CTraceCmd

/// The headers, event formats, kallsyms, printk formats and saved cmdlines of a trace.dat (version 6,
/// or version 7 with its sections decompressed here) and handed to libtraceevent: the same calls, in the same order and with the same
/// settings, that libtracecmd's `tracecmd_open_head` makes (trace-input.c of trace-cmd 3.1.6:
/// `tep_set_file_bigendian`, `tep_set_long_size`, `tep_parse_header_page`, `tep_parse_event` for each
/// ftrace and event format, `tep_parse_kallsyms`, `tep_parse_printk_formats`,
/// `tep_parse_saved_cmdlines`, `tep_set_cpus`; no plugins, as with `TRACECMD_FL_LOAD_NO_PLUGINS`).
///
/// Used by the direct reader when only some event formats are to be parsed (`EventFormatSelection`:
/// `tracecmd_open_head` parses them all), and for files whose sections the installed libtracecmd
/// cannot decompress: libtracecmd decompresses only the algorithms its trace-cmd was built with, and
/// Debian's 3.1.6 has zstd but not zlib (`trace-cmd list -c`), so `trace-cmd convert --compression
/// zlib` files (`SampleTraces/tools/same-buffer.v7-zlib.dat`) cannot be opened by it at all.
enum TraceDatMetadata {
    /// A libtraceevent handle holding the file's metadata with `formats` (by default all the file's);
    /// the caller frees it with `tep_free`. The kallsyms are not parsed yet: `kallsyms` gives them to
    /// the handle at the first symbol lookup (nil when the file has none).
    /// - Throws: `InputError` when a section is missing, damaged or does not decompress.
    static func tep(_ layout: TraceDatSummary, _ file: UnsafeRawBufferPointer, path: String,
                    formats: [(system: String, text: [UInt8])]? = nil) throws -> (tep: OpaquePointer, kallsyms: DeferredKallsyms?) {
        var c = BinaryCursor(file, path: path, format: .traceDat)
        c.bigEndian = layout.bigEndian
        // Option id 16...21 (`TRACECMD_OPTION_HEADER_INFO` ... `TRACECMD_OPTION_CMDLINES`): its
        // decompressed content and file offset, nil when the file has no such section.
        func content(_ id: UInt16, _ what: String) throws -> (text: [UInt8], at: Int)? {
            guard let s = layout.sections[id] else { return nil }
            guard let text = try TraceDatLayout.sectionText(c, flags: s.flags, start: s.start, size: s.size, layout, what: what) else {
                throw InputError.unusable(path: path, format: .traceDat, what: "\(what) is \(layout.compression)-compressed and libzstd is not installed")
            }
            return (text, s.start)
        }
        guard let headers = try content(16, "the headers section") else {
            throw InputError.corrupt(path: path, format: .traceDat, offset: 0, what: "the file has no headers section (header_page): its options point at none")
        }
        guard let tep = tep_alloc() else {
            throw InputError.unusable(path: path, format: .traceDat, what: "libtraceevent could not allocate a handle")
        }
        do {
            tep_set_file_bigendian(tep, layout.bigEndian ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN)
            tep_set_local_bigendian(tep, UInt16(1).bigEndian == 1 ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN)
            tep_set_long_size(tep, Int32(layout.longSize))
            // "header_page\0" size u64 text "header_event\0" size u64 text (`TraceDatLayout` checked it).
            try headers.text.withUnsafeBytes { t in
                var h = BinaryCursor(t, path: path, format: .traceDat)
                h.bigEndian = layout.bigEndian
                try h.expect("header_page\0", "section name")
                let n = try h.u64("the header_page size")
                let p = h.pos
                try h.skip(n, "the header_page section")
                var text = [CChar](repeating: 0, count: Int(n) + 1)
                text.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: t[p..<p + Int(n)])) }
                _ = text.withUnsafeMutableBufferPointer { tep_parse_header_page(tep, $0.baseAddress, UInt(n), Int32(layout.longSize)) }
            }
            // libtracecmd counts a format libtraceevent rejects (`parsing_failures`) and goes on: so does this.
            for f in formats ?? layout.formats {
                _ = f.text.withUnsafeBufferPointer { b in
                    b.withMemoryRebound(to: CChar.self) { tep_parse_event(tep, $0.baseAddress, UInt($0.count), f.system) }
                }
            }
            // kallsyms and printk formats: `size u32, text`; saved cmdlines: `size u64, text`.
            var kallsyms: DeferredKallsyms?
            for (id, sizeBytes, what) in [(UInt16(19), 4, "the kallsyms section"), (20, 4, "the printk formats section"), (21, 8, "the saved cmdlines section")] {
                guard let (text, at) = try content(id, what) else { continue }
                try withSizedText(text, sizeBytes: sizeBytes, what, at: at, layout, path) { t in
                    switch id {
                    case 19: kallsyms = DeferredKallsyms(tep: tep, text: t)
                    case 20: _ = tep_parse_printk_formats(tep, t)
                    default: _ = tep_parse_saved_cmdlines(tep, t)
                    }
                }
            }
            tep_set_cpus(tep, Int32(layout.cpus))
            return (tep, kallsyms)
        } catch {
            tep_free(tep)
            throw error
        }
    }

    /// Calls `body` with the NUL-terminated text of a `size, text` section (nothing when size is 0,
    /// as libtracecmd does).
    private static func withSizedText(_ bytes: [UInt8], sizeBytes: Int, _ what: String, at offset: Int, _ layout: TraceDatSummary, _ path: String,
                                      _ body: (UnsafePointer<CChar>) -> Void) throws {
        try bytes.withUnsafeBytes { t in
            guard t.count >= sizeBytes else {
                throw InputError.corrupt(path: path, format: .traceDat, offset: offset, what: "\(what) holds \(t.count) bytes, too few for its \(sizeBytes)-byte size")
            }
            var h = BinaryCursor(t, path: path, format: .traceDat)
            h.bigEndian = layout.bigEndian
            let n = sizeBytes == 4 ? UInt64(try h.u32("the size of \(what)")) : try h.u64("the size of \(what)")
            guard n > 0 else { return }
            let p = h.pos
            guard n <= UInt64(t.count - p) else {
                throw InputError.corrupt(path: path, format: .traceDat, offset: offset, what: "\(what) claims \(n) bytes of text, more than it holds (\(t.count - p))")
            }
            var text = [CChar](repeating: 0, count: Int(n) + 1)
            text.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: t[p..<p + Int(n)])) }
            text.withUnsafeBufferPointer { body($0.baseAddress!) }
        }
    }
}
