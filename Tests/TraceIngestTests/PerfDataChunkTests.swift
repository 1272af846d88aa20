import XCTest
import Foundation
import CZstd
@testable import TraceIngest

/// perf.data cut into chunks of ordered records (`PerfDataRecords.forEachChunk`) and decoded chunk by
/// chunk by several decoders (`PerfChunkDecoder`, as the workers of `ParallelIngest` do) gives
/// the records the one-thread reader gives: same order, comms, payloads, lost records and line numbers.
/// (Threads and JSON: `protreplayTests/PerfDataParallelTests`.)
final class PerfDataChunkTests: XCTestCase {
    /// Every record of `path`, read on one thread.
    /// (`error`: what stopped the read, after `records`.)
    func sequential(_ path: String) throws -> (records: [Rec], malformed: [String], error: String) {
        let names = StringTable()
        let sink = CollectingSink(names: names)
        var failure = ""
        do { try PerfDataReader(names: names).read(try TraceInput(path: path), into: sink) {} } catch { failure = "\(error)" }
        return (sink.records, sink.malformed.map { "\($0.line) \($0.reason) \($0.text)" }, failure)
    }

    /// Every record of `path`, cut into chunks of about `chunkBytes` bytes (a pool of three, reused) and
    /// decoded by `decoders` decoders in turn; line numbers made absolute as the merger does.
    func chunked(_ path: String, chunkBytes: Int, decoders count: Int) throws -> (records: [Rec], malformed: [String], chunks: Int, error: String) {
        let names = StringTable()
        let sink = CollectingSink(names: names)
        var chunks = 0
        var base = 0
        var lines: [Int] = []
        var malformedBase: [Int] = []
        var failure = ""
        do {
            try PerfDataReader(names: names).withRecords(try TraceInput(path: path)) { records in
                let decoders = records.makeDecoders(count)
                let pool = (0..<3).map { _ in PerfRecordChunk() }
                try records.forEachChunk(chunkBytes: chunkBytes, next: {
                    let c = pool[chunks % pool.count]
                    records.releaseMerged(c)
                    return c
                }, send: { chunk in
                    let d = decoders[chunks % decoders.count]
                    let before = sink.records.count, malformedBefore = sink.malformed.count
                    defer {
                        lines += Array(repeating: base, count: sink.records.count - before)
                        malformedBase += Array(repeating: base, count: sink.malformed.count - malformedBefore)
                        base += d.emitted
                        chunks += 1
                    }
                    try d.decode(chunk, into: sink)
                })
            }
        } catch { failure = "\(error)" }
        var recs = sink.records
        for i in recs.indices { recs[i].line += lines[i] }
        let malformed = sink.malformed.enumerated().map { "\($1.line + malformedBase[$0]) \($1.reason) \($1.text)" }
        return (recs, malformed, chunks, failure)
    }

    func testEverySamplePerfDataChunkedGivesTheRecordsOfOneThread() throws {
        var files: [String] = []
        let root = ingestRepoRoot.appendingPathComponent("SampleTraces")
        let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
        while let u = e?.nextObject() as? URL { if u.lastPathComponent.hasSuffix("perf.data") { files.append(u.path) } }
        XCTAssertGreaterThanOrEqual(files.count, 6)
        for path in files.sorted() {
            let one = try sequential(path)
            XCTAssertFalse(one.records.isEmpty, path)
            XCTAssertEqual(one.error, "", path)
            for (size, decoders) in [(256, 2), (3000, 3), (1 << 20, 1)] {
                let many = try chunked(path, chunkBytes: size, decoders: decoders)
                XCTAssertEqual(many.records.count, one.records.count, "\(path), \(size)-byte chunks")
                if let k = many.records.indices.first(where: { $0 < one.records.count && many.records[$0] != one.records[$0] }) {
                    XCTFail("\(path), \(size)-byte chunks: record \(k) differs:\n  chunked \(many.records[k]) line \(many.records[k].line)\n  one     \(one.records[k]) line \(one.records[k].line)")
                }
                XCTAssertEqual(many.malformed, one.malformed, path)
                if size == 256 { XCTAssertGreaterThan(many.chunks, 1, path) }
            }
        }
    }

