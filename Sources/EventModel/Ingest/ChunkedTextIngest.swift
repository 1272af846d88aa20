import Dispatch
import TraceIngest
#if canImport(Glibc)
import Glibc
#endif

/// Reads a text trace (ftrace, `trace-cmd report`, `perf script`) as independent pieces of about
/// 1 MiB (`TextPiece`: cut where a record starts, never inside a stack trace), parsed and normalized
/// into compact event buffers on `threads` worker threads, and merged and replayed in input order on the
/// calling thread, which the workers yield to (`yieldToMerging`).
///
/// Results do not depend on the number of threads, on which thread parsed which piece, or on where
/// the pieces were cut (mmap vs stdin): every worker keeps only what is a function of the event name
/// (the probe-map binding) across pieces; its interned strings are renumbered into the shared tables
/// in input order (`PieceMerger`), line numbers are made absolute, statistics are summed in order,
/// and what the trace teaches about addresses travels with the events (`AddressFact`).
final class ChunkedTextIngest {
    let input: TraceInput
    let pieceSize: Int
    private let inline: Bool
    let merger: PieceMerger
    private let workers: [PieceWorker]

    init(input: TraceInput, probeMap: ProbeMap, wantedTags: Set<ProtEventTag>?, filter: EventFilter? = nil, phaseMarker: [UInt8]? = nil, comms: StringTable, symbols: StringTable,
         strict: Bool, threads: Int, pieceSize: Int) {
        self.input = input
        self.pieceSize = max(pieceSize, 256)
        // One worker per thread; the calling thread merges and replays (one thread: it does everything, inline).
        inline = threads <= 1
        workers = (0..<max(1, threads)).map {
            PieceWorker(index: $0, format: input.format, probeMap: probeMap, wantedTags: wantedTags, filter: filter, phaseMarker: phaseMarker, strict: strict,
                        sourceName: input.path)
        }
        merger = PieceMerger(comms: comms, symbols: symbols, workers: workers.count)
    }

    /// Reads the whole input into `sink`.
    /// - Parameter check: called after each piece is replayed, with the input offset reached; throw to stop.
    func run(into sink: ProtEventSink, check: (_ bytes: Int) throws -> Void) throws {
        merger.sink = sink
        // Only `startsRecord`, which reads nothing but the line, is used from the producing thread.
        let splitter = input.format.makeTextReader(names: StringTable())!
        if inline {
            try input.forEachPiece(size: pieceSize, startsRecord: splitter.startsRecord) { piece in
                try merge(workers[0].parse(piece), release: true, check)
            }
        } else {
            try runParallel(splitter, check)
        }
    }

    private func merge(_ parsed: ParsedPiece, release: Bool, _ check: (Int) throws -> Void) throws {
        merger.merge(parsed)
        if release { parsed.piece.release() }
        try check(parsed.piece.offset + parsed.piece.bytes.count)
    }

    /// One producer (splits the input; decompresses and copies a stream) hands piece k to worker
    /// k mod N (each worker parses its pieces in order), into result slot k mod S; this thread merges
    /// the slots in order. At most S pieces are in flight.
    private func runParallel(_ splitter: TextTraceReader, _ check: (Int) throws -> Void) throws {
        let ring = SlotRing(count: 4 * workers.count)
        let queues = workers.map { DispatchQueue(label: "protreplay.piece.\($0.index)") }
        let control = ProducerControl()
        let workers = self.workers
        let input = self.input
        let pieceSize = self.pieceSize

        DispatchQueue.global(qos: .userInitiated).async {
            var k = 0
            // Mapped pages are given back from here, off the merging thread: a free slot for piece k means
            // piece k - count was merged.
            var releasers = [TextPiece.Releaser?](repeating: nil, count: ring.count)
            do {
                try input.forEachPiece(size: pieceSize, startsRecord: splitter.startsRecord) { piece in
                    ring.space.wait()
                    if control.cancelled { throw ProducerControl.Cancelled() }
                    releasers[k % ring.count]?.release()
                    releasers[k % ring.count] = piece.releaser
                    let index = k
                    let worker = workers[k % workers.count]
                    queues[k % workers.count].async {
                        ChunkedTextIngest.yieldToMerging()
                        ring.put(.parsed(worker.parse(piece)), at: index)
                    }
                    k += 1
                }
                ring.space.wait()
                ring.put(.end(nil), at: k)
            } catch is ProducerControl.Cancelled {
                ring.put(.end(nil), at: k)            // its space was taken for the piece not sent
            } catch {
                ring.space.wait()
                ring.put(.end(error), at: k)
            }
        }

        var k = 0
        var failure: Error?
        while true {
            let slot = ring.take(at: k)
            k += 1
            guard case let .parsed(parsed) = slot else {
                if case let .end(error?) = slot, failure == nil { failure = error }
                break
            }
            if failure == nil {
                do { try merge(parsed, release: false, check) } catch {
                    failure = error
                    control.cancel()
                }
            }
            ring.space.signal()
        }
        // Everything sent was merged or dropped; wait for the workers to be idle before the input goes away.
        for q in queues { q.sync {} }
        if let failure { throw failure }
    }

