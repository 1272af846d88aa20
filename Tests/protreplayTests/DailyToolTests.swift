import XCTest
import Foundation
@testable import protreplay
import Reports
import TestSupport

/// Issue 16: filters, phases, `protreplay windows`, and the conventions of perf and trace-cmd.
///
/// Expected values are independent counts over the decompressed i386 capture (`lz4 -dc trace.lz4 > t`;
/// `E` = event lines: `grep -v '^#' t | grep -v '^ *=>' | grep -v '<stack trace>'`). In this capture every
/// kmap_local slot is pushed and popped by one task on one CPU, so the granted ctx windows of a task, CPU
/// or time range are the `__kmap_local_pfn_prot+0x0` entries it has.
final class DailyToolTests: XCTestCase {
    func json(_ args: [String]) throws -> [String: Any] {
        let r = try runTool(args + ["--format", "json"])
        XCTAssertEqual(r.status, 0, r.err)
        return try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
    }

    // MARK: Filters

    /// `E | awk '{n=split($1,a,"-"); if (a[n]=="1") c++} END{print c}'`                -> 414 events of pid 1
    /// `... if (a[n]=="1") print}' | grep -c '__kmap_local_pfn_prot+0x0'`               -> 65 slots
    func testPidFilterMatchesAwkCounts() throws {
        let j = try json(["report", i386Trace, "--model", "highmem", "--pid", "1"])
        XCTAssertEqual(value(j, "filter.events_matched") as? Int, 414)
        XCTAssertEqual(value(j, "trace.events") as? Int, 18079, "trace.events still counts the whole trace")
        XCTAssertEqual(value(j, "exposure.granted.by_scope.ctx.windows") as? Int, 65)
        XCTAssertEqual(value(j, "exposure.granted.windows") as? Int, 65)
        XCTAssertEqual(value(j, "filter.description") as? String, "pid 1")
    }

    /// `E | awk '$2=="[001]"' | wc -l` -> 6938; with `__kmap_local_pfn_prot+0x0` -> 929; kmap_high on [001] -> 0.
    func testCPUFilterMatchesAwkCounts() throws {
        let j = try json(["report", i386Trace, "--model", "highmem", "--cpu", "1"])
        XCTAssertEqual(value(j, "filter.events_matched") as? Int, 6938)
        XCTAssertEqual(value(j, "exposure.granted.by_scope.ctx.windows") as? Int, 929)
        XCTAssertEqual(value(j, "exposure.granted.windows") as? Int, 929)
        // A range and a list select the same.
        let k = try json(["report", i386Trace, "--model", "highmem", "--cpu", "1-1,1"])
        XCTAssertEqual(value(k, "filter.events_matched") as? Int, 6938)
    }

    /// Comm = the TASK-PID column without its last `-PID`:
    /// `E | awk '{n=split($1,a,"-"); c=substr($1,1,length($1)-length(a[n])-1); if (c=="wl-sendfile") print}'` -> 2008 events,
    /// of which `__kmap_local_pfn_prot+0x0` -> 263.
    func testCommFilterMatchesAwkCounts() throws {
        let j = try json(["report", i386Trace, "--model", "highmem", "--comm", "wl-sendfile"])
        XCTAssertEqual(value(j, "filter.events_matched") as? Int, 2008)
        XCTAssertEqual(value(j, "exposure.granted.windows") as? Int, 263)
        XCTAssertEqual(value(j, "anomalies.total") as? Int, 0, "anomalies name no task: none with --comm")
    }

    /// The fault phase's markers are at 7.131258 (line 1341) and 7.137043 (line 1795):
    /// `E | awk '{ts=$4; sub(":","",ts); if (ts+0 >= 7.131258 && ts+0 <= 7.137043) c++} END{print c}'` -> 455;
    /// `awk '/wl phase fault$/{on=1} /wl phase fault done/{on=0} on && /__kmap_local_pfn_prot\+0x0/{c++}' t` -> 73,
    /// and no slot is open across either marker, so clipping changes no window.
    func testTimeFilterMatchesAwkCounts() throws {
        let j = try json(["report", i386Trace, "--model", "highmem", "--time", "7.131258,7.137043"])
        XCTAssertEqual(value(j, "filter.events_matched") as? Int, 455)
        XCTAssertEqual(value(j, "exposure.granted.windows") as? Int, 73)
        XCTAssertEqual(value(j, "exposure.granted.censored") as? Int, 0)
    }

