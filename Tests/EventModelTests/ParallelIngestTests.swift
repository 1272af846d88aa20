import XCTest
import Foundation
import TraceIngest
@testable import EventModel

final class ParallelIngestTests: XCTestCase {
    /// A worker holds its normalizer; the normalizer must not hold the worker (LeakSanitizer found that
    /// cycle while fuzzing the perf-script and lz4 targets).
    func testPieceWorkerIsFreed() throws {
        weak var weakWorker: PieceWorker?
        weak var weakNormalizer: EventNormalizer?
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("worker-\(getpid()).txt")
        try text("          wl-1-101 [000] ..... 7.000001: kmap_high: (kmap_high+0x0/0x260) page=0xf6ded6a8\n").write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            let source = TextPieceSource(input: try TraceInput(path: url.path), pieceSize: 1 << 20)
            let w = PieceWorker(index: 0, source: source, probeMap: ProbeMap(), wantedTags: nil, strict: false, sourceName: "t")
            weakWorker = w
            weakNormalizer = w.normalizer
        }
        XCTAssertNil(weakWorker)
        XCTAssertNil(weakNormalizer)
    }

    private func text(_ s: String) -> String { s }

    /// Pieces of a few hundred bytes, many threads, stdin: the same events, lines and statistics as one
    /// thread reading the whole file (the JSON-level check is `DeterminismTests`).
    func testPiecesOnThreadsGiveWhatOneThreadGives() throws {
        var text = ""
        for i in 0..<400 {
            text += "          wl-\(i % 7)-\(100 + i % 7) [00\(i % 2)] ..... \(7 + i / 100).\(String(format: "%06d", (i * 37) % 1_000_000)): kmap_high: (kmap_high+0x0/0x260) page=0xf6ded6a8\n"
            if i % 5 == 0 {
                text += "          wl-\(i % 7)-\(100 + i % 7) [00\(i % 2)] ..... \(7 + i / 100).\(String(format: "%06d", (i * 37) % 1_000_000)): <stack trace>\n => kmap_high\n => caller_\(i % 3)\n"
            }
            if i % 50 == 0 { text += "garbage line \(i)\n" }
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pieces-\(getpid()).txt")
        try text.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }

        func read(threads: Int, pieceSize: Int) throws -> ([String], IngestStats, [String]) {
            let comms = StringTable(), symbols = StringTable()
            let source = ProtEventSource(input: try TraceInput(path: url.path), probeMap: ProbeMap(), comms: comms, symbols: symbols,
                                         threads: threads, pieceSize: pieceSize)
            let recorder = ProtEventRecorder()
            try source.run(into: recorder)
            // Address facts are sent again by each piece that needs them (they only ever set what is
            // still unknown), so they are compared as a set; everything else item by item.
            var facts = Set<String>()
            let events = recorder.items.compactMap { item -> String? in
                switch item {
                case let .event(e): return "\(e.line) \(e.cpu) \(e.pid) \(comms.string(e.comm)) \(symbols.string(e.site)) \(e.kind)"
                case let .fact(f): facts.insert("\(f)"); return nil
                default: return "\(item)"
                }
            } + facts.sorted()
            return (events, source.stats, source.nameSummaries().map { "\($0.name)=\($0.count)" })
        }
        let (one, oneStats, oneNames) = try read(threads: 1, pieceSize: 1 << 20)
        XCTAssertEqual(oneStats.events, 400)
        XCTAssertEqual(oneStats.stackTraces, 80)
        XCTAssertEqual(oneStats.malformed, 8)
        for (threads, size) in [(2, 256), (3, 300), (4, 1000)] {
            let (many, stats, names) = try read(threads: threads, pieceSize: size)
            XCTAssertEqual(many, one, "\(threads) threads, \(size)-byte pieces")
            XCTAssertEqual(stats.events, oneStats.events)
            XCTAssertEqual(stats.malformed, oneStats.malformed)
            XCTAssertEqual(stats.malformedExamples, oneStats.malformedExamples)
            XCTAssertEqual(names, oneNames)
        }
    }
}
