import Dispatch
import TraceIngest
#if canImport(Glibc)
import Glibc
#endif

/// Reads an input as independent pieces (`InputPiece`: about 1 MiB of text cut where a record
/// starts, never inside a stack trace, or a run of trace.dat records copied out of their pages),
/// decoded and normalized into compact event buffers on `threads` worker threads, and merged and
/// replayed in input order on the calling thread, which the workers yield to (`yieldToMerging`).
///
/// Results do not depend on the number of threads, on which thread decoded which piece, or on where
/// the pieces were cut (mmap vs stdin): every worker keeps only what is a function of the event name
/// (the probe-map binding) across pieces; its interned strings are renumbered into the shared tables
/// in input order (`PieceMerger`), line (record) numbers are made absolute, statistics are summed in
/// order, and what the trace teaches about addresses travels with the events (`AddressFact`).
final class ParallelIngest {
    let source: PieceSource
    private let inline: Bool
    let merger: PieceMerger
    private let workers: [PieceWorker]

    init(source: PieceSource, probeMap: ProbeMap, wantedTags: Set<ProtEventTag>?, filter: EventFilter? = nil, phaseMarker: [UInt8]? = nil, comms: StringTable, symbols: StringTable,
         strict: Bool, threads: Int, sourceName: String) {
        self.source = source
        // One worker per thread; the calling thread merges and replays (one thread: it does everything, inline).
        inline = threads <= 1
        workers = (0..<max(1, threads)).map {
            PieceWorker(index: $0, source: source, probeMap: probeMap, wantedTags: wantedTags, filter: filter, phaseMarker: phaseMarker, strict: strict,
                        sourceName: sourceName)
        }
        merger = PieceMerger(comms: comms, symbols: symbols, workers: workers.count)
    }

    /// Reads the whole input into `sink`.
    /// - Parameter check: called after each piece is replayed, with the input offset reached; throw to stop.
    func run(into sink: ProtEventSink, check: (_ bytes: Int) throws -> Void) throws {
        merger.sink = sink
        if inline {
            try source.forEachPiece { piece in
                let parsed = workers[0].parse(piece)
                try merge(parsed, check)
                piece.releaseLater()
                if let e = parsed.error { throw e }
            }
        } else {
            try runParallel(check)
        }
    }

    private func merge(_ parsed: ParsedPiece, _ check: (Int) throws -> Void) throws {
        merger.merge(parsed)
        try check(parsed.endOffset)
    }

    /// One producer (splits the input; decompresses and copies a stream; walks trace.dat pages) hands
    /// piece k to worker k mod N (each worker decodes its pieces in order), into result slot k mod S;
    /// this thread merges the slots in order. At most S pieces are in flight.
    private func runParallel(_ check: (Int) throws -> Void) throws {
        let ring = SlotRing(count: 4 * workers.count)
        let queues = workers.map { DispatchQueue(label: "protreplay.piece.\($0.index)") }
        let control = ProducerControl()
        let workers = self.workers
        let source = self.source

        DispatchQueue.global(qos: .userInitiated).async {
            var k = 0
            // Mapped pages and copied records are given back from here, off the merging thread: a free
            // slot for piece k means piece k - count was merged.
            var releasers = [(@Sendable () -> Void)?](repeating: nil, count: ring.count)
            do {
                try source.forEachPiece { piece in
                    ring.space.wait()
                    if control.cancelled { throw ProducerControl.Cancelled() }
                    releasers[k % ring.count]?()
                    releasers[k % ring.count] = piece.releaseLater
                    let index = k
                    let worker = workers[k % workers.count]
                    queues[k % workers.count].async {
                        ParallelIngest.yieldToMerging()
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
                do {
                    try merge(parsed, check)
                    if let e = parsed.error { throw e }
                } catch {
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
