import XCTest
import Foundation
@testable import TraceIngest

/// trace.dat through libtracecmd, checked against the ftrace text of the same ring buffer
/// (`trace` and `trace.dat` of one capture: `cat trace` then `trace-cmd extract`).
final class TraceDatReaderTests: XCTestCase {
    /// Record by record: same order, names, CPUs, pids, comms, flags; timestamps equal after
    /// rounding the trace.dat nanoseconds to the text's microseconds (ftrace rounds: `ns2usecs`).
    func checkRecordByRecord(_ dir: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (dat, input) = try readAll(dir + "/trace.dat")
        XCTAssertEqual(input.format, .traceDat)
        let (txt, _) = try readAll(dir + "/trace")
        XCTAssertEqual(dat.events.count, txt.events.count, file: file, line: line)
        XCTAssertEqual(dat.records.filter { $0.kind == .stackTrace }.count, txt.records.filter { $0.kind == .stackTrace }.count, file: file, line: line)
        XCTAssertEqual(dat.records.filter { $0.kind == .stackFrame }.count, txt.records.filter { $0.kind == .stackFrame }.count, file: file, line: line)
        XCTAssertTrue(dat.malformed.isEmpty, "\(dat.malformed.prefix(3))", file: file, line: line)
        var mismatches = 0
        for (a, b) in zip(dat.events, txt.events) {
            let same = a.name == b.name && a.cpu == b.cpu && a.pid == b.pid && (a.ts + 500) / 1000 == b.ts / 1000 && a.flags == b.flags
                && (a.comm == b.comm || b.comm == "<...>")
            if !same {
                mismatches += 1
                if mismatches < 5 { XCTFail("trace.dat \(a)\n   text \(b)", file: file, line: line) }
            }
        }
        XCTAssertEqual(mismatches, 0, file: file, line: line)
    }

    func testWorkloadTraceDatMatchesFtraceText() throws { try checkRecordByRecord(workloadDir) }

    func testHostTraceDatMatchesFtraceText() throws { try checkRecordByRecord(hostDir) }

    /// Payloads print as ftrace does for the fields the normalizer reads.
    func testPayloadsLookLikeFtrace() throws {
        let (dat, _) = try readAll(workloadDir + "/trace.dat")
        let ev = dat.events
        func first(_ name: String) -> String { ev.first { $0.name == name }?.payload ?? "<none>" }
        XCTAssertEqual(first("tracing_mark_write"), "capture start")
        XCTAssertEqual(first("sched_switch"), "prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=rcu_preempt next_pid=15 next_prio=120")
        XCTAssertEqual(first("sched_process_fork"), "comm=init pid=1 child_comm=init child_pid=242")
        XCTAssertEqual(first("handle_mm_fault"), "(handle_mm_fault+0x0/0x2d0) vma=0xffff88807ff971c8 address=0x7fffa16de7e8 flags=0x255")
        XCTAssertEqual(first("page_cache_pipe_buf_confirm_ret"), "(iter_file_splice_write+0x1ca/0x3d0 <- page_cache_pipe_buf_confirm) ret=0")
        XCTAssertEqual(first("page_fault_kernel"), "address=0x2134b690 ip=__put_user_nocheck_4 error_code=0x3")
        XCTAssertEqual(first("get_user_pages_fast").hasPrefix("(get_user_pages_fast+0x0/0x"), true)
        // Every sched_switch state is in letter form.
        for e in ev where e.name == "sched_switch" {
            guard let r = e.payload.range(of: "prev_state=") else { XCTFail(e.payload); continue }
            let st = e.payload[r.upperBound...].prefix { $0 != " " }
            XCTAssertTrue(st.allSatisfy { "RSDTtXZPI|+".contains($0) }, e.payload)
        }
        // Stack frames are function names from the file's kallsyms.
        let frames = dat.records.filter { $0.kind == .stackFrame }.map(\.payload)
        XCTAssertTrue(frames.contains("kprobe_trace_func"))
        XCTAssertTrue(frames.contains("splice_direct_to_actor"))
    }

    /// Independent count: `trace-cmd report` prints one line per record and per stack frame, plus `cpus=N`.
    func testRecordCountMatchesTraceCmdReport() throws {
        guard let out = commandOutput(["trace-cmd", "report", workloadDir + "/trace.dat"]) else { throw XCTSkip("trace-cmd not installed") }
        let lines = out.split(separator: "\n", omittingEmptySubsequences: true)
        let records = lines.filter { !$0.hasPrefix("cpus=") && !$0.hasPrefix("=>") }.count
        let frames = lines.filter { $0.hasPrefix("=>") }.count
        let (dat, _) = try readAll(workloadDir + "/trace.dat")
        XCTAssertEqual(dat.records.filter { $0.kind == .event || $0.kind == .stackTrace }.count, records)
        XCTAssertEqual(dat.records.filter { $0.kind == .stackFrame }.count, frames)
    }

