import XCTest
import Foundation
@testable import protreplay
import Reports
import TestSupport

let repoRoot = Repository.root
let i386Trace = repoRoot.appendingPathComponent("SampleTraces/real/6.1.0-50-686-pae-i386-workload/trace.lz4").path

/// The built `protreplay` binary: the one built with these tests (next to the test bundle, whatever
/// `--scratch-path`), else `.build/debug` or `.build/release`.
func toolPath() throws -> String {
    let beside = [Bundle.main.executableURL?.deletingLastPathComponent(), Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        .compactMap { $0?.appendingPathComponent("protreplay").path }
    let candidates = beside + ["debug", "release"].map { repoRoot.appendingPathComponent(".build/\($0)/protreplay").path }
    guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw XCTSkip("protreplay binary not built")
    }
    return path
}

/// Runs the built `protreplay` binary.
func runTool(_ args: [String], stdin: Data? = nil) throws -> (status: Int32, out: String, err: String) {
    let r = try ProcessRunner.run(try toolPath(), args, stdin: stdin)
    return (r.status, r.out, r.err)
}

func report(_ args: [String]) throws -> [String: Any] {
    let cmd = try Report.parse(args)
    let text = try cmd.makeReport().json
    return try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
}

func value(_ json: [String: Any], _ path: String) -> Any? { JSONSubset.value(json, path) }

final class RealI386TraceTests: XCTestCase {
    /// Independent counts, from the decompressed trace (`lz4 -dc trace.lz4 > t`):
    ///   header:            `# entries-in-buffer/entries-written: 18179/18179   #P:2`
    ///   stack traces:      `grep -c '<stack trace>' t`                                   -> 100
    ///   events:            18799 ring entries - 100 stack-trace entries                   -> 18079
    ///                      (`grep -v '^#' t | grep -v '^ =>' | grep -vc '<stack trace>'`  -> 18079)
    ///   fixmap pushes:     `grep -c '__kmap_local_pfn_prot+0x0' t`                         -> 2522
    ///   kmap_local_page:   `grep -c 'kmap_local_page: (__kmap_local_page_prot+0x0' t`     -> 2740 (2522 highmem + 218 lowmem)
    ///   kmap_high:         `grep -c ' kmap_high: (kmap_high+0x0' t`                        -> 16
    ///   kunmap_high:       `grep -c 'kunmap_high: (kunmap_high+0x0' t`                     -> 16
    ///   distinct pkmap slots: `awk '/kmap_high_ret/{print $NF}' t | sort -u | wc -l`       -> 8
    ///   CPUs:              `grep -v '^#' t | grep -v '^ =>' | awk '{print $2}' | sort -u` -> [000] [001]
    func testCountsMatchIndependentCounts() throws {
        let j = try report([i386Trace])
        XCTAssertEqual(value(j, "trace.events") as? Int, 18079)
        XCTAssertEqual(value(j, "trace.stack_traces") as? Int, 100)
        XCTAssertEqual(value(j, "trace.malformed") as? Int, 0)
        XCTAssertEqual(value(j, "trace.lost_events") as? Int, 0)
        XCTAssertEqual(value(j, "trace.cpus") as? Int, 2)
        XCTAssertEqual(value(j, "exposure.granted.by_scope.ctx.windows") as? Int, 2522)
        XCTAssertEqual(value(j, "exposure.granted.by_scope.global.windows") as? Int, 16)
        XCTAssertEqual(value(j, "counters.kmap_local_lowmem") as? Int, 2740 - 2522)
        XCTAssertEqual(value(j, "counters.kunmap_local_lowmem") as? Int, 2740 - 2522)
        XCTAssertEqual(value(j, "counters.pkmap_installs") as? Int, 8)
        XCTAssertEqual(value(j, "anomalies.total") as? Int, 0)
        // events = used + ignored + unmapped + malformed events
        let used = value(j, "trace.events_used") as! Int
        let ignored = value(j, "trace.events_ignored") as! Int
        let unmapped = value(j, "trace.unmapped") as! Int
        XCTAssertEqual(used + ignored + unmapped, 18079)
    }

