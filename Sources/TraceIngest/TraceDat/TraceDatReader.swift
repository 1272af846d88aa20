import CTraceCmd
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a trace.dat's ring-buffer records are read.
public enum TraceDatReaderKind: String, Sendable, CaseIterable {
    /// Pages decoded by protreplay from the mapped file (`RingBufferCPU`, `RingBufferMerge`); libtracecmd
    /// only parses the headers and event formats. Files it cannot read exactly as libtracecmd would
    /// (big-endian, DATE/TSC2NSEC/TIME_SHIFT options, v6 instances, latency format) go through libtracecmd.
    case direct
    /// libtracecmd's own iteration (`tracecmd_iterate_events`): the reference.
    case libtracecmd
}

/// Reads trace-cmd's `trace.dat` (versions 6 and 7; uncompressed, zstd or zlib sections) through
/// libtracecmd and libtraceevent (only the compressions the installed libtracecmd supports: Debian's
/// has no zlib), or (the default, `TraceDatReaderKind.direct`) with the ring-buffer pages decoded here
/// and only the headers and formats parsed by libtracecmd (by `TraceDatMetadata` for zlib files, and
/// when only the formats of the events the caller reads are parsed: `eventsWanted`).
///
/// The file's structure is checked first (`TraceDatLayout`), then `tracecmd_open_fd` parses the
/// headers, event formats, kallsyms and saved cmdlines, and `tracecmd_iterate_events` hands every
/// record of every CPU merged in timestamp order (timestamps in the file's trace clock, as libtracecmd
/// converts them). Each record becomes a `RawEvent` with an ftrace-style payload (`TepDecoder`);
/// `kernel_stack`/`user_stack` records become a `.stackTrace` and its `.stackFrame`s (function
/// names from the file's kallsyms); a record after dropped events is preceded by `.lostEvents`.
/// A file with several buffers (`trace-cmd record -B NAME`, `extract -a`) is read whole: the top
/// buffer's records and every instance's, merged in timestamp order (`tracecmd_iterate_events_multi`).
public final class TraceDatReader {
    public let names: StringTable
    /// What the structure walk found (version, compression, CPUs), after `read`.
    public private(set) var version = 0
    public private(set) var compression = "none"
    public private(set) var cpus = 0
    /// Ring-buffer records read (events and stack traces), after `read`.
    public private(set) var records = 0
    /// Names of the buffer instances read besides the top buffer, after `read`.
    public private(set) var instances: [String] = []
    /// Which reader to use; `readerUsed` says which one read the file (direct falls back to libtracecmd).
    public var kind: TraceDatReaderKind = .direct
    public private(set) var readerUsed: TraceDatReaderKind = .libtracecmd
    /// The direct reader: parse the headers and formats here (`TraceDatMetadata`) rather than with
    /// libtracecmd's `tracecmd_open_head`. Always done for zlib files, which Debian's libtracecmd cannot
    /// decompress; settable so that tests can compare both on the same file.
    public var parseMetadataHere = false
    /// Whether the last `read` parsed the metadata here (see `parseMetadataHere`).
    public private(set) var metadataParsedHere = false
    /// The direct reader: whether the fields of the event `system:name` will be read. The formats of
    /// the others are not parsed, and their records carry only their name and common fields (pid,
    /// flags), with an empty payload (`EventFormatSelection`; ftrace's own formats and every
    /// kprobe/uprobe format are always parsed). Nil (the default) parses every format.
    public var eventsWanted: ((_ system: String, _ name: String) -> Bool)?
    /// Formats the last `read` left out (see `eventsWanted`).
    public private(set) var formatsLeftOut = 0

    public init(names: StringTable, kind: TraceDatReaderKind = .direct) {
        self.names = names
        self.kind = kind
    }

