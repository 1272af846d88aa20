import XCTest
import TestSupport
import Foundation
@testable import protreplay
import Reports

/// HTML, CSV, compare, what-if, CI gate, merge and progress, end to end. Expected numbers are worked by
/// hand from the scenario traces (their README.md / expected.json), never taken from the tool.
final class ReportingTests: XCTestCase {
    static let preempt = repoRoot.appendingPathComponent("SampleTraces/scenarios/highmem-preempt-mid-window/trace.txt").path
    static let pksTrace = repoRoot.appendingPathComponent("SampleTraces/scenarios/pks-kmap-global-unsupported/trace.txt").path

    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("protreplay-reporting-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    /// The preempt scenario with 125's `kunmap_local` 100 us later (9.000600 -> 9.000700, the final
    /// mark 9.000700 -> 9.000800): granted A = 600,000, granted total 670,000 (+17.5%);
    /// effective A2 = 9,000,700,000 - 9,000,500,000 = 200,000, effective total 470,000.
    func regressionTrace() throws -> String {
        var text = try String(contentsOfFile: Self.preempt, encoding: .utf8)
        text = text.replacingOccurrences(of: "9.000700: tracing_mark_write", with: "9.000800: tracing_mark_write")
        text = text.replacingOccurrences(of: "9.000600: kunmap_local", with: "9.000700: kunmap_local")
        let p = path("regression.txt")
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    /// The preempt scenario with task 125 named `<script>alert(1)</script>` and task 232 named `ev,il"q`.
    func hostileTrace() throws -> String {
        var text = try String(contentsOfFile: Self.preempt, encoding: .utf8)
        text = text.replacingOccurrences(of: "wl-done", with: "<script>alert(1)</script>")
        text = text.replacingOccurrences(of: "wl-pkey", with: "ev,il\"q")
        let p = path("hostile.txt")
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    // MARK: HTML in a browser

    func testHTMLOfScenarioRendersInChromiumWithTheHandWorkedCounts() throws {
        let html = path("preempt.html")
        try Report.parse([Self.preempt, "--arch", "i386", "--format", "html", "-o", html, "--quiet"]).run()
        let page = try String(contentsOfFile: html, encoding: .utf8)
        // Self-contained: no scripts, nothing fetched.
        XCTAssertFalse(page.contains("<script"))
        XCTAssertFalse(page.contains("http://") && page.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http://"))
        XCTAssertFalse(page.contains("https://"))
        let (dom, console) = try Chromium.dumpDOM(html)
        XCTAssertEqual(console, [], "console errors: \(console)")
        // README: granted 2 windows, 570,000 ns, max 500,000, p50 70,000, p99 500,000;
        // effective 3 windows, 370,000 ns, max 200,000, p50 100,000, p99 200,000; overexposure -200,000.
        let expected: [(String, String)] = [
            ("highmem.exposure.granted.windows", "2"), ("highmem.exposure.granted.total_ns", "570.000 us"),
            ("highmem.exposure.granted.max_ns", "500.000 us"), ("highmem.exposure.granted.p50_ns", "70.000 us"),
            ("highmem.exposure.granted.p99_ns", "500.000 us"),
            ("highmem.exposure.effective.windows", "3"), ("highmem.exposure.effective.total_ns", "370.000 us"),
            ("highmem.exposure.effective.max_ns", "200.000 us"), ("highmem.exposure.effective.p50_ns", "100.000 us"),
            ("highmem.exposure.effective.p99_ns", "200.000 us"), ("highmem.exposure.overexposure_ns", "−200.000 us"),
            ("highmem.unprotected_accesses.total", "0"), ("highmem.anomalies.total", "0"),
            ("highmem.counters.kmap_local_pushes", "2"), ("trace.events", "14"), ("trace.events_used", "13"),
        ]
        for (id, text) in expected {
            XCTAssertEqual(Chromium.text(ofID: id, in: dom), text, id)
        }
        XCTAssertTrue(dom.contains("<svg"), "charts are inline SVG")
    }

    func testHostileCommIsEscapedInHTMLAndQuotedInCSV() throws {
        let trace = try hostileTrace()
        let html = path("hostile.html"), windows = path("hostile.csv")
        try Report.parse([trace, "--arch", "i386", "--model", "highmem", "--format", "html", "-o", html, "--windows", windows, "--quiet"]).run()
        let page = try String(contentsOfFile: html, encoding: .utf8)
        XCTAssertTrue(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertFalse(page.contains("<script"))
        XCTAssertTrue(page.contains("ev,il&quot;q"))
        if let (dom, console) = try? Chromium.dumpDOM(html) {
            XCTAssertEqual(console, [])
            XCTAssertFalse(dom.contains("<script"), "no script element made it into the DOM")
            XCTAssertTrue(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "shown as text")
        }
        // CSV: every row parses to 19 fields; 125's three windows (granted A, effective A1 and A2) carry the
        // comm verbatim; 232's two (granted and effective B) carry `ev,il"q`, quoted as "ev,il""q".
        let csv = try String(contentsOfFile: windows, encoding: .utf8)
        XCTAssertTrue(csv.contains(",\"ev,il\"\"q\","))
        let rows = try CSVParse.rows(csv)
        XCTAssertEqual(rows.count, 1 + 5)
        XCTAssertTrue(rows.allSatisfy { $0.count == 19 })
        XCTAssertEqual(rows.filter { $0[7] == "<script>alert(1)</script>" }.count, 3)
        XCTAssertEqual(rows.filter { $0[7] == "ev,il\"q" }.count, 2)
    }

    func testAccessesCSVHasOneRowPerUnprotectedAccess() throws {
        // pks-kmap-handoff-strict/expected.json: 2 accesses, global_kmap 1 and handoff 1, both blocked.
        let csvPath = path("accesses.csv")
        let dir = repoRoot.appendingPathComponent("SampleTraces/scenarios/pks-kmap-handoff-strict")
        try Report.parse([dir.appendingPathComponent("trace.txt").path, "--model", "pks", "--kmap-global", "unsupported",
                          "--mode", "strict", "--arch", "i386", "--accesses", csvPath, "--quiet", "-o", path("r.txt")]).run()
        let rows = try CSVParse.rows(try String(contentsOfFile: csvPath, encoding: .utf8))
        XCTAssertEqual(rows.first, AccessCSVWriter.header.split(separator: ",").map(String.init))
        XCTAssertEqual(rows.count, 1 + 2)
        XCTAssertEqual(rows.dropFirst().map { $0[10] }.sorted(), ["global_kmap", "handoff"])
        XCTAssertEqual(rows.dropFirst().map { $0[11] }, ["blocked", "blocked"])
    }

    // MARK: compare

    func compareJSON(_ args: [String]) throws -> [String: Any] {
        let cmd = try Compare.parse(args + ["--quiet"])
        let inputs = try cmd.makeInputs()
        return try JSONSerialization.jsonObject(with: Data(CompareReport.json(inputs, CompareReport.comparison(inputs)).utf8)) as! [String: Any]
    }

    func testCompareOfATraceWithItselfAndWithItsSavedReportShowsZeroDeltas() throws {
        let json = path("preempt.json")
        try Report.parse([Self.preempt, "--arch", "i386", "--format", "json", "-o", json, "--quiet"]).run()
        let c = try compareJSON(["a=" + Self.preempt, "b=" + Self.preempt, json, "--arch", "i386"])
        let groups = c["models"] as? [[String: Any]] ?? []
        var rows = c["trace"] as? [[String: Any]] ?? []
        for g in groups { rows += g["metrics"] as? [[String: Any]] ?? [] }
        XCTAssertGreaterThan(rows.count, 20)
        for r in rows {
            XCTAssertEqual(r["deltas"] as? [Int64], [0, 0, 0], r["key"] as? String ?? "?")
            XCTAssertEqual(r["changed"] as? Bool, false)
        }
        for g in groups {
            XCTAssertEqual((g["shifted"] as? [Any])?.count, 0)
            XCTAssertEqual(g["sites_appeared"] as? [[String]], [[], [], []])
        }
    }

    func testCompareShowsTheHandWorkedRegression() throws {
        let c = try compareJSON(["before=" + Self.preempt, "after=" + (try regressionTrace()), "--arch", "i386"])
        let group = (c["models"] as? [[String: Any]])?.first ?? [:]
        let metrics = group["metrics"] as? [[String: Any]] ?? []
        func row(_ k: String, _ field: String = "values") -> [Int64]? { metrics.first { $0["key"] as? String == k }?[field] as? [Int64] }
        XCTAssertEqual(row("exposure.granted.total_ns"), [570_000, 670_000])
        XCTAssertEqual(row("exposure.granted.total_ns", "deltas"), [0, 100_000])
        // 670,000 / 570,000 = 1.17543... -> 1175 permille.
        XCTAssertEqual(row("exposure.granted.total_ns", "ratios_permille"), [1000, 1175])
        XCTAssertEqual(row("exposure.effective.total_ns"), [370_000, 470_000])
        // Granted durations [70,000, 500,000] -> [70,000, 600,000]: p99 moves, p50 does not.
        XCTAssertEqual(row("exposure.granted.p99_ns"), [500_000, 600_000])
        XCTAssertEqual(row("exposure.granted.p50_ns"), [70_000, 70_000])
        let shifted = (group["shifted"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
        XCTAssertTrue(shifted.contains("exposure.granted"))
        // Text output: aligned columns with the delta.
        let inputs = try Compare.parse(["before=" + Self.preempt, "after=" + (try regressionTrace()), "--arch", "i386", "--quiet"]).makeInputs()
        let text = CompareReport.text(inputs, CompareReport.comparison(inputs))
        let line = text.split(separator: "\n").first { $0.hasPrefix("  exposure.granted.total_ns ") }.map(String.init) ?? ""
        XCTAssertTrue(line.contains("570.000 us") && line.contains("670.000 us") && line.contains("+100.000 us") && line.contains("x1.175"), line)
        // HTML comparison renders in the browser.
        let html = path("compare.html")
        try Output.write(CompareReport.html(inputs, CompareReport.comparison(inputs)), to: html)
        if let (dom, console) = try? Chromium.dumpDOM(html) {
            XCTAssertEqual(console, [])
            XCTAssertEqual(Chromium.text(ofID: "g0.exposure.granted.total_ns.delta.B", in: dom), "+100.000 us")
        }
    }

    // MARK: CI gate

    func testGateTripsOnTheConstructedRegressionAndNotOtherwise() throws {
        let regression = try regressionTrace()
        // Baseline granted total 570,000: +10% -> limit 627,000; 670,000 > 627,000 trips.
        let tripped = try runBuiltTool(["compare", Self.preempt, regression, "--arch", "i386", "--fail-if", "exposure.granted.total_ns>+10%", "-o", path("c.txt")])
        XCTAssertEqual(tripped.status, 3, tripped.err)
        let lines = tripped.err.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, tripped.err)
        XCTAssertTrue(tripped.err.contains("670000") && tripped.err.contains("627000"), tripped.err)
        // +20% -> 684,000: not tripped.
        let fine = try runBuiltTool(["compare", Self.preempt, regression, "--arch", "i386", "--fail-if", "exposure.granted.total_ns>+20%", "-o", path("c.txt")])
        XCTAssertEqual(fine.status, 0, fine.err)
        // The trace against itself never trips a relative gate.
        let same = try runBuiltTool(["compare", Self.preempt, Self.preempt, "--arch", "i386", "--fail-if", "exposure.granted.total_ns>+0%",
                                "--fail-if", "exposure.effective.p99_ns>+0", "-o", path("c.txt")])
        XCTAssertEqual(same.status, 0, same.err)
        // report: absolute, and relative to a saved baseline.
        let base = path("base.json")
        XCTAssertEqual(try runBuiltTool(["report", Self.preempt, "--arch", "i386", "--format", "json", "-o", base]).status, 0)
        let abs = try runBuiltTool(["report", regression, "--arch", "i386", "-o", path("r.txt"), "--fail-if", "exposure.effective.total_ns>=470000"])
        XCTAssertEqual(abs.status, 3, abs.err)
        let rel = try runBuiltTool(["report", regression, "--arch", "i386", "-o", path("r.txt"), "--baseline", base,
                               "--fail-if", "exposure.effective.total_ns>+100us"])   // 370,000 + 100,000 = 470,000: not above
        XCTAssertEqual(rel.status, 0, rel.err)
        let rel2 = try runBuiltTool(["report", regression, "--arch", "i386", "-o", path("r.txt"), "--baseline", base,
                                "--fail-if", "exposure.effective.total_ns>+99.999us"])
        XCTAssertEqual(rel2.status, 3, rel2.err)
        let bad = try runBuiltTool(["report", regression, "--arch", "i386", "--fail-if", "exposure.effective.total_ns>+10%"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("--baseline"), bad.err)
    }

    // MARK: what-if

    /// One pass over the shared trace of the five pks-kmap-* scenarios under their five configurations must
    /// reproduce each scenario's hand-worked expected.json.
    func testWhatIfConfigurationsInOnePassMatchEachScenario() throws {
        let scenarios = ["pks-kmap-global-unsupported": "kmap-global=unsupported,mode=relaxed",
                         "pks-kmap-global-unprotect": "kmap-global=global-unprotect",
                         "pks-kmap-global-flag-fault": "flag-fault",
                         "pks-kmap-handoff-silent": "mode=silent",
                         "pks-kmap-handoff-strict": "strict"]
        let names = scenarios.keys.sorted()
        var args = [Self.pksTrace, "--arch", "i386", "--quiet"]
        for n in names { args += ["--config", scenarios[n]!] }
        let inputs = try Compare.parse(args).makeInputs()
        XCTAssertEqual(inputs.count, names.count)
        for (i, n) in names.enumerated() {
            let dir = repoRoot.appendingPathComponent("SampleTraces/scenarios/\(n)")
            let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("expected.json")))
            let actual = try JSONSerialization.jsonObject(with: Data(inputs[i].report.json.utf8))
            var mismatches: [String] = []
            subsetMismatches(expected, actual, path: "", into: &mismatches)
            XCTAssertTrue(mismatches.isEmpty, "\(n) as --config \(scenarios[n]!):\n  " + mismatches.joined(separator: "\n  "))
        }
    }

    // MARK: merge

    func testMergeFoldsReportsWithHandWorkedPercentiles() throws {
        let a = path("a.json"), b = path("b.json"), m = path("m.json")
        try Report.parse([Self.preempt, "--arch", "i386", "--format", "json", "-o", a, "--quiet"]).run()
        try Report.parse([try regressionTrace(), "--arch", "i386", "--format", "json", "-o", b, "--quiet"]).run()
        try Merge.parse([a, b, "-o", m]).run()
        let j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: m))) as! [String: Any]
        // granted [70,000, 500,000] + [70,000, 600,000]: 4 windows, 1,240,000 ns, max 600,000;
        // sorted [70k, 70k, 500k, 600k]: p50 #ceil(2)=#2 = 70,000, p99 #ceil(3.96)=#4 = 600,000.
        XCTAssertEqual(JSONSubset.value(j, "exposure.granted.windows") as? Int64, 4)
        XCTAssertEqual(JSONSubset.value(j, "exposure.granted.total_ns") as? Int64, 1_240_000)
        XCTAssertEqual(JSONSubset.value(j, "exposure.granted.max_ns") as? Int64, 600_000)
        XCTAssertEqual(JSONSubset.value(j, "exposure.granted.p50_ns") as? Int64, 70_000)
        XCTAssertEqual(JSONSubset.value(j, "exposure.granted.p99_ns") as? Int64, 600_000)
        // effective [200k, 100k, 70k] + [200k, 200k, 70k]: 6 windows, 840,000; sorted [70,70,100,200,200,200]:
        // p50 #3 = 100,000, p99 #6 = 200,000; closed by sched_out 2, unmap 4.
        XCTAssertEqual(JSONSubset.value(j, "exposure.effective.windows") as? Int64, 6)
        XCTAssertEqual(JSONSubset.value(j, "exposure.effective.total_ns") as? Int64, 840_000)
        XCTAssertEqual(JSONSubset.value(j, "exposure.effective.p50_ns") as? Int64, 100_000)
        XCTAssertEqual(JSONSubset.value(j, "exposure.effective.p99_ns") as? Int64, 200_000)
        XCTAssertEqual(JSONSubset.value(j, "exposure.effective.by_close_cause.sched_out") as? Int64, 2)
        XCTAssertEqual(JSONSubset.value(j, "exposure.effective.by_close_cause.unmap") as? Int64, 4)
        XCTAssertEqual(JSONSubset.value(j, "exposure.overexposure_ns") as? Int64, 840_000 - 1_240_000)
        XCTAssertEqual(JSONSubset.value(j, "counters.kmap_local_pushes") as? Int64, 4)
        XCTAssertEqual(JSONSubset.value(j, "trace.events") as? Int64, 28)
        XCTAssertEqual(JSONSubset.value(j, "merged.reports") as? Int64, 2)
        // Merging the merged report with nothing else changes no number.
        let m2 = path("m2.json")
        try Merge.parse([m, "-o", m2]).run()
        let j2 = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: m2))) as! [String: Any]
        XCTAssertEqual(j2["exposure"] as? NSDictionary, j["exposure"] as? NSDictionary)
    }

    // MARK: progress

    func testProgressLineAndSilenceWhenNotATerminal() throws {
        // 50 MiB of 100 MiB after 2 s: ETA 2 s; 1,000,000 events in 2 s = 500 k events/s.
        XCTAssertEqual(Progress.line(label: "x", bytes: 50 << 20, total: 100 << 20, events: 1_000_000, elapsed: 2),
                       "x: 50.0 MiB / 100.0 MiB (50%)  ETA 2 s  500 k events/s")
        XCTAssertEqual(Progress.line(label: "x", bytes: 3 << 20, total: nil, events: 3_000_000, elapsed: 1),
                       "x: 3.0 MiB  3.0 M events/s")
        XCTAssertNil(Progress(quiet: true, total: 1, label: "x", force: true))
        let r = try runBuiltTool(["report", i386Trace, "-o", path("r.txt")])
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.err, "", "stderr is a pipe here: no progress")
    }
}

