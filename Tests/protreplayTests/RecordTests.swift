import XCTest
import TestSupport
import Foundation

/// `protreplay record` on this machine's kernel (root and a writable tracefs; skipped otherwise). Each run holds
/// `/tmp/tracefs.lock` (flock) around the tracefs snapshot, the recording and the second snapshot, so another
/// user's `trace-cmd record` cannot change tracefs in between. Expected counts come from `trace-cmd report`.
final class RecordTests: XCTestCase {
    static let tracing = "/sys/kernel/tracing"

    /// The tracefs state a capture must leave as it found it, printed by the shell (one `name: value` per line).
    static let snapshot = """
        snap() { T=\(tracing); for f in set_event tracing_on current_tracer trace_clock buffer_size_kb set_event_pid saved_cmdlines_size; do \
        printf '%s: %s\\n' "$f" "$(tr '\\n' ' ' < $T/$f)"; done; \
        [ -e $T/kprobe_events ] && printf 'kprobe_events: %s\\n' "$(tr '\\n' ' ' < $T/kprobe_events)"; \
        printf 'instances: %s\\n' "$(ls $T/instances | tr '\\n' ' ')"; }
        """

    func requireTracefs() throws {
        guard getuid() == 0, access(Self.tracing + "/instances", W_OK) == 0 else {
            throw XCTSkip("needs root and a writable tracefs at \(Self.tracing)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/flock") else { throw XCTSkip("no flock") }
    }

    func shell(_ script: String) throws -> (status: Int32, out: String) {
        // stderr into stdout, as the checks read both in order.
        let r = try ProcessRunner.run("/usr/bin/flock", ["/tmp/tracefs.lock", "/bin/sh", "-c", "exec 2>&1; " + script])
        return (r.status, r.out)
    }

    func section(_ out: String, _ name: String) -> String {
        guard let r = out.range(of: "=== \(name)\n") else { return "" }
        let rest = out[r.upperBound...]
        return String(rest[..<(rest.range(of: "=== ")?.lowerBound ?? rest.endIndex)])
    }

    /// The issue's acceptance run: `record -o t.dat -- dd ... conv=fsync` writes a trace.dat that `trace-cmd report`
    /// reads with the event count protreplay reports, page faults included; tracefs is as before.
    func testRecordDdWritesTraceDatWithTheSameCountsAndRestoresTracefs() throws {
        try requireTracefs()
        let tool = try toolPath()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("record-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try shell("""
            \(Self.snapshot)
            cd \(dir) && echo '=== before' && snap && echo '=== record' && \
            \(tool) record -o t.dat --no-report --quiet -- dd if=/dev/zero of=f bs=1M count=16 conv=fsync 2>/dev/null; \
            echo "rc=$?"; echo '=== after'; snap
            """)
        XCTAssertEqual(r.status, 0, r.out)
        XCTAssert(section(r.out, "record").contains("rc=0"), r.out)
        XCTAssertEqual(section(r.out, "before"), section(r.out, "after"), "tracefs changed")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/trace-cmd") else { throw XCTSkip("no trace-cmd to count with") }

        // Independent counts: trace-cmd's own reader (one line per event after the `cpus=` header).
        let tc = try shell("trace-cmd report \(dir)/t.dat 2>/dev/null | grep -vc '^cpus='; "
                           + "trace-cmd report \(dir)/t.dat 2>/dev/null | grep -c ' page_fault_user: '")
        let counts = tc.out.split(separator: "\n").compactMap { Int($0) }
        XCTAssertEqual(counts.count, 2, tc.out)
        let (total, faults) = (counts[0], counts[1])
        XCTAssertGreaterThan(faults, 0, "dd faults its buffer in: page_fault_user must be recorded")

        let json = try runTool(["report", dir + "/t.dat", "--model", "auto", "--format", "json", "--quiet"])
        let obj = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        let trace = obj?["trace"] as? [String: Any]
        XCTAssertEqual(trace?["events"] as? Int, total, "protreplay reads as many events as trace-cmd report")
        let events = try runTool(["events", dir + "/t.dat"])
        let line = events.out.split(separator: "\n").first { $0.split(separator: " ").first == "page_fault_user" }
        XCTAssertEqual(line.flatMap { Int($0.split(separator: " ")[1]) }, faults)
    }

    /// SIGTERM and SIGINT mid-run: the instance (and any kprobe) that existed while recording is gone afterwards,
    /// and every tracefs file is as before; the exit status says which signal stopped it.
    func testKilledMidRunRestoresTracefs() throws {
        try requireTracefs()
        let tool = try toolPath()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("record-kill-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for sig in ["TERM", "INT"] {
            let r = try shell("""
                \(Self.snapshot)
                cd \(dir) && echo '=== before' && snap
                \(tool) record -o k.dat --no-report --quiet -- sleep 30 2>/dev/null &
                pid=$!
                i=0; while [ ! -d \(Self.tracing)/instances/protreplay-$pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
                echo '=== during'; ls \(Self.tracing)/instances
                sleep 0.5; kill -\(sig) $pid; wait $pid; echo "rc=$?"
                echo '=== after'; snap; echo "pid=$pid"
                """)
            let pid = r.out.split(separator: "\n").last { $0.hasPrefix("pid=") }.map { String($0.dropFirst(4)) } ?? "?"
            XCTAssert(section(r.out, "during").contains("protreplay-\(pid)"), "SIG\(sig): instance not seen while recording\n\(r.out)")
            XCTAssertEqual(section(r.out, "before"), section(r.out, "after").replacingOccurrences(of: "pid=\(pid)\n", with: ""),
                           "SIG\(sig): tracefs not restored\n\(r.out)")
            XCTAssert(r.out.contains("rc=\(sig == "TERM" ? 143 : 130)"), "SIG\(sig): exit status\n\(r.out)")
        }
    }
}

extension RecordTests {
    /// `--format-out text`: ftrace text whose header counts the event lines it holds, read back by protreplay.
    func testRecordTextOutput() throws {
        try requireTracefs()
        let tool = try toolPath()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("record-text-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try shell("cd \(dir) && \(tool) record -o t.txt --format-out text --no-report --quiet -- dd if=/dev/zero of=f bs=1M count=4 conv=fsync 2>/dev/null; "
                          + "echo rc=$?; grep -vc '^#' t.txt; grep -c ' page_fault_user: ' t.txt")
        let lines = r.out.split(separator: "\n")
        XCTAssert(lines.contains("rc=0"), r.out)
        let counts = lines.compactMap { Int($0) }
        XCTAssertEqual(counts.count, 2, r.out)
        XCTAssertGreaterThan(counts[1], 0, "page faults recorded")
        let text = try String(contentsOfFile: dir + "/t.txt", encoding: .utf8)
        // entries-in-buffer is what the file holds; entries-written can be larger if a busy machine overran the buffer.
        XCTAssert(text.contains("# entries-in-buffer/entries-written: \(counts[0])/"), "header counts the lines")
        let events = try runTool(["events", dir + "/t.txt"])
        XCTAssert(events.out.contains("# \(counts[0]) events,"), events.out)
    }
}