    /// The merging thread is the one stage that cannot be split: when the CPUs are all busy, it should
    /// be the one that runs. Pool threads that parse lower their own priority (nice +10, this thread only
    /// on Linux) so that the scheduler prefers the caller's thread; they are never raised again.
    private static func yieldToMerging() {
        if getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) < 10 { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10) }
    }

    fileprivate enum Slot {
        case empty
        case parsed(ParsedPiece)
        case end(Error?)
    }

    /// Result slots: piece k goes to slot k mod count; `space` counts the free ones. Each slot is
    /// written by one thread and then read by the merging thread, in the order the semaphores give.
    private final class SlotRing: @unchecked Sendable {
        let count: Int
        let slots: UnsafeMutablePointer<Slot>
        let ready: [DispatchSemaphore]
        /// Created at 0 and signalled up: libdispatch traps when a semaphore is freed below its initial value.
        let space = DispatchSemaphore(value: 0)

        init(count: Int) {
            self.count = count
            slots = .allocate(capacity: count)
            slots.initialize(repeating: .empty, count: count)
            ready = (0..<count).map { _ in DispatchSemaphore(value: 0) }
            for _ in 0..<count { space.signal() }
        }

        deinit {
            slots.deinitialize(count: count)
            slots.deallocate()
        }

        func put(_ slot: Slot, at k: Int) {
            slots[k % count] = slot
            ready[k % count].signal()
        }

        func take(at k: Int) -> Slot {
            ready[k % count].wait()
            let slot = slots[k % count]
            slots[k % count] = .empty
            return slot
        }
    }
    /// The event names seen by all workers with their counts (merged by name).
    func nameSummaries() -> [EventNormalizer.NameSummary] {
        var byName: [String: EventNormalizer.NameSummary] = [:]
        for w in workers {
            for s in w.normalizer.nameSummaries() {
                if var known = byName[s.name] {
                    known.count += s.count
                    if let m = s.matched { known.matched = (known.matched ?? 0) + m }
                    byName[s.name] = known
                } else { byName[s.name] = s }
            }
        }
        return byName.values.sorted { $0.name < $1.name }
    }
}

/// Lets the merging thread stop the producer (strict mode, a failed check).
private final class ProducerControl: @unchecked Sendable {
    struct Cancelled: Error {}
    private var lock = pthread_mutex_t()
    private var flag = false
    init() { pthread_mutex_init(&lock, nil) }
    deinit { pthread_mutex_destroy(&lock) }
    var cancelled: Bool {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        return flag
    }
    func cancel() {
        pthread_mutex_lock(&lock); defer { pthread_mutex_unlock(&lock) }
        flag = true
    }
}

/// What one piece turned into: its events, in order, numbered within the piece.
struct ParsedPiece: @unchecked Sendable {
    /// Strings a worker interned for the first time in this piece (its ids `first...`), in id order.
    struct NewStrings {
        var first: StringTable.ID = 1
        var bytes: [UInt8] = []
        var lengths: [Int] = []
    }

    var piece: TextPiece
    var worker: Int
    var items: [ProtEventItem]
    /// Lines in the piece (line numbers in it start at 1).
    var lines: Int
    var stats: IngestStats
    var newComms: NewStrings
    var newSymbols: NewStrings
}

/// Parses and normalizes pieces with its own reader, normalizer and string tables.
final class PieceWorker {
    let index: Int
    let names = StringTable(), comms = StringTable(), symbols = StringTable()
    let reader: TextTraceReader
    let normalizer: EventNormalizer
    private let recorder = ProtEventRecorder()
    /// Ids below these were handed to the merger with an earlier piece.
    private var announcedComms = 1, announcedSymbols = 1

    init(index: Int, format: TraceFormat, probeMap: ProbeMap, wantedTags: Set<ProtEventTag>?, filter: EventFilter? = nil, phaseMarker: [UInt8]? = nil, strict: Bool, sourceName: String) {
        self.index = index
        reader = format.makeTextReader(names: names)!
        normalizer = EventNormalizer(probeMap: probeMap, names: names, comms: comms, symbols: symbols,
                                     strict: strict, sourceName: sourceName)
        normalizer.wantedTags = wantedTags
        normalizer.filter = filter
        normalizer.phaseMarker = phaseMarker
        normalizer.connect(recorder)
    }