/// Every key `expected` gives must equal `actual`'s (objects compared on the keys given), as in the golden scenarios.
func subsetMismatches(_ expected: Any, _ actual: Any?, path: String, into out: inout [String]) {
    out += JSONSubset.mismatches(expected, actual, path: path)
}

/// Runs the `protreplay` built next to this test bundle (whatever the scratch path), else `runTool`'s.
func runBuiltTool(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try runTool(args) }

/// Headless Chromium (Debian `chromium`): the DOM after load, and console errors.
enum Chromium {
    static var executable: String? {
        for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] where FileManager.default.isExecutableFile(atPath: p) { return p }
        return nil
    }

    /// - Throws: `XCTSkip` when chromium is not installed (scripts/install-deps installs it).
    static func dumpDOM(_ htmlPath: String) throws -> (dom: String, consoleErrors: [String]) {
        guard let exe = executable else { throw XCTSkip("chromium is not installed (scripts/install-deps installs it); skipping the browser check") }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("protreplay-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let r = try ProcessRunner.run(exe, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile.path)",
                                            "--enable-logging=stderr", "--v=0", "--dump-dom", URL(fileURLWithPath: htmlPath).absoluteString])
        let console = r.err.split(separator: "\n").filter { $0.contains("CONSOLE") || $0.contains("Uncaught") }.map(String.init)
        return (r.out, console)
    }

    /// Text content of the element with this id in a dumped DOM (the elements carrying numbers hold only text).
    static func text(ofID id: String, in dom: String) -> String? {
        guard let r = dom.range(of: "id=\"\(id)\"") else { return nil }
        guard let gt = dom[r.upperBound...].firstIndex(of: ">") else { return nil }
        let rest = dom[dom.index(after: gt)...]
        guard let lt = rest.firstIndex(of: "<") else { return nil }
        return String(rest[..<lt]).replacingOccurrences(of: "&amp;", with: "&")
    }
}

/// A strict RFC 4180 reader for the tests.
enum CSVParse {
    struct Bad: Error {}

    static func rows(_ s: String) throws -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var chars = Array(s)
        var i = 0
        var fieldStarted = false
        while i < chars.count {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    if i + 1 < chars.count && chars[i + 1] == "\"" { field.append("\""); i += 2; continue }
                    quoted = false
                } else { field.append(c) }
                i += 1
                continue
            }
            switch c {
            case "\"":
                guard !fieldStarted && field.isEmpty else { throw Bad() }
                quoted = true
                fieldStarted = true
            case ",":
                row.append(field); field = ""; fieldStarted = false
            case "\r\n", "\n":
                row.append(field); field = ""; fieldStarted = false
                rows.append(row); row = []
            default:
                field.append(c)
                fieldStarted = true
            }
            i += 1
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        chars = []
        return rows
    }
}