    /// Clipping: a range that starts inside the trace cuts the censored pkmap windows still open at the end
    /// (they open at 7.263281 and later; the trace ends at 7.367019) to END, and they are no longer censored there.
    func testTimeFilterClipsWindowsToTheRange() throws {
        let r = try runTool(["windows", i386Trace, "--model", "highmem", "--time", "7.3,7.31", "--format", "csv"])
        XCTAssertEqual(r.status, 0, r.err)
        let rows = try CSVParse.rows(r.out).dropFirst()
        XCTAssertFalse(rows.isEmpty)
        for row in rows {
            XCTAssertGreaterThanOrEqual(UInt64(row[2])!, 7_300_000_000)
            XCTAssertLessThanOrEqual(UInt64(row[3])!, 7_310_000_000)
        }
    }

    func testEventsSubcommandCountsMatchingEvents() throws {
        let r = try runTool(["events", i386Trace, "--pid", "1"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("414 of 18079 events matched"), r.out)
    }

    func testBadFilterValuesAreUsageErrors() throws {
        for bad in [["--cpu", "a-b"], ["--time", "5"], ["--time", "9,3"], ["--pid", "-1"]] {
            let r = try runTool(["report", i386Trace] + bad)
            XCTAssertEqual(r.status, 2, "\(bad): \(r.err)")
        }
    }

    // MARK: Phases

    /// `grep -c 'tracing_mark_write: wl phase' t` -> 22 markers: 11 phases, each opened and closed once.
    /// fault: 7.137043 - 7.131258 = 5.785 ms, 73 slots (above); kmapfile (lines 15672..18794): 400 slots, 0 kmap_high.
    func testByPhaseMatchesAwkCounts() throws {
        let j = try json(["report", i386Trace, "--model", "highmem", "--by-phase"])
        let segments = value(j, "phases.segments") as! [[String: Any]]
        XCTAssertEqual(segments.count, 11)
        XCTAssertEqual(segments.first?["start_line"] as? Int, 1341)
        XCTAssertEqual(segments.first?["end_line"] as? Int, 1795)
        let phases = value(j, "by_phase") as! [[String: Any]]
        let fault = phases.first { $0["name"] as? String == "fault" }!
        XCTAssertEqual(fault["span_ns"] as? Int, 5_785_000)
        XCTAssertEqual(value(fault, "granted.windows") as? Int, 73)
        let kmapfile = phases.first { $0["name"] as? String == "kmapfile" }!
        XCTAssertEqual(value(kmapfile, "granted.windows") as? Int, 400)
        // --phase selects the same windows as the time range of its markers.
        let only = try json(["report", i386Trace, "--model", "highmem", "--phase", "fault"])
        XCTAssertEqual(value(only, "exposure.granted.windows") as? Int, 73)
    }

    /// Marker text is untrusted: shown through `clean` in text (no control characters) and escaped in HTML.
    func testHostileMarkerIsEscaped() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("phase-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("t.txt").path
        let lines = [
            "# tracer: nop",
            "            wl-1     [000] .....     1.000000: tracing_mark_write: wl phase <b>x</b>\u{1b}[2J",
            "            wl-1     [000] .....     1.000010: tracing_mark_write: wl phase <b>x</b>\u{1b}[2J done",
        ]
        try (lines.joined(separator: "\n") + "\n").write(toFile: trace, atomically: true, encoding: .utf8)
        let text = try runTool(["report", trace, "--model", "highmem", "--by-phase"])
        XCTAssertEqual(text.status, 0, text.err)
        XCTAssertFalse(text.out.contains("\u{1b}"))
        XCTAssertTrue(text.out.contains("<b>x</b>?[2J"))
        let html = dir.appendingPathComponent("r.html").path
        let h = try runTool(["report", trace, "--model", "highmem", "--by-phase", "--format", "html", "-o", html])
        XCTAssertEqual(h.status, 0, h.err)
        XCTAssertFalse(try String(contentsOfFile: html, encoding: .utf8).contains("<b>x"))
    }

    // MARK: protreplay windows

    /// 2522 + 16 granted and 2522 + 8 effective windows (EndToEndTests); the first slot is pushed by
    /// `kmap_local_page` at line 43 (7.113319) and popped at line 47 (7.113334): `sed -n 43,47p t`.
    func testWindowsSubcommand() throws {
        let csv = try runTool(["windows", i386Trace, "--model", "highmem", "--format", "csv"])
        XCTAssertEqual(csv.status, 0, csv.err)
        let rows = try CSVParse.rows(csv.out)
        XCTAssertEqual(rows.first?.joined(separator: ","), WindowTable.csvHeader)
        XCTAssertEqual(rows.count - 1, 2522 + 16 + 2522 + 8)
        let first = rows[1]
        XCTAssertEqual(Array(first[2...6]), ["7113319000", "7113334000", "15000", "43", "47"])
        XCTAssertEqual(first[9], "init")
        // Longest first, limited.
        let top = try runTool(["windows", i386Trace, "--model", "highmem", "--sort", "duration", "--limit", "3", "--format", "json"])
        let doc = try JSONSerialization.jsonObject(with: Data(top.out.utf8)) as! [String: Any]
        let ws = doc["windows"] as! [[String: Any]]
        XCTAssertEqual(ws.count, 3)
        XCTAssertEqual(doc["total"] as? Int, 5068)
        let durations = ws.map { $0["duration_ns"] as! Int }
        XCTAssertEqual(durations, durations.sorted(by: >))
        // Closed by the trace end: no closing line.
        XCTAssertNil(ws[0]["close_line"])
        XCTAssertEqual(ws[0]["close_cause"] as? String, "trace_end")
        let text = try runTool(["windows", i386Trace, "--model", "highmem", "--limit", "1"])
        XCTAssertTrue(text.out.contains("43..47"), text.out)
    }

    /// The report's windows CSV gains the lines too, and leaves no -1 placeholder.
    func testWindowsCSVHasLinesAndNoPlaceholders() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("w-\(UUID().uuidString).csv").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try runTool(["report", i386Trace, "--model", "highmem", "--windows", path, "-o", "/dev/null"])
        XCTAssertEqual(r.status, 0, r.err)
        let rows = try CSVParse.rows(try String(contentsOfFile: path, encoding: .utf8))
        XCTAssertEqual(rows[0].suffix(2), ["open_line", "close_line"])
        XCTAssertEqual(Array(rows[1].suffix(2)), ["43", "47"])
        XCTAssertFalse(rows.dropFirst().contains { $0[6] == "-1" || $0[9] == "-1" })
    }