    /// Version 6 and uncompressed version 7 (made with `trace-cmd convert`) read the same as the zstd v7 original.
    func testVersion6AndUncompressedVersion7() throws {
        let dir = try temporaryDirectory(self)
        let (orig, _) = try readAll(workloadDir + "/trace.dat")
        for (name, args) in [("v6.dat", ["--file-version", "6"]), ("v7-none.dat", ["--compression", "none"])] {
            let out = dir.appendingPathComponent(name).path
            guard commandOutput(["trace-cmd", "convert", "-i", workloadDir + "/trace.dat", "-o", out] + args) != nil else {
                throw XCTSkip("trace-cmd convert not available")
            }
            let (conv, _) = try readAll(out)
            XCTAssertEqual(conv.records.count, orig.records.count, name)
            XCTAssertEqual(conv.records.map(\.payload), orig.records.map(\.payload), name)
            XCTAssertEqual(conv.records.map(\.ts), orig.records.map(\.ts), name)
        }
    }

    /// An LZ4-framed trace.dat is detected by content and read through a temporary copy.
    func testLZ4TraceDat() throws {
        let dir = try temporaryDirectory(self)
        let out = dir.appendingPathComponent("x.bin").path
        guard commandOutput(["lz4", "-q", "-f", workloadDir + "/trace.dat", out]) != nil else { throw XCTSkip("lz4 not installed") }
        let (z, input) = try readAll(out)
        XCTAssertEqual(input.compression, .lz4)
        XCTAssertEqual(input.format, .traceDat)
        let (orig, _) = try readAll(workloadDir + "/trace.dat")
        XCTAssertEqual(z.records, orig.records)
    }
}