    /// Reads the whole input into `sink`. `check` runs every few thousand records (the caller's
    /// strict-mode stop) and may throw to stop the read.
    /// - Throws: `InputError` naming the file, offset or section and what was expected.
    public func read(_ input: TraceInput, into sink: RawEventSink, check: () throws -> Void) throws {
        try open(input) { layout, formats, file, fd, path in
            if readerUsed == .direct {
                // One thread: the pieces decoded as they are made.
                try readPieces(layout, formats, file.bytes, fd: fd, path: path, recordsPerPiece: RecordPiece.defaultMaxRecords) { pieces in
                    let decoder = pieces.makeDecoder(names: names)
                    var lines = 0
                    try pieces.forEachPiece { piece in
                        lines += try decoder.decode(piece, into: sink, lineBase: lines)
                        piece.releaseLater()
                        try check()
                    }
                }
                return
            }
            let own = dup(fd)
            guard own >= 0 else { throw InputError.readFailed(path: path, reason: String(cString: strerror(errno))) }
            lseek(own, 0, SEEK_SET)
            // libtracecmd owns `own` from here (tracecmd_close closes it).
            guard let handle = tracecmd_open_fd(own, Int32(TRACECMD_FL_LOAD_NO_PLUGINS.rawValue)) else {
                if layout.compression == "zlib" {
                    // Debian's libtracecmd 3.1.6 is built without zlib: `trace-cmd list -c` shows only zstd.
                    let direct = layout.directBlocker.map { "; the direct reader cannot read it either (\($0))" }
                        ?? "; the direct reader (--reader direct, the default) decompresses zlib itself"
                    throw InputError.unusable(path: path, format: .traceDat,
                                              what: "libtracecmd could not open this version \(layout.version) file with zlib-compressed sections: " +
                                                    "the installed libtracecmd cannot decompress zlib (see `trace-cmd list -c`), or a section is corrupt" + direct)
                }
                throw InputError.unusable(path: path, format: .traceDat,
                                          what: "libtracecmd could not read the headers of this version \(layout.version) file " +
                                                "(compression \(layout.compression)): a metadata section is corrupt, or the compression is not supported by the installed libtracecmd")
            }
            defer { tracecmd_close(handle) }
            // Buffer instances: one more handle each, sharing the top handle's event formats.
            var handles: [OpaquePointer?] = [handle]
            instances = []
            for i in 0..<max(0, tracecmd_buffer_instances(handle)) {
                guard let h = tracecmd_buffer_instance_handle(handle, i) else {
                    let name = tracecmd_buffer_instance_name(handle, i).map { String(cString: $0) } ?? "#\(i)"
                    throw InputError.unusable(path: path, format: .traceDat, what: "libtracecmd could not open buffer instance \"\(name)\"")
                }
                handles.append(h)
                instances.append(tracecmd_buffer_instance_name(handle, i).map { String(cString: $0) } ?? "#\(i)")
            }
            defer { for h in handles.dropFirst() { tracecmd_close(h) } }
            guard let tep = tracecmd_get_tep(handle) else {
                throw InputError.unusable(path: path, format: .traceDat, what: "libtracecmd returned no event formats")
            }
            let state = IterationState(decoder: TepDecoder(tep: tep, names: names, path: path, format: .traceDat), sink: sink)
            state.maxRecord = layout.maxPageSize
            state.compressedNote = layout.compression == "none" ? "file" : "decompressed CPU"
            withoutActuallyEscaping(check) { check in
                state.check = check
                // PROTREPLAY_READER_THREADS=1 keeps everything on one thread (for measurements).
                let oneThread = getenv("PROTREPLAY_READER_THREADS").map { String(cString: $0) == "1" } ?? false
                if !oneThread && sysconf(Int32(_SC_NPROCESSORS_ONLN)) > 1 {
                    let handleBits = handles.map { UInt(bitPattern: Int(bitPattern: $0.map { UnsafeRawPointer($0) })) }
                    pipelined(state) { producer in
                        let hs = handleBits.map { OpaquePointer(bitPattern: $0) }
                        let ctx = Unmanaged.passUnretained(producer).toOpaque()
                        _ = TraceDatReader.iterate(hs, { _, record, _, ctx in
                            guard let ctx, let record else { return 1 }
                            let r = record.pointee
                            return Unmanaged<Producer>.fromOpaque(ctx).takeUnretainedValue()
                                .add(ts: r.ts, cpu: r.cpu, offset: Int(truncatingIfNeeded: r.offset), missed: r.missed_events,
                                     data: r.data.map { UnsafeRawPointer($0) }, size: Int(r.size))
                        }, ctx)
                    }
                } else {
                    let ctx = Unmanaged.passUnretained(state).toOpaque()
                    _ = TraceDatReader.iterate(handles, { _, record, _, ctx in
                        guard let ctx, let record else { return 1 }
                        let st = Unmanaged<IterationState>.fromOpaque(ctx).takeUnretainedValue()
                        let r = record.pointee
                        return st.process(ts: r.ts, cpu: r.cpu, missed: r.missed_events, offset: Int(truncatingIfNeeded: r.offset),
                                          data: r.data.map { UnsafeRawPointer($0) }, size: Int(r.size))
                    }, ctx)
                }
                state.check = nil
            }
            records = state.index
            if let e = state.error { throw e }
        }
    }