    // MARK: Conventions

    func testVersion() throws {
        let r = try runTool(["--version"])
        XCTAssertEqual(r.status, 0)
        // `protreplay 0.16.0 (commit 1a2b3c4d5e6f)`: the commit of the checkout it was built from.
        let line = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(line.hasPrefix("protreplay " + ToolVersionForTests.version + " (commit "), line)
        let j = try json(["report", i386Trace, "--model", "highmem"])
        XCTAssertEqual(value(j, "tool.version") as? String, ToolVersionForTests.version)
        XCTAssertEqual(value(j, "tool.commit") as? String, line.split(separator: " ").last.map { String($0.dropLast()) })
    }

    /// docs/fleet.md: 2 for bad input and bad usage, 3 for a tripped gate; checked before the replay.
    func testExitStatuses() throws {
        let notATrace = FileManager.default.temporaryDirectory.appendingPathComponent("nt-\(UUID().uuidString).txt").path
        try "hello\nworld\n".write(toFile: notATrace, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: notATrace) }
        let cases: [([String], Int32)] = [
            (["report", notATrace], 2),
            (["report", i386Trace, "--model", ""], 2),
            (["report", i386Trace, "--model", "highmem", "--mode", "strict"], 2),
            (["report", i386Trace, "--fail-if", "no.such.key>0"], 2),
            (["report", i386Trace, "--fail-if", "nosuchmodel:anomalies.total>0"], 2),
            (["report", i386Trace, "-o", "/nonexistent-dir/r.txt"], 2),
            (["report", i386Trace, "--windows", "/nonexistent-dir/w.csv"], 2),
            (["report", i386Trace, "--no-such-option"], 2),
            (["merge", "--fail-if", "no.such.key>0", "x.json"], 2),
            (["report", i386Trace, "--model", "highmem", "--fail-if", "exposure.granted.windows>0"], 3),
            // A count of 0 is a number, not a missing key.
            (["report", i386Trace, "--model", "highmem", "--fail-if", "unprotected_accesses.total>0"], 0),
        ]
        for (args, status) in cases {
            let r = try runTool(args)
            XCTAssertEqual(r.status, status, "\(args): \(r.err)")
        }
    }

    /// Warnings reach stderr even when the report goes to a file.
    func testWarningsOnStderr() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("warn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("t.txt").path
        let lines = [
            "            wl-1     [000] .....     2.000000: sched_waking: comm=x pid=2 prio=120 target_cpu=000",
            "this line is not a trace line",
            "            wl-1     [000] .....     1.000000: sched_waking: comm=x pid=2 prio=120 target_cpu=000",
        ]
        try (lines.joined(separator: "\n") + "\n").write(toFile: trace, atomically: true, encoding: .utf8)
        let r = try runTool(["report", trace, "--format", "json", "-o", dir.appendingPathComponent("r.json").path])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("1 malformed lines"), r.err)
        XCTAssertTrue(r.err.contains("1 events with a timestamp lower"), r.err)
    }

    func testTopTablesHaveAShareColumn() throws {
        let r = try runTool(["report", i386Trace, "--model", "highmem"])
        XCTAssertTrue(r.out.contains("# Top call sites (effective)"))
        XCTAssertTrue(r.out.contains("# Top tasks (effective)"))
        let shares = r.out.split(separator: "\n", omittingEmptySubsequences: false).drop { !$0.hasPrefix("# Top tasks (granted)") }.dropFirst().prefix { !$0.isEmpty }
        XCTAssertFalse(shares.isEmpty)
        XCTAssertTrue(shares.allSatisfy { $0.contains("%") })
    }

    /// Every example in `protreplay --help` that names a file in this repository runs and exits 0.
    func testHelpExamplesRun() throws {
        let help = try runTool(["--help"]).out + (try runTool(["report", "--help"]).out)
        let examples = help.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("protreplay ") && $0.contains("SampleTraces/") }
        XCTAssertGreaterThanOrEqual(examples.count, 3)
        for e in examples {
            let args = e.split(separator: " ").dropFirst().map(String.init)
            let r = try ProcessRunner.run(try toolPath(), args, cwd: repoRoot.path)
            XCTAssertEqual(r.status, 0, "\(e): \(r.err)")
        }
    }

    func testPercent() {
        XCTAssertEqual(TextReport.percent(1, of: 3), "33.33%")
        XCTAssertEqual(TextReport.percent(3, of: 3), "100.00%")
        XCTAssertEqual(TextReport.percent(1, of: 0), "-")
    }
}