    // MARK: A file with every record kind the ordering handles

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func record(_ type: UInt32, _ body: [UInt8]) -> [UInt8] { le(type) + le(UInt16(0)) + le(UInt16(8 + body.count)) + body }
    /// sample_id_all trailer for sample_type IP|TID|TIME|CALLCHAIN|CPU|PERIOD: pid/tid, time, cpu.
    static func trailer(_ tid: UInt32, _ time: UInt64, _ cpu: UInt32) -> [UInt8] { le(tid) + le(tid) + le(time) + le(cpu) + le(UInt32(0)) }

    /// Pipe-mode perf.data of one cpu-clock attribute (IP|TID|TIME|CALLCHAIN|CPU|PERIOD, sample_id_all):
    /// COMM, FORK, EXIT, samples out of time order across FINISHED_ROUNDs, LOST and LOST_SAMPLES;
    /// with `compressed`, the records after the header packed into PERF_RECORD_COMPRESSED records of
    /// 100 bytes of zstd stream each (records continue across them).
    /// Line numbers: the LOST at t=55 comes after the 4 samples of t <= 50; LOST_SAMPLES at t=80 after
    /// those and the 21 samples of t = 60...80 (t=80's sample was queued first).
    static func syntheticFile(compressed: Bool) -> [UInt8] {
        var head = Array("PERFILE2".utf8) + le(UInt64(16))
        var attr = [UInt8](repeating: 0, count: 128)
        attr.replaceSubrange(0..<4, with: le(UInt32(1)))           // PERF_TYPE_SOFTWARE
        attr.replaceSubrange(4..<8, with: le(UInt32(128)))
        attr.replaceSubrange(24..<32, with: le(UInt64(0x1A7)))
        attr.replaceSubrange(40..<48, with: le(UInt64(1 << 18)))   // sample_id_all
        head += record(64, attr + le(UInt64(1)))                   // HEADER_ATTR, id 1
        var body: [UInt8] = []
        func comm(_ tid: UInt32, _ name: String, _ t: UInt64) {
            var s = Array(name.utf8) + [0]
            while s.count % 8 != 0 { s.append(0) }
            body += record(3, le(tid) + le(tid) + s + trailer(tid, t, 0))
        }
        func fork(_ tid: UInt32, from parent: UInt32, _ t: UInt64) {
            body += record(7, le(tid) + le(parent) + le(tid) + le(parent) + le(t) + trailer(tid, t, 0))
        }
        func sample(_ tid: UInt32, _ t: UInt64, cpu: UInt32, frames: [UInt64] = []) {
            var chain = le(UInt64(frames.count))
            for f in frames { chain += le(f) }
            body += record(9, le(UInt64(0xffff_ffff_8100_0000 + t)) + le(tid) + le(tid) + le(t) + le(cpu) + le(UInt32(0)) + le(UInt64(1)) + chain)
        }
        func round() { body += record(68, []) }
        comm(101, "worker", 10)
        sample(101, 30, cpu: 0, frames: [0xffff_ffff_ffff_ff80, 0xffff_ffff_8100_1234, 0x7f00_0000_1000])
        sample(103, 20, cpu: 1)                                   // no COMM: ":103"
        round()
        fork(102, from: 101, 40)                                  // inherits "worker"
        fork(104, from: 103, 45)                                  // inherits ":103"
        sample(102, 50, cpu: 1)
        sample(104, 35, cpu: 0)                                   // before the fork in time: ":104"
        body += record(2, le(UInt64(1)) + le(UInt64(17)) + trailer(0, 55, 1))   // LOST 17 on cpu 1
        round()
        for i in 0..<40 { sample(UInt32(101 + i % 5), 60 + UInt64(i * 3 % 40), cpu: UInt32(i % 2), frames: i % 4 == 0 ? [0xffff_ffff_8100_0000 + UInt64(i)] : []) }
        comm(102, "renamed", 70)                                  // in the middle of the round, in time order
        body += record(13, le(UInt64(5)) + trailer(0, 80, 0))     // LOST_SAMPLES 5
        round()
        for i in 0..<30 { sample(UInt32(104 + i % 3), 200 + UInt64(i), cpu: UInt32(i % 2)) }
        exitRecord(&body, 104, 230)
        round()
        guard compressed else { return head + body }
        var out = head
        guard let cctx = ZSTD_createCStream() else { return [] }
        defer { ZSTD_freeCStream(cctx) }
        ZSTD_initCStream(cctx, 1)
        var stream: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        body.withUnsafeBytes { src in
            var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
            var finished = false
            while !finished {
                let (n, rc): (Int, Int) = buffer.withUnsafeMutableBytes { o in
                    var ob = ZSTD_outBuffer(dst: o.baseAddress, size: o.count, pos: 0)
                    let r = input.pos < input.size ? ZSTD_compressStream(cctx, &ob, &input) : ZSTD_endStream(cctx, &ob)
                    return (ob.pos, r)
                }
                stream += buffer[0..<n]
                finished = input.pos == input.size && rc == 0
            }
        }
        var at = 0
        while at < stream.count {
            let n = min(100, stream.count - at)
            out += record(81, Array(stream[at..<at + n]))
            at += n
        }
        return out + record(68, [])
    }