    // MARK: Direct decoding

    /// The headers, event formats, kallsyms, printk formats and saved cmdlines for the direct
    /// decoding: read by libtracecmd (`tracecmd_open_head`: close `head` with `tracecmd_close`), or,
    /// for zlib files, with `parseMetadataHere` and when some formats are left out (`eventsWanted`),
    /// by `TraceDatMetadata` (`head` nil: `tep_free` the tep).
    private func openMetadata(_ layout: TraceDatSummary, _ formats: EventFormatSelection, _ file: UnsafeRawBufferPointer,
                              fd: Int32, path: String) throws -> (tep: OpaquePointer, head: OpaquePointer?, kallsyms: DeferredKallsyms?) {
        metadataParsedHere = parseMetadataHere || layout.compression == "zlib" || !formats.nameOnly.isEmpty
        if metadataParsedHere {
            let (tep, kallsyms) = try TraceDatMetadata.tep(layout, file, path: path, formats: formats.parsed)
            return (tep, nil, kallsyms)
        }
        guard let head = tracecmd_open_head("/proc/self/fd/\(fd)", Int32(TRACECMD_FL_LOAD_NO_PLUGINS.rawValue)) else {
            throw InputError.unusable(path: path, format: .traceDat,
                                      what: "libtracecmd could not read the headers of this version \(layout.version) file " +
                                            "(compression \(layout.compression)): a metadata section is corrupt, or the compression is not supported by the installed libtracecmd")
        }
        guard let tep = tracecmd_get_tep(head) else {
            tracecmd_close(head)
            throw InputError.unusable(path: path, format: .traceDat, what: "libtracecmd returned no event formats")
        }
        return (tep, head, nil)
    }

    // MARK: Pieces

    /// Reads the file as `TraceDatPieces` (runs of records that worker threads decode on their own)
    /// when the direct decoder can read it; returns false, having read nothing, when it cannot (or
    /// `kind` is `.libtracecmd`): then call `read`.
    /// - Parameters:
    ///   - recordsPerPiece: the most records a piece holds (fewer when they fill its 512 KiB).
    ///   - body: gets the pieces; they are valid only during the call.
    public func readInPieces(_ input: TraceInput, recordsPerPiece: Int = RecordPiece.defaultMaxRecords,
                             _ body: (TraceDatPieces) throws -> Void) throws -> Bool {
        try open(input) { layout, formats, file, fd, path in
            guard readerUsed == .direct else { return false }
            try readPieces(layout, formats, file.bytes, fd: fd, path: path, recordsPerPiece: recordsPerPiece, body)
            return true
        }
    }

    /// Maps the file, checks its structure (`TraceDatLayout`), notes what it is (version, compression,
    /// CPUs) and which reader reads it (`readerUsed`: direct unless `kind` or something only libtracecmd
    /// reads as it should says otherwise), chooses the event formats to parse (all of them for
    /// libtracecmd; see `eventsWanted`) and checks them (`FormatGuard`), and hands the layout on, with
    /// the formats, the mapping, a file descriptor for libtracecmd and the path to name in messages.
    private func open<T>(_ input: TraceInput, _ body: (TraceDatSummary, EventFormatSelection, MappedFile, Int32, String) throws -> T) throws -> T {
        let path = input.path == "-" ? "<stdin>" : input.path
        return try input.withWholeFile { file, fd in
            let layout = try TraceDatLayout.validate(file.bytes, path: path)
            version = layout.version
            compression = layout.compression
            cpus = layout.cpus
            metadataParsedHere = false
            readerUsed = kind == .direct && layout.directBlocker == nil ? .direct : .libtracecmd
            let formats = EventFormatSelection(layout.formats, wanted: readerUsed == .direct ? eventsWanted : nil)
            formatsLeftOut = formats.nameOnly.count
            try FormatGuard.check(formats.parsed, longSize: layout.longSize, path: path, format: .traceDat)
            tracecmd_set_loglevel(TEP_LOG_NONE)
            tep_set_loglevel(TEP_LOG_NONE)
            return try body(layout, formats, file, fd, path)
        }
    }