    func parse(_ piece: TextPiece) -> ParsedPiece {
        recorder.items.reserveCapacity(piece.bytes.count / 64)
        reader.beginPiece()
        normalizer.beginPiece()
        reader.read(piece.bytes, offset: piece.offset, into: normalizer)
        normalizer.finish()
        let parsed = ParsedPiece(piece: piece, worker: index, items: recorder.items, lines: reader.lineNumber, stats: normalizer.stats,
                                 newComms: newStrings(comms, &announcedComms), newSymbols: newStrings(symbols, &announcedSymbols))
        recorder.items = []
        return parsed
    }

    private func newStrings(_ table: StringTable, _ announced: inout Int) -> ParsedPiece.NewStrings {
        var s = ParsedPiece.NewStrings(first: StringTable.ID(announced))
        while announced < table.count {
            s.lengths.append(table.appendBytes(of: StringTable.ID(announced), to: &s.bytes))
            announced += 1
        }
        return s
    }
}

/// Replays parsed pieces in input order: renumbers each worker's strings into the shared tables
/// (in the order they first occur in the input), makes line numbers absolute and sums statistics.
final class PieceMerger {
    let comms: StringTable
    let symbols: StringTable
    var sink: ProtEventSink?
    private(set) var stats = IngestStats()
    /// Lines before the next piece.
    private(set) var lines = 0
    /// Per worker: its string id -> the shared id.
    private var commIDs: [[StringTable.ID]]
    private var symbolIDs: [[StringTable.ID]]

    init(comms: StringTable, symbols: StringTable, workers: Int) {
        self.comms = comms
        self.symbols = symbols
        commIDs = Array(repeating: [0], count: workers)
        symbolIDs = Array(repeating: [0], count: workers)
    }

    func merge(_ p: ParsedPiece) {
        PieceMerger.adopt(p.newComms, into: comms, map: &commIDs[p.worker])
        PieceMerger.adopt(p.newSymbols, into: symbols, map: &symbolIDs[p.worker])
        let base = lines
        guard let sink else { return }
        commIDs[p.worker].withUnsafeBufferPointer { commMap in
            symbolIDs[p.worker].withUnsafeBufferPointer { symbolMap in
                @inline(__always) func comm(_ id: StringTable.ID) -> StringTable.ID {
                    id == StringTable.overflowID ? id : commMap[Int(id)]
                }
                for item in p.items {
                    switch item {
                    case var .event(e):
                        e.line += base
                        e.comm = comm(e.comm)
                        if e.site != 0 { e.site = e.site == StringTable.overflowID ? e.site : symbolMap[Int(e.site)] }
                        switch e.kind {
                        case let .contextSwitch(prevPid, prevComm, prevRunnable, nextPid, nextComm):
                            e.kind = .contextSwitch(prevPid: prevPid, prevComm: comm(prevComm), prevRunnable: prevRunnable,
                                                    nextPid: nextPid, nextComm: comm(nextComm))
                        case let .taskFork(parentPid, childPid, childComm):
                            e.kind = .taskFork(parentPid: parentPid, childPid: childPid, childComm: comm(childComm))
                        case let .marker(phase) where phase != 0:
                            e.kind = .marker(phase: phase == StringTable.overflowID ? phase : symbolMap[Int(phase)])
                        default: break
                        }
                        sink.consume(e)
                    case let .tick(cpu, pid, ts, flags, line): sink.tick(cpu: cpu, pid: pid, timestamp: ts, flags: flags, line: line + base)
                    case let .lost(cpu, count, line): sink.lost(cpu: cpu, count: count, line: line + base)
                    case let .bufferStarted(cpu, line): sink.bufferStarted(cpu: cpu, line: line + base)
                    case let .fact(f): sink.addressFact(f)
                    }
                }
            }
        }
        stats.add(p.stats, lineBase: base)
        lines += p.lines
    }

    private static func adopt(_ new: ParsedPiece.NewStrings, into table: StringTable, map: inout [StringTable.ID]) {
        guard !new.lengths.isEmpty else { return }
        precondition(Int(new.first) == map.count, "pieces of one worker merged out of order")
        new.bytes.withUnsafeBytes { all in
            var at = 0
            for n in new.lengths {
                map.append(table.intern(UnsafeRawBufferPointer(rebasing: all[at..<at + n])))
                at += n
            }
        }
    }
}