/// Broken binary input: one clear line naming the file, the offset or section, and what was expected.
final class BadBinaryInputTests: XCTestCase {
    func expectError(_ path: String, _ format: TraceFormat? = nil, contains: [String], file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try readAll(path, format: format)
            XCTFail("no error for \(path)", file: file, line: line)
        } catch let e as InputError {
            let d = e.description
            XCTAssertFalse(d.contains("\n"), d, file: file, line: line)
            XCTAssertTrue(d.hasPrefix(path), d, file: file, line: line)
            for c in contains { XCTAssertTrue(d.contains(c), "\(d) lacks \(c)", file: file, line: line) }
        } catch {
            XCTFail("not an InputError: \(error)", file: file, line: line)
        }
    }

    func copy(_ src: String, to dir: URL, _ name: String, _ edit: (inout [UInt8]) -> Void) throws -> String {
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: src)))
        edit(&b)
        let p = dir.appendingPathComponent(name).path
        try Data(b).write(to: URL(fileURLWithPath: p))
        return p
    }

    func testWrongMagic() throws {
        let dir = try temporaryDirectory(self)
        let p = try copy(workloadDir + "/trace.dat", to: dir, "magic.dat") { $0[5] = UInt8(ascii: "X") }
        expectError(p, .traceDat, contains: ["trace.dat", "byte offset", "magic"])
    }

    func testUnsupportedVersion() throws {
        let dir = try temporaryDirectory(self)
        let p = try copy(workloadDir + "/trace.dat", to: dir, "v9.dat") { $0[10] = UInt8(ascii: "9") }
        expectError(p, contains: ["version 9", "6 and 7"])
    }

    func testCorruptZstdBlock() throws {
        let dir = try temporaryDirectory(self)
        // CPU 0's data (offset 1011712 in this file) starts with a block count, sizes, then a zstd frame.
        let p = try copy(workloadDir + "/trace.dat", to: dir, "zstd.dat") { b in
            let zstd: [UInt8] = [0x28, 0xb5, 0x2f, 0xfd]
            var i = 1_011_712
            while i + 4 < b.count && Array(b[i..<i + 4]) != zstd { i += 1 }
            b[i] ^= 0xff
        }
        expectError(p, contains: ["zstd", "byte offset"])
    }

    /// A damaged header_page format crashes libtracecmd's open: it is checked first (v6 plain, v7 in
    /// its zstd headers section, v7 uncompressed).
    func testDamagedHeaderPage() throws {
        let dir = try temporaryDirectory(self)
        let z = try copy(workloadDir + "/trace.dat", to: dir, "hz.dat") { b in b[37 + 16 + 8 + 20] ^= 0xff }
        expectError(z, contains: ["zstd", "headers section", "byte offset"])
        for (name, args) in [("v6.dat", ["--file-version", "6"]), ("v7n.dat", ["--compression", "none"])] {
            let out = dir.appendingPathComponent(name).path
            guard commandOutput(["trace-cmd", "convert", "-i", workloadDir + "/trace.dat", "-o", out] + args) != nil else {
                throw XCTSkip("trace-cmd convert not available")
            }
            let bad = try copy(out, to: dir, "bad-" + name) { b in
                let needle = Array("timestamp;".utf8)
                if let i = (0..<(b.count - needle.count)).first(where: { Array(b[$0..<$0 + needle.count]) == needle }) { b[i + 2] = 0x16 }
            }
            expectError(bad, contains: ["header_page", "timestamp", "byte offset"])
        }
    }

    /// A format libtraceevent crashes on (one byte of a `__print_symbolic` list changed): parsed in a
    /// child process first, so the read ends with one line naming the event.
    func testFormatThatCrashesLibtraceevent() throws {
        let dir = try temporaryDirectory(self)
        let out = dir.appendingPathComponent("v6.dat").path
        guard commandOutput(["trace-cmd", "convert", "-i", workloadDir + "/trace.dat", "-o", out, "--file-version", "6"]) != nil else {
            throw XCTSkip("trace-cmd convert not available")
        }
        let bad = try copy(out, to: dir, "bad.dat") { b in
            func find(_ s: String, from: Int) -> Int? {
                let n = Array(s.utf8)
                return (from..<(b.count - n.count)).first { Array(b[$0..<$0 + n.count]) == n }
            }
            // "REC->mem_type" -> "REC->mem\x0etype" in xdp:mem_disconnect's print format.
            if let e = find("name: mem_disconnect", from: 0), let i = find("REC->mem_type", from: e) { b[i + 8] = 0x0e }
        }
        expectError(bad, contains: ["xdp:mem_disconnect", "libtraceevent crashes"])
    }

    /// Fuzz-style: every truncation point (a spread of them, plus the section edges) gives an
    /// `InputError` or, past the last byte the reader needs, the full read; never a crash.
    func testTruncationsOfEveryRealTraceDat() throws {
        let dir = try temporaryDirectory(self)
        for src in [workloadDir + "/trace.dat", hostDir + "/trace.dat"] {
            let all = [UInt8](try Data(contentsOf: URL(fileURLWithPath: src)))
            let full = try readAll(src).0.records.count
            var cuts = Set<Int>([1, 9, 10, 12, 15, 20, 30, 36, 37, 40, 53, 100, all.count - 1, all.count - 4, all.count - 100, all.count - 200])
            var c = 0
            while c < all.count { cuts.insert(c); c += all.count / 97 }
            for cut in cuts.sorted() where cut > 0 && cut < all.count {
                let p = dir.appendingPathComponent("cut-\(cut).dat").path
                try Data(all[0..<cut]).write(to: URL(fileURLWithPath: p))
                do {
                    // Only bytes nothing points at were cut (padding after the last section): all records.
                    let n = try readAll(p, format: .traceDat).0.records.count
                    XCTAssertEqual(n, full, "\(src) cut at \(cut): read \(n) of \(full) records without an error")
                } catch let e as InputError {
                    XCTAssertFalse(e.description.contains("\n"))
                    XCTAssertTrue(e.description.hasPrefix(p), e.description)
                }
                try? FileManager.default.removeItem(atPath: p)
            }
        }
    }

    func testUnknownBinaryNamesSupportedFormats() throws {
        let dir = try temporaryDirectory(self)
        let p = dir.appendingPathComponent("junk.bin").path
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: p))
        expectError(p, contains: ["not a supported input format", "trace.dat", "perf.data", "perf script", "trace-cmd report"])
    }
}

/// The two-thread read (iteration and decoding on a second thread) and the one-thread read agree.
final class TraceDatThreadingTests: XCTestCase {
    func testOneThreadAndTwoThreadsGiveTheSameRecords() throws {
        let two = try readAll(workloadDir + "/trace.dat").0.records
        setenv("PROTREPLAY_READER_THREADS", "1", 1)
        defer { unsetenv("PROTREPLAY_READER_THREADS") }
        let one = try readAll(workloadDir + "/trace.dat").0.records
        XCTAssertEqual(one.count, two.count)
        XCTAssertEqual(one, two)
    }
}