    func testJSONIsByteIdenticalAcrossRuns() throws {
        let a = try runTool(["report", i386Trace, "--format", "json"])
        let b = try runTool(["report", i386Trace, "--format", "json"])
        XCTAssertEqual(a.status, 0)
        XCTAssertEqual(a.out, b.out)
    }

    func testStdinGivesTheSameNumbers() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: i386Trace))
        let a = try runTool(["report", i386Trace, "--format", "json"])
        let b = try runTool(["report", "-", "--format", "json"], stdin: data)
        XCTAssertEqual(b.status, 0, b.err)
        func strip(_ s: String) -> String { s.split(separator: "\n").filter { !$0.contains("\"path\"") && !$0.contains("\"bytes\"") }.joined(separator: "\n") }
        XCTAssertEqual(strip(a.out), strip(b.out))
    }

    func testTextReportAndWindowsCSV() throws {
        let csv = FileManager.default.temporaryDirectory.appendingPathComponent("w-\(UUID().uuidString).csv").path
        defer { try? FileManager.default.removeItem(atPath: csv) }
        let r = try runTool(["report", i386Trace, "--model", "highmem", "--windows", csv])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("# model:    highmem"))
        XCTAssertTrue(r.out.contains("scope ctx"))
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\r\n")
        XCTAssertEqual(rows.first.map(String.init), WindowCSVWriter.header)
        // 2522 + 16 granted, 2522 + 8 effective windows (no preemption inside a kmap_local in this trace).
        XCTAssertEqual(rows.count - 1, 2522 + 16 + 2522 + 8)
    }

    func testEventsSubcommandListsEveryName() throws {
        let r = try runTool(["events", i386Trace])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("kmap_local_pfn"))
        XCTAssertTrue(r.out.contains("KMAP(kmap_local_pfn)"))
        XCTAssertTrue(r.out.contains("unmapped"))
        XCTAssertTrue(r.out.contains("# 18079 events, 100 stack traces"))
    }
}

final class BadInputTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("protreplay-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func file(_ name: String, _ text: String) -> String {
        let p = dir.appendingPathComponent(name).path
        _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }

    let good = "            init-1       [001] .....     9.884342: tracing_mark_write: a\n"

    func testMalformedLineIsCountedByDefaultAndFatalInStrict() throws {
        // After an event that is not a message (a line after a tracing_mark_write could continue its text).
        let fault = "            init-1       [001] .....     9.884343: page_fault_user: address=0x1000 ip=0x401000 error_code=0x6\n"
        let p = file("m.txt", fault + "garbage line here\n" + good)
        let lenient = try runTool(["report", p, "--format", "json"])
        XCTAssertEqual(lenient.status, 0)
        let j = try JSONSerialization.jsonObject(with: Data(lenient.out.utf8)) as? [String: Any] ?? [:]
        XCTAssertEqual(value(j, "trace.malformed") as? Int, 1)
        XCTAssertEqual((value(j, "trace.malformed_examples") as? [[String: Any]])?.first?["line"] as? Int, 2)
        let strict = try runTool(["report", p, "--strict"])
        XCTAssertNotEqual(strict.status, 0)
        XCTAssertTrue(strict.err.contains("\(p):2:"), strict.err)
        XCTAssertTrue(strict.err.contains("garbage line here"), strict.err)
    }

    func testTruncatedLZ4() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: i386Trace))
        let p = dir.appendingPathComponent("cut.lz4").path
        _ = FileManager.default.createFile(atPath: p, contents: data.prefix(data.count / 2))
        let r = try runTool(["report", p])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("truncated LZ4 frame"), r.err)
        XCTAssertTrue(r.err.contains(p), r.err)
    }

    func testEmptyFile() throws {
        let p = file("empty.txt", "")
        let r = try runTool(["report", p])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.err, "protreplay: error: \(p): empty input: no trace events to read\n")
    }

    func testHeaderOnlyFile() throws {
        let p = file("h.txt", "# tracer: nop\n#\n")
        let r = try runTool(["report", p])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("no trace events found"), r.err)
    }
}
