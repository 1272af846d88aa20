import XCTest
import TestSupport
import Foundation
@testable import protreplay
import TraceIngest

/// The same capture read in every format gives the same numbers.
///
/// What is compared, and why:
/// - `trace.events`, `trace.stack_traces` and the count of every event name: exactly.
/// - The model sections `exposure`, `anomalies`, `unprotected_accesses`, `counters` of
///   `report --format json --model highmem,pks,s390pv,directmap`: exactly, except durations
///   (keys ending in `_ns`) when one side has microsecond timestamps (ftrace text, trace-cmd report,
///   default perf script print µs; trace.dat, perf.data and `perf script --ns` have ns): those
///   may differ by 1 µs per window (a window's two ends are each rounded), so a `total_ns` may
///   differ by `windows` µs and every other `_ns` value by 1 µs.
/// - Duration distributions (`distribution.values/counts`) with µs on one side: the number of
///   values counted exactly, every value within 1 µs of one on the other side.
/// - trace-cmd report prints kprobe addresses unresolved (`(ffffffff812d2af0)`), so the probe map
///   maps those kprobes by event name (or through `--kallsyms`): every model is compared.
final class FormatEquivalenceTests: XCTestCase {
    let workload = repoRoot.appendingPathComponent("SampleTraces/real/6.1.0-56-amd64-x86_64-workload").path
    let host = repoRoot.appendingPathComponent("SampleTraces/real/6.18.44-fc-v595-x86_64-host").path
    let allModels = ["--model", "highmem,pks,s390pv,directmap"]
    static let sections = ["exposure", "anomalies", "unprotected_accesses", "counters"]

    // MARK: Helpers

    func json(_ path: String, _ extra: [String] = []) throws -> [String: Any] {
        try report(allModels + ["--format", "json"] + extra + [path])
    }