/// The version `--version` prints (ProtReplayKit's `ToolVersion`).
enum ToolVersionForTests { static let version = "0.16.0" }

extension DailyToolTests {
    /// Every `protreplay ...` line in README.md's fenced blocks that names a sample trace runs and exits 0.
    func testReadmeExamplesRun() throws {
        let readme = try String(contentsOf: repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        var inBlock = false
        var examples: [String] = []
        // A line ending in a backslash continues on the next one.
        var lines: [String] = []
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if let last = lines.last, last.hasSuffix("\\") {
                lines[lines.count - 1] = String(last.dropLast()) + " " + line.trimmingCharacters(in: .whitespaces)
            } else {
                lines.append(line)
            }
        }
        for line in lines {
            if line.hasPrefix("```") { inBlock.toggle(); continue }
            var l = line.trimmingCharacters(in: .whitespaces)
            if l.hasPrefix("$ ") { l.removeFirst(2) }
            if inBlock && l.hasPrefix("protreplay ") && l.contains("SampleTraces/") && !l.contains("[") { examples.append(l) }
        }
        XCTAssertGreaterThanOrEqual(examples.count, 5)
        for e in examples {
            let args = e.split(separator: " ", omittingEmptySubsequences: true).dropFirst().map(String.init)
            let r = try ProcessRunner.run(try toolPath(), args, cwd: repoRoot.path)
            XCTAssertEqual(r.status, 0, "\(e): \(r.err)")
        }
    }
}

extension DailyToolTests {
    /// A merge of reports filtered alike says so (events matched add up: 2 × 414); compare shows each filter.
    func testMergeAndCompareCarryTheFilter() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.json").path, b = dir.appendingPathComponent("b.json").path
        for p in [a, b] {
            let r = try runTool(["report", i386Trace, "--model", "highmem", "--pid", "1", "--format", "json", "-o", p])
            XCTAssertEqual(r.status, 0, r.err)
        }
        let m = try runTool(["merge", a, b])
        let doc = try JSONSerialization.jsonObject(with: Data(m.out.utf8)) as! [String: Any]
        XCTAssertEqual(value(doc, "filter.description") as? String, "pid 1")
        XCTAssertEqual(value(doc, "filter.events_matched") as? Int, 828)
        let c = try runTool(["compare", a, i386Trace, "--model", "highmem", "--cpu", "0"])
        XCTAssertEqual(c.status, 0, c.err)
        XCTAssertTrue(c.out.contains("filter: pid 1: 414 of 18079 events matched"), c.out)
        XCTAssertTrue(c.out.contains("filter: cpu 0:"), c.out)
    }
}