    /// The ring-buffer pages decoded here (`RingBufferMerge`), in pieces; the metadata read by
    /// `openMetadata`. No decompressed CPU data is kept beyond a chunk per CPU.
    private func readPieces(_ layout: TraceDatSummary, _ formats: EventFormatSelection, _ file: UnsafeRawBufferPointer, fd: Int32, path: String,
                            recordsPerPiece: Int, _ body: (TraceDatPieces) throws -> Void) throws {
        let (tep, head, kallsyms) = try openMetadata(layout, formats, file, fd: fd, path: path)
        defer { if let head { tracecmd_close(head) } else { tep_free(tep) } }
        instances = layout.buffers.map(\.name).filter { !$0.isEmpty }
        let pieces = TraceDatPieces(merge: try RingBufferMerge(layout: layout, file: file, path: path, mapped: true),
                                    tep: tep, kallsyms: kallsyms, nameOnly: formats.nameOnly, path: path, maxRecord: layout.maxPageSize,
                                    compressedNote: layout.compression == "none" ? "file" : "decompressed CPU",
                                    recordsPerPiece: recordsPerPiece, fileSize: file.count)
        defer { records = pieces.recordsRead }
        try body(pieces)
    }

    // MARK: Two threads

    /// libtracecmd's iteration (decompression, ring-buffer pages, merging CPUs) on a second thread,
    /// copying each raw record into one of a few fixed batches; decoding and the sink on this thread.
    /// (Decoding on the iterating thread too was measured slower: libtracecmd's page-list walks are
    /// cache-bound and lose more to a bigger working set than the decoding gains.)
    /// Memory: four `RecordPiece`s, whatever the file size.
    /// Every record of every handle, in timestamp order.
    static func iterate(_ handles: [OpaquePointer?],
                        _ callback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<tep_record>?, Int32, UnsafeMutableRawPointer?) -> Int32,
                        _ ctx: UnsafeMutableRawPointer) -> Int32 {
        if handles.count == 1 { return tracecmd_iterate_events(handles[0], nil, 0, callback, ctx) }
        var hs = handles
        return hs.withUnsafeMutableBufferPointer { tracecmd_iterate_events_multi($0.baseAddress, Int32($0.count), callback, ctx) }
    }

    /// `iterate` runs on a second thread and hands every record to the producer in order; the
    /// records are decoded and sunk on this thread.
    private func pipelined(_ state: IterationState, iterate: @escaping (Producer) -> Void) {
        // Every plan exists before the threads start: the decoding never asks libtraceevent for an
        // event while the other thread iterates.
        state.decoder.preparePlans()
        let ring = (0..<4).map { _ in RecordPiece() }
        let producer = Producer(ring: ring)
        producer.maxRecord = state.maxRecord
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global(qos: .userInitiated).async {
            producer.start()
            iterate(producer)
            producer.finish()
            done.signal()
        }
        var k = 0
        while true {
            producer.ready.wait()
            let b = ring[k % ring.count]
            k += 1
            if state.error == nil {
                state.process(b)
                if state.error != nil { producer.stop = true }
            }
            let last = b.last
            producer.free.signal()
            if last { break }
        }
        done.wait()
        if state.error == nil, let bad = producer.oversized {
            state.error = state.oversizedError(cpu: bad.cpu, offset: bad.offset, size: bad.size)
        }
    }

    /// Fills the pieces of `ring` in turn on the iterating thread; `ready` tells the decoding thread a
    /// piece is full, `free` that the decoding thread is done with one.
    final class Producer {
        let ring: [RecordPiece]
        let free: DispatchSemaphore
        let ready = DispatchSemaphore(value: 0)
        var index = 0
        var current: RecordPiece?
        /// Set by the decoding thread after an error: the iteration stops at the next record.
        var stop = false
        /// No record is larger than a ring-buffer page; one that claims to be comes from damaged data.
        var maxRecord = Int.max
        var oversized: (cpu: Int32, offset: Int, size: Int)?

        init(ring: [RecordPiece]) {
            self.ring = ring
            free = DispatchSemaphore(value: ring.count)
        }

        func start() { next() }

        private func next() {
            free.wait()
            let b = ring[index % ring.count]
            index += 1
            b.reset()
            current = b
        }

        func add(ts: UInt64, cpu: Int32, offset: Int, missed: Int64, data: UnsafeRawPointer?, size recordSize: Int) -> Int32 {
            if stop { return 1 }
            guard let b = current else { return 1 }
            let size = max(0, recordSize)
            if size > maxRecord {
                oversized = (cpu, offset, size)
                return 1
            }
            if !b.append(ts: ts, cpu: cpu, offset: offset, missed: missed, data: data, size: size) {
                ready.signal()
                next()
                current!.appendAlways(ts: ts, cpu: cpu, offset: offset, missed: missed, data: data, size: size)
            }
            return 0
        }

        func finish() {
            current?.last = true
            ready.signal()
            current = nil
        }
    }

    /// A record larger than a ring-buffer page: damaged data. `note`: "file" or "decompressed CPU", what offsets count in.
    static func oversizedError(path: String, cpu: Int32, offset: Int, size: Int, maxRecord: Int, note: String) -> InputError {
        .unusable(path: path, format: .traceDat,
                  what: "CPU \(cpu)'s ring-buffer data is corrupt: the record at offset \(offset) (of the \(note) data) claims \(size) bytes, more than a ring-buffer page (\(maxRecord))")
    }

    /// The per-read state the C callback reaches through its context pointer.
    final class IterationState {
        let decoder: TepDecoder
        var sink: RawEventSink
        var event = RawEvent()
        var index = 0
        var error: Error?
        var check: (() throws -> Void)?

        init(decoder: TepDecoder, sink: RawEventSink) {
            self.decoder = decoder
            self.sink = sink
        }

        /// The largest record a ring-buffer page can hold.
        var maxRecord = Int.max
        /// "file" or "decompressed CPU": what record offsets count in.
        var compressedNote = "file"

        func oversizedError(cpu: Int32, offset: Int, size: Int) -> InputError {
            TraceDatReader.oversizedError(path: decoder.path, cpu: cpu, offset: offset, size: size, maxRecord: maxRecord, note: compressedNote)
        }

        /// Every record of `piece`, until one fails (`error`).
        func process(_ piece: RecordPiece) {
            let sink = self.sink
            let storage = piece.storage
            piece.headers.withUnsafeBufferPointer { hs in
                for h in hs where error == nil {
                    _ = process(ts: h.ts, cpu: h.cpu, missed: h.missed, offset: h.offset, data: UnsafeRawPointer(storage + h.start), size: h.size, sink: sink)
                }
            }
        }

        func process(ts: UInt64, cpu: Int32, missed: Int64, offset: Int, data: UnsafeRawPointer?, size: Int) -> Int32 {
            process(ts: ts, cpu: cpu, missed: missed, offset: offset, data: data, size: size, sink: sink)
        }

        @inline(__always)
        private func process(ts: UInt64, cpu: Int32, missed: Int64, offset: Int, data: UnsafeRawPointer?, size: Int, sink: RawEventSink) -> Int32 {
            if size > maxRecord {
                error = oversizedError(cpu: cpu, offset: offset, size: size)
                return 1
            }
            index += 1
            if missed != 0 {
                event = RawEvent()
                event.kind = .lostEvents
                event.cpu = cpu
                event.lostCount = missed > 0 ? UInt64(missed) : 0
                event.line = index
                event.offset = offset
                event.timestamp = ts
                sink.consume(&event)
            }
            guard let data, size > 0 else { return 0 }
            event.kind = .event
            event.line = index
            event.offset = offset
            event.timestamp = ts
            event.cpu = cpu
            event.tgid = -1
            event.lostCount = 0
            event.userStack = false
            do {
                guard let kind = try decoder.decode(data, size, into: &event, offset: event.offset, for: sink) else {
                    sink.malformed(line: index, offset: event.offset, reason: "record shorter than its common fields",
                                   text: UnsafeRawBufferPointer(start: data, count: size))
                    return 0
                }
                event.comm = decoder.comm(event.pid)
                if kind == .kernelStack || kind == .userStack {
                    event.kind = .stackTrace
                    event.userStack = kind == .userStack
                    event.name = 0
                    event.payload = UnsafeRawBufferPointer(start: nil, count: 0)
                    sink.consume(&event)
                    event.kind = .stackFrame
                    for a in decoder.frames {
                        decoder.writeFrame(a)
                        event.payload = decoder.writer.bytes
                        sink.consume(&event)
                    }
                } else {
                    sink.consume(&event)
                }
                if index & 4095 == 0, let check { try check() }
            } catch {
                self.error = error
                return 1
            }
            return 0
        }
    }
}