    func models(_ j: [String: Any]) -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        let list = (j["models"] as? [[String: Any]]) ?? [j]
        for m in list {
            let name = ((m["model"] as? [String: Any])?["name"] as? String) ?? "?"
            out[name] = m
        }
        return out
    }

    /// Differences between two JSON values; `_ns` values within tolerance when `microseconds`.
    func differences(_ a: Any?, _ b: Any?, path: String, microseconds: Bool, windows: Int = 1, into out: inout [String]) {
        if microseconds && path.hasSuffix(".distribution"), let da = a as? [String: Any], let db = b as? [String: Any] {
            // Durations (ns vs µs) fall into different distinct values: compare how many were counted,
            // and every value within 1 µs of the other side's nearest one.
            let ca = (da["counts"] as? [Int] ?? []).reduce(0, +), cb = (db["counts"] as? [Int] ?? []).reduce(0, +)
            if ca != cb { out.append("\(path): \(ca) vs \(cb) values counted") }
            let va = (da["values"] as? [Int]) ?? [], vb = (db["values"] as? [Int]) ?? []
            for v in va where !vb.contains(where: { abs($0 - v) <= 1000 }) { out.append("\(path): value \(v) has no counterpart within 1 µs"); break }
            return
        }
        if let da = a as? [String: Any], let db = b as? [String: Any] {
            let w = (da["windows"] as? Int) ?? (da["count"] as? Int) ?? windows
            for k in Set(da.keys).union(db.keys).sorted() {
                differences(da[k], db[k], path: path + "." + k, microseconds: microseconds, windows: w, into: &out)
            }
        } else if let la = a as? [Any], let lb = b as? [Any] {
            if la.count != lb.count { out.append("\(path): \(la.count) vs \(lb.count) items"); return }
            for (i, (x, y)) in zip(la, lb).enumerated() { differences(x, y, path: "\(path)[\(i)]", microseconds: microseconds, windows: windows, into: &out) }
        } else if let na = a as? NSNumber, let nb = b as? NSNumber, !(a is String) {
            if na == nb { return }
            if microseconds && path.hasSuffix("_ns") {
                let grouped = path.hasSuffix("total_ns") || path.hasSuffix("max_ns") || path.hasSuffix("p50_ns") || path.hasSuffix("p99_ns")
                let tolerance = path.hasSuffix("total_ns") || !grouped ? 1000 * max(1, windows) : 1000
                if abs(na.int64Value - nb.int64Value) <= Int64(tolerance) { return }
            }
            out.append("\(path): \(na) vs \(nb)")
        } else if "\(a ?? "nil")" != "\(b ?? "nil")" {
            out.append("\(path): \(a ?? "nil") vs \(b ?? "nil")")
        }
    }

    /// Every window counted anywhere in a section (`effective.windows` + `granted.windows` + ...): an upper bound.
    func windowCount(_ v: Any?) -> Int {
        if let d = v as? [String: Any] {
            return d.reduce(0) { $0 + ($1.key == "windows" ? ($1.value as? Int ?? 0) : windowCount($1.value)) }
        }
        if let l = v as? [Any] { return l.reduce(0) { $0 + windowCount($1) } }
        return 0
    }

    func assertSameModels(_ a: [String: Any], _ b: [String: Any], models names: [String], microseconds: Bool, _ what: String,
                          file: StaticString = #filePath, line: UInt = #line) {
        let ma = models(a), mb = models(b)
        for name in names {
            guard let x = ma[name], let y = mb[name] else { XCTFail("\(what): model \(name) missing", file: file, line: line); continue }
            for s in FormatEquivalenceTests.sections {
                var diffs: [String] = []
                // Values outside a per-window group (overexposure_ns) add up every window of the section.
                differences(x[s], y[s], path: "\(name).\(s)", microseconds: microseconds, windows: windowCount(x[s]), into: &diffs)
                XCTAssertTrue(diffs.isEmpty, "\(what): \(diffs.prefix(5).joined(separator: "; "))", file: file, line: line)
            }
        }
    }

    func assertSameCounts(_ a: [String: Any], _ b: [String: Any], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        for k in ["trace.events", "trace.stack_traces"] {
            XCTAssertEqual(value(a, k) as? Int, value(b, k) as? Int, "\(what): \(k)", file: file, line: line)
        }
    }

    /// Event-name counts as `protreplay events` lists them (the reader's view, before any mapping).
    func nameCounts(_ path: String) throws -> [String: Int] {
        final class Counter: RawEventSink {
            let names: StringTable
            var counts: [String: Int] = [:]
            init(_ n: StringTable) { names = n }
            func consume(_ e: inout RawEvent) { if e.kind == .event { counts[names.string(e.name), default: 0] += 1 } }
            func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) {}
        }
        let names = StringTable()
        let c = Counter(names)
        try TraceReader(names: names).read(try TraceInput(path: path), into: c) {}
        return c.counts
    }

    func tool(_ args: [String]) -> String? { ProcessRunner.output(args) }

    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("protreplay-equiv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    // MARK: trace.dat, ftrace text, trace-cmd report

    func testTraceDatEqualsFtraceText() throws {
        for dir in [workload, host] {
            let dat = try json(dir + "/trace.dat"), txt = try json(dir + "/trace")
            XCTAssertEqual(value(dat, "input.format") as? String, "trace.dat")
            assertSameCounts(dat, txt, dir)
            XCTAssertEqual(try nameCounts(dir + "/trace.dat"), try nameCounts(dir + "/trace"), dir)
            assertSameModels(dat, txt, models: ["highmem", "pks", "s390pv", "directmap"], microseconds: true, "trace.dat vs ftrace text \(dir)")
        }
        // Independent count: the text header's entries-in-buffer = events + stack traces.
        let dat = try json(workload + "/trace.dat")
        XCTAssertEqual((value(dat, "trace.events") as? Int ?? 0) + (value(dat, "trace.stack_traces") as? Int ?? 0), 5879)
    }

    func testTraceCmdReportEqualsTraceDat() throws {
        let dir = try scratch()
        let dat = try json(workload + "/trace.dat")
        let datCounts = try nameCounts(workload + "/trace.dat")
        // -l prints CPU and flags as one word ("1d..2."), --ts-diff a "(+1178)" after the timestamp.
        for args in [["report"], ["report", "-R"], ["report", "-l"], ["report", "--ts-diff"]] {
            guard let text = tool(["trace-cmd"] + args + [workload + "/trace.dat"]) else { throw XCTSkip("trace-cmd not installed") }
            // Independent count: trace-cmd prints one line per record (events and stack traces), `=>` frame lines and `cpus=`.
            let records = text.split(separator: "\n").filter { !$0.hasPrefix("cpus=") && !$0.hasPrefix("=>") }.count
            let p = dir.appendingPathComponent("report\(args.count).txt").path
            try text.write(toFile: p, atomically: true, encoding: .utf8)
            let rep = try json(p)
            XCTAssertEqual(value(rep, "input.format") as? String, "trace-cmd-report")
            assertSameCounts(rep, dat, "\(args)")
            XCTAssertEqual((value(rep, "trace.events") as? Int ?? 0) + (value(rep, "trace.stack_traces") as? Int ?? 0), records)
            XCTAssertEqual(try nameCounts(p), datCounts, "\(args)")
            // Kprobes print as bare addresses ("handle_mm_fault: (ffffffff812d2af0) vma=..."): each is mapped by its
            // event name, so every model gives the trace.dat's numbers.
            // -R prints stack frames as addresses too (`=> ffffffff811f55d5`): without --kallsyms the call sites are
            // addresses, so only the sites are left out of the comparison there.
            // -l cuts comm names to 8 characters ("wl-iouri"): the task names are left out there.
            var unlike: Set<String> = []
            if args.contains("-R") { unlike.insert("top_sites") }
            if args.contains("-l") { unlike.insert("top_tasks") }
            assertSameModels(without(rep, unlike), without(dat, unlike), models: ["highmem", "pks", "s390pv", "directmap"],
                             microseconds: true, "trace-cmd \(args) vs trace.dat")
            XCTAssertEqual((value(models(rep)["s390pv"] ?? [:], "exposure.granted.windows") as? Int), 151, "\(args)")
            // With the traced kernel's symbols (`trace-cmd dump --kallsyms` of the same file) the addresses are named outright.
            if let kallsyms = tool(["trace-cmd", "dump", "--kallsyms", "-i", workload + "/trace.dat"]) {
                let ks = dir.appendingPathComponent("kallsyms").path
                try kallsyms.write(toFile: ks, atomically: true, encoding: .utf8)
                let named = try json(p, ["--kallsyms", ks])
                let unlikeNamed = unlike.subtracting(["top_sites"])
                assertSameModels(without(named, unlikeNamed), without(dat, unlikeNamed), models: ["highmem", "pks", "s390pv", "directmap"],
                                 microseconds: true, "trace-cmd \(args) --kallsyms vs trace.dat")
            }
        }
    }

    /// `json` without the lists named `keys` (`top_sites`: call-site names, `top_tasks`: task names).
    func without(_ v: [String: Any], _ keys: Set<String>) -> [String: Any] {
        func strip(_ x: Any) -> Any {
            if let d = x as? [String: Any] {
                var o: [String: Any] = [:]
                for (k, y) in d where !keys.contains(k) { o[k] = strip(y) }
                return o
            }
            if let l = x as? [Any] { return l.map(strip) }
            return x
        }
        return strip(v) as! [String: Any]
    }

    /// `-w` adds a latency summary and `--debug` sub-buffer marks: lines that are no records, skipped.
    func testTraceCmdReportAnnotationsAreNoRecords() throws {
        let dir = try scratch()
        let datCounts = try nameCounts(workload + "/trace.dat")
        for args in [["report", "-w"], ["report", "--debug"]] {
            guard let text = tool(["trace-cmd"] + args + [workload + "/trace.dat"]) else { throw XCTSkip("trace-cmd not installed") }
            let p = dir.appendingPathComponent("annotated\(args.count).txt").path
            try text.write(toFile: p, atomically: true, encoding: .utf8)
            let rep = try json(p)
            XCTAssertEqual(value(rep, "trace.malformed") as? Int, 0, "\(args)")
            XCTAssertEqual(try nameCounts(p), datCounts, "\(args)")
        }
    }

    // MARK: Files perf and trace-cmd wrote on this host (SampleTraces/tools, counts in its README.md)

    func testToolFilesAgreeAcrossFormats() throws {
        let t = repoRoot.appendingPathComponent("SampleTraces/tools").path
        // perf.data (file, -z, pipe mode, counters only) against the perf script text perf made from each.
        // Independent counts: `perf script -F event | sort | uniq -c` (README.md).
        for (data, text, events) in [("mixed.perf.data", "mixed.perf-script.txt", 71), ("mixed-zstd.perf.data", "mixed-zstd.perf-script.txt", 55),
                                     ("mixed-pipe.perf.data", "mixed-pipe.perf-script.txt", 153), ("cpuclock-g.perf.data", "cpuclock-g.perf-script.txt.lz4", 104)] {
            let a = try json(t + "/" + data), b = try json(t + "/" + text)
            XCTAssertEqual(value(a, "trace.events") as? Int, events, data)
            XCTAssertEqual(value(a, "trace.malformed") as? Int, 0, data)
            XCTAssertEqual(value(b, "trace.malformed") as? Int, 0, text)
            assertSameCounts(a, b, data)
            XCTAssertEqual(try nameCounts(t + "/" + data), try nameCounts(t + "/" + text), data)
            assertSameModels(a, b, models: ["highmem", "pks", "s390pv", "directmap"], microseconds: true, "\(data) vs \(text)")
        }
        // One ftrace buffer in every format: 798 events (`trace-cmd report | grep -cP '\[\d+\]\s+\d+\.\d+: '`).
        let base = try json(t + "/same-buffer.v7-zstd.dat")
        XCTAssertEqual(value(base, "trace.events") as? Int, 798)
        for f in ["same-buffer.v6.dat.lz4", "same-buffer.v7-none.dat.lz4", "same-buffer.v7-zlib.dat", "same-buffer.trace.txt", "same-buffer.report.txt",
                  "same-buffer.trace.txt.gz", "same-buffer.trace.txt.xz", "same-buffer.trace.txt.zst"] {
            let j = try json(t + "/" + f)
            assertSameCounts(j, base, f)
            XCTAssertEqual(try nameCounts(t + "/" + f), try nameCounts(t + "/same-buffer.v7-zstd.dat"), f)
            assertSameModels(j, base, models: ["highmem", "pks", "s390pv", "directmap"], microseconds: !f.contains(".dat"), f)
        }
        // Two buffers: 32 events in trace.dat and in its report (10 of them `second:` lines).
        let inst = try json(t + "/instances.dat"), instText = try json(t + "/instances.report.txt")
        XCTAssertEqual(value(inst, "trace.events") as? Int, 32)
        assertSameCounts(inst, instText, "instances")
        assertSameModels(inst, instText, models: ["highmem", "pks", "s390pv", "directmap"], microseconds: true, "instances")
    }

    /// `perf record -o - | protreplay report -`: the pipe-mode stream on stdin.
    func testPipeModePerfDataOnStdin() throws {
        let t = repoRoot.appendingPathComponent("SampleTraces/tools").path
        let data = try Data(contentsOf: URL(fileURLWithPath: t + "/mixed-pipe.perf.data"))
        let r = try runTool(["report", "-", "--format", "json"], stdin: data)
        XCTAssertEqual(r.status, 0, r.err)
        let j = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        XCTAssertEqual(value(j, "input.format") as? String, "perf.data")
        XCTAssertEqual(value(j, "trace.events") as? Int, 153)
    }

    /// A trace.dat in which nothing was recorded: a report of 0 events, exit 0, one warning line.
    func testEmptyTraceDatReportsZeroEvents() throws {
        let t = repoRoot.appendingPathComponent("SampleTraces/tools").path
        let r = try runTool(["report", t + "/empty.dat", "--format", "json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("holds no events"), r.err)
        XCTAssertFalse(r.err.contains("only header or blank lines"), r.err)
        let j = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        XCTAssertEqual(value(j, "trace.events") as? Int, 0)
    }

    // MARK: perf.data and perf script

    func testPerfDataEqualsPerfScript() throws {
        let pd = try json(host + "/perf.data")
        XCTAssertEqual(value(pd, "input.format") as? String, "perf.data")
        let ns = try json(host + "/perf-script-ns.txt"), us = try json(host + "/perf-script.txt")
        XCTAssertEqual(value(ns, "input.format") as? String, "perf-script")
        // Independent count: one `perf script` line per sample.
        let lines = try String(contentsOfFile: host + "/perf-script.txt", encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }.count
        XCTAssertEqual(value(pd, "trace.events") as? Int, lines)
        assertSameCounts(pd, ns, "perf.data vs perf script --ns")
        assertSameCounts(pd, us, "perf.data vs perf script")
        XCTAssertEqual(try nameCounts(host + "/perf.data"), try nameCounts(host + "/perf-script.txt"))
        assertSameModels(pd, ns, models: ["highmem", "pks", "s390pv", "directmap"], microseconds: false, "perf.data vs perf script --ns")
        assertSameModels(pd, us, models: ["highmem", "pks", "s390pv", "directmap"], microseconds: true, "perf.data vs perf script")
    }

    // MARK: LZ4 variants

    func testLZ4VariantsOfEveryFormat() throws {
        let dir = try scratch()
        var files = [workload + "/trace.dat", workload + "/trace", host + "/perf.data", host + "/perf-script.txt"]
        if let text = tool(["trace-cmd", "report", workload + "/trace.dat"]) {
            let p = dir.appendingPathComponent("report.txt").path
            try text.write(toFile: p, atomically: true, encoding: .utf8)
            files.append(p)
        }
        for (i, f) in files.enumerated() {
            let z = dir.appendingPathComponent("in-\(i).bin").path   // no telling extension: detection is by content
            guard tool(["lz4", "-q", "-f", f, z]) != nil else { throw XCTSkip("lz4 not installed") }
            let a = try json(f), b = try json(z)
            XCTAssertEqual(value(b, "input.compression") as? String, "lz4", f)
            XCTAssertEqual(value(a, "input.format") as? String, value(b, "input.format") as? String, f)
            assertSameCounts(a, b, f)
            assertSameModels(a, b, models: ["highmem", "pks", "s390pv", "directmap"], microseconds: false, "lz4 \(f)")
        }
    }

    // MARK: --format-in and bad input

    func testFormatInForcesAReader() throws {
        // Forced to the format it is: same as detected.
        let forced = try json(host + "/perf-script.txt", ["--format-in", "perf-script"])
        XCTAssertEqual(value(forced, "input.format") as? String, "perf-script")
        // Forced to a binary format it is not: one clear error.
        XCTAssertThrowsError(try json(workload + "/trace", ["--format-in", "trace.dat"])) { e in
            XCTAssertTrue("\(e)".contains("magic"), "\(e)")
        }
        XCTAssertThrowsError(try json(workload + "/trace", ["--format-in", "pcap"]))
    }

    func testBadBinaryInputExitsNonZeroWithOneLine() throws {
        let dir = try scratch()
        let all = try Data(contentsOf: URL(fileURLWithPath: workload + "/trace.dat"))
        let cut = dir.appendingPathComponent("cut.dat").path
        try all.prefix(all.count / 2).write(to: URL(fileURLWithPath: cut))
        let pdAll = try Data(contentsOf: URL(fileURLWithPath: host + "/perf.data"))
        let pcut = dir.appendingPathComponent("cut.data").path
        try pdAll.prefix(pdAll.count - 100).write(to: URL(fileURLWithPath: pcut))
        for p in [cut, pcut] {
            let r = try runTool(["report", p])
            XCTAssertNotEqual(r.status, 0, p)
            let lines = r.err.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, r.err)
            XCTAssertTrue(r.err.contains(p) && r.err.contains("byte offset"), r.err)
        }
    }
}
