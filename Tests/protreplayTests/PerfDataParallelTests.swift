import XCTest
import Foundation
import TestSupport

/// perf.data is decoded in chunks on several threads (`ParallelIngest`, `PerfDataPieceSource`): every perf.data under
/// SampleTraces/ gives byte-identical JSON on one thread (the sequential reader), on 2 threads in
/// chunks of about 300 bytes and on 4 threads in 1 MiB chunks, and from stdin on 2 threads.
/// (Record-level equality of the chunking: TraceIngestTests/PerfDataChunkTests.)
final class PerfDataParallelTests: XCTestCase {
    func run(_ args: [String], threads: Int, pieceBytes: Int? = nil, stdin: String? = nil) throws -> String {
        var env = ["PROTREPLAY_READER_THREADS": String(threads)]
        if let pieceBytes { env["PROTREPLAY_PIECE_BYTES"] = String(pieceBytes) }
        let input = try stdin.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let r = try ProcessRunner.run(try toolPath(), args, stdin: input, environment: env)
        XCTAssertEqual(r.status, 0, args.joined(separator: " ") + ": " + r.err)
        return r.out
    }

    func testEveryPerfDataGivesIdenticalJSONOnAnyNumberOfThreads() throws {
        var files: [String] = []
        let e = FileManager.default.enumerator(at: repoRoot.appendingPathComponent("SampleTraces"), includingPropertiesForKeys: nil)
        while let u = e?.nextObject() as? URL { if u.lastPathComponent.hasSuffix("perf.data") { files.append(u.path) } }
        XCTAssertGreaterThanOrEqual(files.count, 6)
        for path in files.sorted() {
            let args = ["report", path, "--model", "highmem,pks,s390pv,directmap", "--format", "json"]
            let serial = try run(args, threads: 1)
            XCTAssertFalse(serial.isEmpty, path)
            XCTAssertEqual(try run(args, threads: 2, pieceBytes: 300), serial, "2 threads, 300-byte chunks: \(path)")
            XCTAssertEqual(try run(args, threads: 4), serial, "4 threads: \(path)")
            let stdin = try run(["report", "-"] + args.dropFirst(2), threads: 2, pieceBytes: 2000, stdin: path)
            XCTAssertEqual(strip(stdin), strip(serial), "stdin, 2 threads: \(path)")
            // `protreplay events` lists the names with their counts (merged over the workers).
            let names = ["events", path]
            XCTAssertEqual(try run(names, threads: 3, pieceBytes: 500), try run(names, threads: 1), "events: \(path)")
        }
    }

    /// The input's path and size are reported as given; everything else must match.
    func strip(_ json: String) -> String {
        json.split(separator: "\n").filter { !$0.contains("\"path\"") && !$0.contains("\"bytes\"") }.joined(separator: "\n")
    }
}
