import CTraceCmd
import Dispatch
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
                // PROTREPLAY_READER_THREADS=1 keeps everything on one thread (for measurements).
                let oneThread = getenv("PROTREPLAY_READER_THREADS").map { String(cString: $0) == "1" } ?? false
                if !oneThread && sysconf(Int32(_SC_NPROCESSORS_ONLN)) > 1 {
                    pipelined(handle, state)
                } else {
                    let ctx = Unmanaged.passUnretained(state).toOpaque()
                    _ = tracecmd_iterate_events(handle, nil, 0, { _, record, _, ctx in
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

    // MARK: Two threads

    /// libtracecmd's iteration (decompression, ring-buffer pages, merging CPUs) and the decoding of
    /// each record on a second thread, which copies the finished records into one of a few fixed
    /// batches; this thread hands them to the sink (normalizer, replay, models).
    /// Memory: `RecordBatch.count` batches, whatever the file size.
    private func pipelined(_ handle: OpaquePointer, _ state: IterationState) {
        // Every plan (and so every interned event name) exists before the threads start: the
        // decoding thread then never writes to the name table the sink reads.
        state.decoder.preparePlans()
        let ring = (0..<RecordBatch.count).map { _ in RecordBatch() }
        let producer = Producer(ring: ring)
        let producerState = IterationState(decoder: state.decoder, sink: producer)
        producerState.producer = producer
        let done = DispatchSemaphore(value: 0)
        let handleBits = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle)))
        DispatchQueue.global(qos: .userInitiated).async {
            let h = OpaquePointer(bitPattern: handleBits)
            producer.start()
            let ctx = Unmanaged.passUnretained(producerState).toOpaque()
            _ = tracecmd_iterate_events(h, nil, 0, { _, record, _, ctx in
                guard let ctx, let record else { return 1 }
                let st = Unmanaged<IterationState>.fromOpaque(ctx).takeUnretainedValue()
                if st.producer?.stop == true { return 1 }
                let r = record.pointee
                return st.process(ts: r.ts, cpu: r.cpu, missed: r.missed_events, offset: Int(truncatingIfNeeded: r.offset),
                                  data: r.data.map { UnsafeRawPointer($0) }, size: Int(r.size))
            }, ctx)
            producer.finish()
            done.signal()
        }
        var k = 0
        var event = RawEvent()
        var handed = 0
        while true {
            producer.ready.wait()
            let b = ring[k % RecordBatch.count]
            k += 1
            if state.error == nil {
                b.entries.withUnsafeBufferPointer { es in
                    for e in es where state.error == nil {
                        let payload = UnsafeRawBufferPointer(start: b.storage + e.payloadStart, count: e.payloadCount)
                        if e.malformed {
                            state.sink.malformed(line: e.event.line, offset: e.event.offset, reason: "record shorter than its common fields", text: payload)
                            continue
                        }
                        event = e.event
                        event.payload = payload
                        state.sink.consume(&event)
                        handed += 1
                        if handed & 4095 == 0, let check = state.check {
                            do { try check() } catch { state.error = error }
                        }
                    }
                }
                if state.error != nil { producer.stop = true }
            }
            let last = b.last
            producer.free.signal()
            if last { break }
        }
        done.wait()
        state.index = producerState.index
        if state.error == nil, let e = producerState.error { state.error = e }
    }

    /// Finished records, copied out of the decoding thread's buffers.
    final class RecordBatch {
        static let count = 4
        static let capacity = 1 << 20
        static let maxEntries = 16384
        struct Entry { var event: RawEvent; var payloadStart: Int; var payloadCount: Int; var malformed: Bool }
        var storage: UnsafeMutableRawPointer
        var capacity = RecordBatch.capacity
        var used = 0
        var entries: [Entry] = []
        var last = false

        init() {
            storage = .allocate(byteCount: RecordBatch.capacity, alignment: 16)
            entries.reserveCapacity(RecordBatch.maxEntries)
        }
        deinit { storage.deallocate() }

        func reset() { used = 0; entries.removeAll(keepingCapacity: true); last = false }
    }

    /// The decoding thread's sink: copies each record into the current batch. Comms point into the
    /// decoder's arena, which lives as long as the read, so only payloads are copied.
    final class Producer: RawEventSink {
        let ring: [RecordBatch]
        let free = DispatchSemaphore(value: RecordBatch.count)
        let ready = DispatchSemaphore(value: 0)
        var index = 0
        var current: RecordBatch?
        /// Set by the sink's thread after an error: the iteration stops at the next record.
        var stop = false

        init(ring: [RecordBatch]) { self.ring = ring }

        func start() { next() }

        private func next() {
            free.wait()
            let b = ring[index % RecordBatch.count]
            index += 1
            b.reset()
            current = b
        }

        private func append(_ ev: RawEvent, _ bytes: UnsafeRawBufferPointer, malformed: Bool) {
            guard var b = current else { return }
            let size = bytes.count
            if b.used + size > b.capacity || b.entries.count >= RecordBatch.maxEntries {
                ready.signal()
                next()
                b = current!
                if size > b.capacity {
                    b.storage.deallocate()
                    b.storage = .allocate(byteCount: size, alignment: 16)
                    b.capacity = size
                }
            }
            if size > 0, let p = bytes.baseAddress { (b.storage + b.used).copyMemory(from: p, byteCount: size) }
            var e = ev
            e.payload = UnsafeRawBufferPointer(start: nil, count: 0)
            b.entries.append(RecordBatch.Entry(event: e, payloadStart: b.used, payloadCount: size, malformed: malformed))
            b.used += size
        }

        func consume(_ event: inout RawEvent) { append(event, event.payload, malformed: false) }

        func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) {
            var e = RawEvent()
            e.line = line
            e.offset = offset
            append(e, text, malformed: true)
        }

        func finish() {
            current?.last = true
            ready.signal()
            current = nil
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
        /// In the two-thread read, the batches this state's records go to.
        var producer: Producer?

        init(decoder: TepDecoder, sink: RawEventSink) {
            self.decoder = decoder
            self.sink = sink
        }

        func process(ts: UInt64, cpu: Int32, missed: Int64, offset: Int, data: UnsafeRawPointer?, size: Int) -> Int32 {
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
                guard let kind = try decoder.decode(data, size, into: &event, offset: event.offset) else {
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