    static func exitRecord(_ body: inout [UInt8], _ tid: UInt32, _ t: UInt64) {
        body += record(4, le(tid) + le(tid) + le(tid) + le(tid) + le(t) + trailer(tid, t, 0))   // EXIT: ignored
    }

    func testCommForkLostAndRoundsChunkedAsOnOneThread() throws {
        let dir = try temporaryDirectory(self)
        for compressed in [false, true] {
            let path = dir.appendingPathComponent(compressed ? "synthetic-z.perf.data" : "synthetic.perf.data").path
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(Self.syntheticFile(compressed: compressed))))
            let one = try sequential(path)
            XCTAssertEqual(one.error, "")
            let events = one.records.filter { $0.kind == .event }
            XCTAssertEqual(events.count, 74, "compressed \(compressed)")
            // Time order across rounds, and the comm each thread had at that point.
            XCTAssertEqual(Array(events.prefix(4).map { "\($0.ts) \($0.pid) \($0.comm)" }),
                           ["20 103 :103", "30 101 worker", "35 104 :104", "50 102 worker"], "compressed \(compressed)")
            XCTAssertEqual(events.filter { $0.pid == 102 && $0.ts > 70 && $0.ts < 200 }.map(\.comm).first, "renamed")
            XCTAssertEqual(events.filter { $0.pid == 102 && $0.ts < 70 }.map(\.comm), ["worker", "worker", "worker"])
            XCTAssertEqual(one.records.filter { $0.kind == .lostEvents }.map { "\($0.lost) cpu \($0.cpu) line \($0.line)" },
                           ["17 cpu 1 line 4", "5 cpu 0 line 25"])
            XCTAssertEqual(one.records.filter { $0.kind == .stackFrame }.count, 12)
            for (size, decoders) in [(64, 2), (200, 3), (1000, 2)] {
                let many = try chunked(path, chunkBytes: size, decoders: decoders)
                XCTAssertGreaterThan(many.chunks, 2)
                XCTAssertEqual(many.records, one.records, "compressed \(compressed), \(size)-byte chunks")
                XCTAssertEqual(many.records.map(\.line), one.records.map(\.line))
            }
        }
    }

    /// A pipe-mode file (read to its end) cut short fails with the same error chunked, after the same records.
    func testTruncatedFileFailsAlikeChunked() throws {
        let dir = try temporaryDirectory(self)
        let pipe = [UInt8](try Data(contentsOf: ingestRepoRoot.appendingPathComponent("SampleTraces/tools/mixed-pipe.perf.data")))
        for (all, name) in [(pipe, "pipe"), (Self.syntheticFile(compressed: false), "synthetic"), (Self.syntheticFile(compressed: true), "synthetic-z")] {
            var failures = 0
            for cut in stride(from: all.count / 2 + 3, to: all.count, by: max(1, all.count / 23)) {
                let path = dir.appendingPathComponent("cut-\(name)-\(cut).perf.data").path
                XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(all[0..<cut])))
                let one = try sequential(path), many = try chunked(path, chunkBytes: 300, decoders: 2)
                XCTAssertEqual(many.error, one.error, "\(name) cut at \(cut)")
                XCTAssertEqual(many.records, one.records, "\(name) cut at \(cut)")
                if !one.error.isEmpty { failures += 1 }
            }
            XCTAssertGreaterThan(failures, 3, name)
        }
    }
}
