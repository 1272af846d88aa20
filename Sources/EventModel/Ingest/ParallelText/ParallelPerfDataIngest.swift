import Dispatch
import TraceIngest
#if canImport(Glibc)
import Glibc
#endif

/// Reads a perf.data on several threads, with the machinery of the text path (`ParallelTextIngest`):
/// one producer orders the records (`PerfDataRecords.forEachChunk`: the record headers, perf's
/// `FINISHED_ROUND` sort, zstd-compressed records, the comm of every sample's thread from the
/// COMM/FORK records before it) and cuts them into chunks of about `chunkBytes` bytes; chunk k is
/// decoded and normalized by worker k mod N (`PerfChunkWorker`: sample fields, tracepoint payload,
/// `EventNormalizer`), into result slot k mod S; this thread merges the slots in order (`PieceMerger`)
/// and replays them.
///
/// The events, their order, line numbers and statistics are those of the one-thread reader
/// (`PerfDataReader.read`): chunks are cut in the order perf's rounds hand records out, each sample
/// carries its thread's comm, and workers renumber nothing but their own strings.
/// Memory: at most S chunks in flight (and the mapped file, given back as chunks are merged).
final class ParallelPerfDataIngest {
    let input: TraceInput
    let names: StringTable
    let chunkBytes: Int
    let threads: Int
    let merger: PieceMerger
    private let makeNormalizer: (_ comms: StringTable, _ symbols: StringTable) -> EventNormalizer
    private var workers: [PerfChunkWorker] = []

    init(input: TraceInput, names: StringTable, threads: Int, chunkBytes: Int, comms: StringTable, symbols: StringTable,
         makeNormalizer: @escaping (_ comms: StringTable, _ symbols: StringTable) -> EventNormalizer) {
        self.input = input
        self.names = names
        self.threads = max(1, threads)
        self.chunkBytes = max(chunkBytes, 256)
        self.makeNormalizer = makeNormalizer
        merger = PieceMerger(comms: comms, symbols: symbols, workers: self.threads)
    }

    /// Reads the whole input into `sink`.
    /// - Parameter check: called after each chunk is replayed, with the file offset the ordering had reached; throw to stop.
    func run(into sink: ProtEventSink, check: (_ bytes: Int) throws -> Void) throws {
        merger.sink = sink
        try PerfDataReader(names: names).withRecords(input) { records in
            // Every decoder (and every name it interns) is made here, before any thread runs.
            workers = records.makeDecoders(threads).enumerated().map { k, decoder in
                PerfChunkWorker(index: k, decoder: decoder, makeNormalizer: makeNormalizer)
            }
            try runParallel(records, check)
        }
    }

    /// The event names all workers saw, with their counts.
    func nameSummaries() -> [EventNormalizer.NameSummary] { ParallelTextIngest.nameSummaries(workers.map(\.normalizer)) }

    private func runParallel(_ records: PerfDataRecords, _ check: (Int) throws -> Void) throws {
        let ring = ParallelTextIngest.SlotRing(count: 4 * workers.count)
        // Chunk k is filled in pool[k mod S] once slot k mod S is free (chunk k - S was merged).
        let pool = (0..<ring.count).map { _ in PerfRecordChunk() }
        let queues = workers.map { DispatchQueue(label: "protreplay.perfchunk.\($0.index)") }
        let control = ProducerControl()
        let producerDone = DispatchSemaphore(value: 0)
        let workers = self.workers
        let chunkBytes = self.chunkBytes

        DispatchQueue.global(qos: .userInitiated).async {
            var k = 0
            do {
                try records.forEachChunk(chunkBytes: chunkBytes, next: {
                    ring.space.wait()
                    if control.cancelled { throw ProducerControl.Cancelled() }
                    let chunk = pool[k % pool.count]
                    records.releaseMerged(chunk)
                    return chunk
                }, send: { chunk in
                    let index = k
                    let worker = workers[k % workers.count]
                    queues[k % workers.count].async {
                        // The merging thread and the producer are the serial stages: workers yield to them.
                        ParallelTextIngest.yieldToMerging()
                        ring.put(.parsed(worker.parse(chunk)), at: index)
                    }
                    k += 1
                })
                ring.space.wait()
                ring.put(.end(nil), at: k)
            } catch is ProducerControl.Cancelled {
                ring.put(.end(nil), at: k)            // its space was taken for the chunk not filled
            } catch {
                ring.space.wait()
                ring.put(.end(error), at: k)
            }
            producerDone.signal()
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
                merger.merge(parsed)
                if let error = parsed.error {
                    failure = error
                    control.cancel()
                } else {
                    do { try check(parsed.progress) } catch {
                        failure = error
                        control.cancel()
                    }
                }
            }
            ring.space.signal()
        }
        // Everything sent was merged or dropped; wait for the workers and the producer to be done with the file.
        for q in queues { q.sync {} }
        producerDone.wait()
        if let failure { throw failure }
    }
}

/// Decodes and normalizes perf.data chunks with its own decoder, normalizer and string tables.
final class PerfChunkWorker {
    let index: Int
    let decoder: PerfChunkDecoder
    let comms = StringTable(), symbols = StringTable()
    let normalizer: EventNormalizer
    private let recorder = ProtEventRecorder()
    /// Ids below these were handed to the merger with an earlier chunk.
    private var announcedComms = 1, announcedSymbols = 1

    init(index: Int, decoder: PerfChunkDecoder, makeNormalizer: (StringTable, StringTable) -> EventNormalizer) {
        self.index = index
        self.decoder = decoder
        normalizer = makeNormalizer(comms, symbols)
        normalizer.connect(recorder)
    }

    func parse(_ chunk: PerfRecordChunk) -> ParsedPiece {
        recorder.items.reserveCapacity(chunk.count + 16)
        normalizer.beginPiece()
        var failure: Error?
        do { try decoder.decode(chunk, into: normalizer) } catch { failure = error }
        normalizer.finish()
        let parsed = ParsedPiece(piece: nil, worker: index, items: recorder.items, lines: decoder.emitted, stats: normalizer.stats,
                                 newComms: PieceWorker.newStrings(comms, &announcedComms),
                                 newSymbols: PieceWorker.newStrings(symbols, &announcedSymbols),
                                 progress: chunk.progressOffset, error: failure)
        recorder.items = []
        return parsed
    }
}
