import XCTest
import Foundation
import TestSupport

/// Text and trace.dat are read in pieces on several threads (`ParallelIngest`): the result must not
/// depend on the number of threads, on where the pieces are cut, or on mmap vs stdin: byte-identical
/// JSON, on every real text sample, every trace.dat and every scenario, read on one thread in 1 MiB
/// pieces, on three threads in pieces of about 3000 bytes (hundreds of cuts, many next to stack
/// traces; 23 records for trace.dat), and from stdin.
final class DeterminismTests: XCTestCase {
    func run(_ args: [String], threads: Int, pieceBytes: Int? = nil, stdin: String? = nil) throws -> String {
        var env = ["PROTREPLAY_READER_THREADS": String(threads)]
        if let pieceBytes { env["PROTREPLAY_PIECE_BYTES"] = String(pieceBytes) }
        let input = try stdin.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let r = try ProcessRunner.run(try toolPath(), args, stdin: input, environment: env)
        XCTAssertEqual(r.status, 0, args.joined(separator: " "))
        return r.out
    }

    func testThreadsPiecesAndStdinGiveIdenticalJSON() throws {
        var inputs: [[String]] = []
        for dir in try FileManager.default.contentsOfDirectory(atPath: realDir.path).sorted() {
            for name in ["trace.lz4", "trace", "perf-script.txt", "trace.dat"] {
                let p = realDir.appendingPathComponent("\(dir)/\(name)").path
                if FileManager.default.fileExists(atPath: p) { inputs.append([p, "--model", "auto"]) }
            }
        }
        let tools = repoRoot.appendingPathComponent("SampleTraces/tools")
        for name in try FileManager.default.contentsOfDirectory(atPath: tools.path).sorted() where name.hasSuffix(".dat") || name.hasSuffix(".dat.lz4") {
            inputs.append([tools.appendingPathComponent(name).path, "--model", "auto"])
        }
        let scenarios = repoRoot.appendingPathComponent("SampleTraces/scenarios")
        for dir in try FileManager.default.contentsOfDirectory(atPath: scenarios.path).sorted() {
            let d = scenarios.appendingPathComponent(dir)
            var args = [d.appendingPathComponent("trace.txt").path]
            if let extra = try? String(contentsOf: d.appendingPathComponent("args"), encoding: .utf8) {
                args += extra.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            }
            inputs.append(args)
        }
        XCTAssertGreaterThan(inputs.count, 10)
        for args in inputs {
            let serial = try run(["report"] + args + ["--format", "json"], threads: 1)
            XCTAssertFalse(serial.isEmpty)
            let small = try run(["report"] + args + ["--format", "json"], threads: 3, pieceBytes: 3000)
            XCTAssertEqual(serial, small, "3 threads, small pieces: " + args.joined(separator: " "))
            let stdin = try run(["report", "-"] + args.dropFirst() + ["--format", "json"], threads: 2, pieceBytes: 5000, stdin: args[0])
            XCTAssertEqual(strip(serial), strip(stdin), "stdin: " + args.joined(separator: " "))
        }
    }

    /// The input's path and size are reported as given; everything else must match.
    func strip(_ json: String) -> String {
        json.split(separator: "\n").filter { !$0.contains("\"path\"") && !$0.contains("\"bytes\"") }.joined(separator: "\n")
    }
}
