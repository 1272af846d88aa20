import CTraceCmd
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads trace-cmd's `trace.dat` (versions 6 and 7; uncompressed, zstd or zlib sections, as far as
/// the installed libtracecmd supports them) through libtracecmd and libtraceevent.
///
/// The file's structure is checked first (`TraceDatLayout`), then `tracecmd_open_fd` parses the
/// headers, event formats, kallsyms and saved cmdlines, and `tracecmd_iterate_events` hands every
/// record of every CPU merged in timestamp order (timestamps in the file's trace clock, as libtracecmd
/// converts them). Each record becomes a `RawEvent` with an ftrace-style payload (`TepDecoder`);
/// `kernel_stack`/`user_stack` records become a `.stackTrace` and its `.stackFrame`s (function
/// names from the file's kallsyms); a record after dropped events is preceded by `.lostEvents`.
public final class TraceDatReader {
    public let names: StringTable
    /// What the structure walk found (version, compression, CPUs), after `read`.
    public private(set) var version = 0
    public private(set) var compression = "none"
    public private(set) var cpus = 0
    /// The trace clock libtracecmd reported, when the file names one.
    public private(set) var records = 0

    public init(names: StringTable) { self.names = names }

    /// Reads the whole input into `sink`. `check` runs every few thousand records (the caller's
    /// strict-mode stop) and may throw to stop the read.
    /// - Throws: `InputError` naming the file, offset or section and what was expected.
    public func read(_ input: TraceInput, into sink: RawEventSink, check: () throws -> Void) throws {
        let path = input.path == "-" ? "<stdin>" : input.path
        try input.withWholeFile { file, fd in
            let layout = try TraceDatLayout.validate(file.bytes, path: path)
            version = layout.version
            compression = layout.compression
            cpus = layout.cpus
            tracecmd_set_loglevel(TEP_LOG_NONE)
            tep_set_loglevel(TEP_LOG_NONE)
            let own = dup(fd)
            guard own >= 0 else { throw InputError.readFailed(path: path, reason: String(cString: strerror(errno))) }
            lseek(own, 0, SEEK_SET)
            // libtracecmd owns `own` from here (tracecmd_close closes it).
            guard let handle = tracecmd_open_fd(own, Int32(TRACECMD_FL_LOAD_NO_PLUGINS.rawValue)) else {
                throw InputError.unusable(path: path, format: .traceDat,
                                          what: "libtracecmd could not read the headers of this version \(layout.version) file " +
                                                "(compression \(layout.compression)): a metadata section is corrupt, or the compression is not supported by the installed libtracecmd")
            }
            defer { tracecmd_close(handle) }
            guard let tep = tracecmd_get_tep(handle) else {
                throw InputError.unusable(path: path, format: .traceDat, what: "libtracecmd returned no event formats")
            }
            let state = IterationState(decoder: TepDecoder(tep: tep, names: names, path: path, format: .traceDat), sink: sink)
            try withoutActuallyEscaping(check) { check in
                state.check = check
                let ctx = Unmanaged.passUnretained(state).toOpaque()
                _ = tracecmd_iterate_events(handle, nil, 0, { _, record, _, ctx in
                    guard let ctx, let record else { return 1 }
                    let st = Unmanaged<IterationState>.fromOpaque(ctx).takeUnretainedValue()
                    return st.handle(record)
                }, ctx)
                state.check = nil
            }
            records = state.index
            if let e = state.error { throw e }
        }
    }

    /// The per-read state the C callback reaches through its context pointer.
    final class IterationState {
        let decoder: TepDecoder
        let sink: RawEventSink
        var event = RawEvent()
        var index = 0
        var error: Error?
        var check: (() throws -> Void)?

        init(decoder: TepDecoder, sink: RawEventSink) {
            self.decoder = decoder
            self.sink = sink
        }

        func handle(_ record: UnsafeMutablePointer<tep_record>) -> Int32 {
            index += 1
            let r = record.pointee
            if r.missed_events != 0 {
                event = RawEvent()
                event.kind = .lostEvents
                event.cpu = r.cpu
                event.lostCount = r.missed_events > 0 ? UInt64(r.missed_events) : 0
                event.line = index
                event.offset = Int(truncatingIfNeeded: r.offset)
                event.timestamp = r.ts
                sink.consume(&event)
            }
            guard let data = r.data, r.size > 0 else { return 0 }
            event.kind = .event
            event.line = index
            event.offset = Int(truncatingIfNeeded: r.offset)
            event.timestamp = r.ts
            event.cpu = r.cpu
            event.tgid = -1
            event.lostCount = 0
            event.userStack = false
            do {
                guard let kind = try decoder.decode(UnsafeRawPointer(data), Int(r.size), into: &event, offset: event.offset) else {
                    sink.malformed(line: index, offset: event.offset, reason: "record shorter than its common fields",
                                   text: UnsafeRawBufferPointer(start: data, count: Int(r.size)))
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
