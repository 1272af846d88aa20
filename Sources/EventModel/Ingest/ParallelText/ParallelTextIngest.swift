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
final class ParallelTextIngest {
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
        if release { parsed.piece?.release() }
        try check(parsed.progress)
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
                        ParallelTextIngest.yieldToMerging()
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
    static func yieldToMerging() {
        if getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) < 10 { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10) }
    }

    enum Slot {
        case empty
        case parsed(ParsedPiece)
        case end(Error?)
    }

    /// Result slots: piece k goes to slot k mod count; `space` counts the free ones. Each slot is
    /// written by one thread and then read by the merging thread, in the order the semaphores give.
    final class SlotRing: @unchecked Sendable {
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
    func nameSummaries() -> [EventNormalizer.NameSummary] { ParallelTextIngest.nameSummaries(workers.map(\.normalizer)) }

    /// The event names seen by several normalizers with their counts (merged by name).
    static func nameSummaries(_ normalizers: [EventNormalizer]) -> [EventNormalizer.NameSummary] {
        var byName: [String: EventNormalizer.NameSummary] = [:]
        for n in normalizers {
            for s in n.nameSummaries() {
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
final class ProducerControl: @unchecked Sendable {
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
