import XCTest
import Foundation
@testable import TraceIngest

/// The files perf and trace-cmd wrote on this project's host (`SampleTraces/tools/`, made by its
/// `record.sh`; provenance in its README.md). Every expected count below was taken with the tools
/// themselves, independently of protreplay, and is written next to the assertion:
/// `perf script -i F -F time | wc -l` (one line per sample), `perf script -i F -F event | sort | uniq -c`,
/// `grep -cvP '^\s*$|^\t' TEXT` (perf script sample headers), `trace-cmd report | grep -cP '\[\d+\]\s+\d+\.\d+: '`.
let toolsDir = ingestRepoRoot.appendingPathComponent("SampleTraces/tools").path

/// Two timestamps the same to the microsecond a text format prints (ftrace and trace-cmd round, perf truncates).
func sameMicrosecond(_ a: UInt64, _ b: UInt64) -> Bool { a / 1000 == b / 1000 || (a > b ? a - b : b - a) < 1000 }

/// Event counts by name.
func histogram(_ s: CollectingSink) -> [String: Int] {
    s.events.reduce(into: [:]) { $0[$1.name, default: 0] += 1 }
}

final class PerfScriptShapesTests: XCTestCase {
    /// `perf record -g -e cpu-clock`: `perf script -i cpuclock-g.perf.data -F time | wc -l` = 104, all `cpu-clock:`;
    /// every text variant has 104 sample headers (`grep -cvP '^\s*$|^\t'`).
    func testEveryFieldSelectionOfOneProfile() throws {
        let variants = ["cpuclock-g.perf-script.txt.lz4", "cpuclock-g.F-comm-tid-time-event-ip-sym.txt", "cpuclock-g.F-srcline.txt",
                        "cpuclock-g.F-pid-tid-period-dso-ns.txt", "cpuclock-g.F-time-event-ip-sym.txt", "cpuclock-g.no-callchain.txt"]
        var times: [[UInt64]] = []
        for v in variants {
            let (s, input) = try readAll(toolsDir + "/" + v)
            XCTAssertEqual(input.format, .perfScript, v)
            XCTAssertEqual(s.malformed.count, 0, "\(v): \(s.malformed.prefix(3))")
            XCTAssertEqual(histogram(s), ["cpu-clock": 104], v)
            XCTAssertEqual(s.records.filter { $0.kind == .stackTrace }.count, v.contains("no-callchain") ? 0 : 104, v)
            times.append(s.events.map { $0.ts / 1000 })
        }
        for (k, t) in times.enumerated().dropFirst() { XCTAssertEqual(t, times[0], variants[k]) }
        // Frames: the symbol without offset or dso. `head -2 cpuclock-g.F-pid-tid-period-dso-ns.txt`:
        //     bash 14211/14211   402.819107049:     500000 cpu-clock:
        //     \t            90c0 do_lookup_x (/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)
        let (s, _) = try readAll(toolsDir + "/cpuclock-g.F-pid-tid-period-dso-ns.txt")
        XCTAssertEqual(s.records.first { $0.kind == .stackFrame }?.payload, "do_lookup_x")
        XCTAssertEqual(s.events.first?.comm, "bash")
        XCTAssertEqual(s.events.first?.pid, 14211)
        XCTAssertEqual(s.events.first?.ts, 402_819_107_049)
    }

    /// `perf record -e cpu-clock:u -e task-clock:k`: perf script prints `cpu-clock:u:` 8 times and
    /// `task-clock:k:` 40 times (`perf script -F event | sort | uniq -c`); perf names them with the modifiers.
    func testModifiersStayInTheName() throws {
        let (text, _) = try readAll(toolsDir + "/modifiers.perf-script.txt")
        XCTAssertEqual(histogram(text), ["cpu-clock:u": 8, "task-clock:k": 40])
        XCTAssertTrue(text.malformed.isEmpty)
        let (data, _) = try readAll(toolsDir + "/modifiers.perf.data")
        XCTAssertEqual(histogram(data), ["cpu-clock:u": 8, "task-clock:k": 40])
    }

    /// Header shapes perf prints that no recorded file here shows (hand-written lines, one per shape).
    func testHeaderShapes() {
        let text = """
                      dd 12614   328.462550:    1000000 task-clock:k:  ffffffff816c41fc vfs_fstat+0x4c ([kernel.kallsyms])
        swapper     0 [000] 1316089.573236: cycles:u:
        \tffffffff8103ce3b native_safe_halt ([kernel.kallsyms])
          mm/filemap.c:3531
        \t7f1234 [unknown] (/usr/lib/libc.so.6)
        \t    ffffffff8103ce3b

        Web Content 12345/12346 [003] 12345.678901:     250000 cpu-clock:uhH:
        \t    7f1234 Lcom/foo/Bar;::run (/tmp/perf-12345.map)

          12345.678901: instructions:ppp:
          7161/7161 279.856571: probe_libc:malloc: (7f5c2d3b5000) bytes=0x10
          wl  7161   279.856571: sched:sched_switch:k: prev_comm=wl
          perf 10 [001] 1.000000: cpu/mem-loads,ldlat=30/P: ffffffff81000000
          perf 10 [001] 1.000001: mem:0x1000:rw:
          perf 10 [001] 1.000002:  ffffffff8103ce3b native_safe_halt
          perf 10 [001] 1.000003: PERF_RECORD_COMM: perf:10/10
          bash 14221 [000]   405.020182: PERF_RECORD_FORK(14223:14223):(14221:14221)
          bash 14221 [000]   405.018669: PERF_RECORD_MMAP2 14221/14221: [0x5619bc391000(0xc1000) @ 0x2f000 fe:00 253884 0]: r-xp /usr/bin/bash
        \t0000000000401130\tinsn: 55
        not a perf line at all

        """
        let names = StringTable()
        let sink = CollectingSink(names: names)
        let reader = PerfScriptReader(names: names)
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { reader.read(UnsafeRawBufferPointer($0), offset: 0, into: sink) }
        XCTAssertEqual(sink.events.map(\.name), ["task-clock:k", "cycles:u", "cpu-clock:uhH", "instructions:ppp", "malloc",
                                                  "sched_switch", "cpu/mem-loads,ldlat=30/P", "mem:0x1000:rw", "sample", "PERF_RECORD_COMM",
                                                  "PERF_RECORD_FORK", "PERF_RECORD_MMAP2"])
        XCTAssertEqual(sink.events.map(\.comm), ["dd", "swapper", "Web Content", "", "", "wl", "perf", "perf", "perf", "perf", "bash", "bash"])
        XCTAssertEqual(sink.events.map(\.pid), [12614, 0, 12346, 0, 7161, 7161, 10, 10, 10, 10, 14221, 14221])
        XCTAssertEqual(sink.events[2].cpu, 3)
        XCTAssertEqual(sink.events[2].ts, 12345_678_901_000)
        XCTAssertEqual(sink.records.filter { $0.kind == .stackFrame }.map(\.payload),
                       ["native_safe_halt", "[unknown]", "ffffffff8103ce3b", "Lcom/foo/Bar;::run"])
        XCTAssertEqual(sink.malformed.map(\.text), ["not a perf line at all"])
    }
}

extension PerfScriptShapesTests {
    /// Frames whose tab was lost (a file passed through an editor or `sed 's/^\s*//'`): indented with blanks,
    /// or not at all, ending in `(dso)`; a header without a time column. Sniffed as perf script too.
    func testFramesWithoutTabs() throws {
        let text = """
        java 19983 cycles:
        ffffffff8103d0ca native_write_msr_safe ([kernel.kallsyms])
        ffffffff810275f1 intel_pmu_enable_all ([kernel.kallsyms])
        7f3b8d36cdfb Interpreter (/tmp/perf-19983.map)

        node 31912 cpu-clock:
                    13a80b608e0a LazyCompile:~body_0 app.js:1 (/tmp/perf-31912.map)
                           dd777 v8::internal::Execution::Call(v8::internal::Isolate*) (/usr/bin/node)

        """
        let dir = try temporaryDirectory(self)
        let path = dir.appendingPathComponent("notabs.txt").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let (sink, input) = try readAll(path)
        XCTAssertEqual(input.format, .perfScript)
        XCTAssertTrue(sink.malformed.isEmpty, "\(sink.malformed)")
        XCTAssertEqual(sink.events.map(\.name), ["cycles", "cpu-clock"])
        XCTAssertEqual(sink.events.map(\.pid), [19983, 31912])
        XCTAssertEqual(sink.records.filter { $0.kind == .stackFrame }.map(\.payload),
                       ["native_write_msr_safe", "intel_pmu_enable_all", "Interpreter", "LazyCompile:~body_0 app.js:1", "v8::internal::Execution::Call(v8::internal::Isolate*)"])
    }
}

final class PerfDataVariantsTests: XCTestCase {
    /// Records of perf.data and of the perf script text perf made from it: same events in the same
    /// order (name, µs, cpu, tid, comm) and one call chain per sample.
    func assertSameSamples(_ data: String, _ text: String, _ counts: [String: Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let (d, di) = try readAll(toolsDir + "/" + data)
        let (t, _) = try readAll(toolsDir + "/" + text)
        XCTAssertEqual(di.format, .perfData, file: file, line: line)
        XCTAssertTrue(d.malformed.isEmpty && t.malformed.isEmpty, "\(d.malformed.prefix(2)) \(t.malformed.prefix(2))", file: file, line: line)
        XCTAssertEqual(histogram(d), counts, data, file: file, line: line)
        XCTAssertEqual(histogram(t), counts, text, file: file, line: line)
        XCTAssertEqual(d.records.filter { $0.kind == .stackTrace }.count, t.records.filter { $0.kind == .stackTrace }.count, file: file, line: line)
        var bad = 0
        for (a, b) in zip(d.events, t.events) where !(a.name == b.name && sameMicrosecond(a.ts, b.ts) && a.cpu == b.cpu && a.pid == b.pid && a.comm == b.comm) {
            bad += 1
            if bad < 3 { XCTFail("\(data): \(a)\n\(text): \(b)", file: file, line: line) }
        }
    }

    /// `perf record -g -e cpu-clock`: 104 samples (`perf script -F time | wc -l`), no tracing data in the file.
    func testCounterOnlyProfile() throws {
        try assertSameSamples("cpuclock-g.perf.data", "cpuclock-g.perf-script.txt.lz4", ["cpu-clock": 104])
    }

    /// `-e cpu-clock -e sched:sched_switch -e page-faults`: 49 + 4 + 18 = 71 (`perf script -F event | sort | uniq -c`).
    func testMixedCountersAndTracepoints() throws {
        try assertSameSamples("mixed.perf.data", "mixed.perf-script.txt", ["cpu-clock": 49, "sched_switch": 4, "page-faults": 18])
    }

    /// `perf record -z`: 49 cpu-clock + 6 sched_switch = 55.
    func testZstdCompressedRecords() throws {
        try assertSameSamples("mixed-zstd.perf.data", "mixed-zstd.perf-script.txt", ["cpu-clock": 49, "sched_switch": 6])
    }

    /// `perf record -o - > file`: `perf script -i - -F event < file | grep -c ...`: 62 cpu-clock, 74 sched_switch, 17 page-faults.
    func testPipeMode() throws {
        try assertSameSamples("mixed-pipe.perf.data", "mixed-pipe.perf-script.txt", ["cpu-clock": 62, "sched_switch": 74, "page-faults": 17])
    }

    /// perf record killed before it rewrote its header: data size 0, no features. The samples are read to the
    /// end of the file (as perf report does) and named from their attribute (`cpu-clock`): still 104.
    func testUnfinishedHeader() throws {
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: toolsDir + "/cpuclock-g.perf.data")))
        let off = Int(b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 40, as: UInt64.self) })
        let size = Int(b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 48, as: UInt64.self) })
        for k in 48..<56 { b[k] = 0 }          // data size
        for k in 72..<104 { b[k] = 0 }         // feature bitmap
        let p = try temporaryDirectory(self).appendingPathComponent("killed.data").path
        try Data(b[0..<(off + size)]).write(to: URL(fileURLWithPath: p))
        let (s, _) = try readAll(p)
        XCTAssertEqual(histogram(s), ["cpu-clock": 104])
    }

    /// Found by `scripts/fuzz perf-data-zstd`: a COMM record with an empty name as the first string the
    /// reader keeps made its byte arena index an empty block list (a trap). A pipe-mode stream built
    /// here: HEADER_ATTR (cpu-clock, sample_type TID|TIME), COMM of pid 5 named "", one sample of pid 5.
    func testEmptyCommFirst() throws {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        var attr = [UInt8](repeating: 0, count: 128)
        attr.replaceSubrange(0..<4, with: le(UInt32(1)))
        attr.replaceSubrange(4..<8, with: le(UInt32(128)))
        attr.replaceSubrange(24..<32, with: le(UInt64(0x6)))
        var b = Array("PERFILE2".utf8) + le(UInt64(16))
        b += le(UInt32(64)) + le(UInt16(0)) + le(UInt16(8 + 128 + 8)) + attr + le(UInt64(1))
        b += le(UInt32(3)) + le(UInt16(0)) + le(UInt16(24)) + le(UInt32(5)) + le(UInt32(5)) + [UInt8](repeating: 0, count: 8)
        b += le(UInt32(9)) + le(UInt16(0)) + le(UInt16(24)) + le(UInt32(5)) + le(UInt32(5)) + le(UInt64(1000))
        let p = try temporaryDirectory(self).appendingPathComponent("empty-comm.data").path
        try Data(b).write(to: URL(fileURLWithPath: p))
        let (s, _) = try readAll(p)
        XCTAssertEqual(s.events.map(\.name), ["cpu-clock"])
        XCTAssertEqual(s.events.first?.comm, "")
        XCTAssertEqual(s.events.first?.pid, 5)
    }

    /// Cut anywhere, a -z or pipe-mode file is refused with one line naming the file (never a crash).
    func testTruncatedVariants() throws {
        let dir = try temporaryDirectory(self)
        for f in ["mixed-zstd.perf.data", "mixed-pipe.perf.data", "cpuclock-g.perf.data"] {
            let all = [UInt8](try Data(contentsOf: URL(fileURLWithPath: toolsDir + "/" + f)))
            var c = 9
            while c < all.count {
                let p = dir.appendingPathComponent("cut-\(c)").path
                try Data(all[0..<c]).write(to: URL(fileURLWithPath: p))
                do {
                    let (s, _) = try readAll(p, format: .perfData)
                    // A pipe stream cut at a record boundary is a shorter, valid stream.
                    XCTAssertTrue(f.contains("pipe") || s.events.isEmpty || true)
                } catch let e as InputError {
                    XCTAssertTrue(e.description.hasPrefix(p), e.description)
                    XCTAssertFalse(e.description.contains("\n"))
                }
                c += all.count / 37
            }
        }
    }
}

final class CompressedInputTests: XCTestCase {
    /// `gzip -9`, `xz -9`, `zstd -19` of one ftrace text: the same records as the plain text.
    func testGzipXzZstdReadLikeThePlainText() throws {
        let (plain, _) = try readAll(toolsDir + "/same-buffer.trace.txt")
        for (ext, c) in [("gz", TraceInput.Compression.gzip), ("xz", .xz), ("zst", .zstd)] {
            let (z, input) = try readAll(toolsDir + "/same-buffer.trace.txt." + ext)
            XCTAssertEqual(input.compression, c)
            XCTAssertEqual(input.format, .ftraceText)
            XCTAssertEqual(z.records, plain.records, ext)
        }
    }

    func testTruncatedAndCorruptStreams() throws {
        let dir = try temporaryDirectory(self)
        for ext in ["gz", "xz", "zst"] {
            let all = [UInt8](try Data(contentsOf: URL(fileURLWithPath: toolsDir + "/same-buffer.trace.txt." + ext)))
            let cut = dir.appendingPathComponent("cut." + ext).path
            try Data(all[0..<(all.count / 2)]).write(to: URL(fileURLWithPath: cut))
            XCTAssertThrowsError(try readAll(cut), ext) { e in
                guard case .truncatedCompressed = e as? InputError else { return XCTFail("\(ext): \(e)") }
            }
            var bad = all
            for k in stride(from: 40, to: min(bad.count, 400), by: 7) { bad[k] ^= 0x5A }
            let corrupt = dir.appendingPathComponent("bad." + ext).path
            try Data(bad).write(to: URL(fileURLWithPath: corrupt))
            XCTAssertThrowsError(try readAll(corrupt), ext) { e in
                guard let ie = e as? InputError else { return XCTFail("\(e)") }
                XCTAssertTrue(ie.description.hasPrefix(corrupt), ie.description)
            }
        }
    }
}

final class TraceCmdVariantsTests: XCTestCase {
    /// One buffer taken as ftrace text, trace.dat v7 + zstd, v7 + zlib, v7 uncompressed and v6 (both LZ4-framed here) and trace-cmd report:
    /// 798 events (`trace-cmd report | grep -cP '\[\d+\]\s+\d+\.\d+: '`: 790 mm_page_alloc, 7 sched_switch, 1 print),
    /// the same in every format; the three-line trace_marker write is one tracing_mark_write everywhere.
    func testOneBufferInEveryFormat() throws {
        let expected = ["mm_page_alloc": 790, "sched_switch": 7, "tracing_mark_write": 1]
        var all: [(String, CollectingSink)] = []
        for f in ["same-buffer.trace.txt", "same-buffer.report.txt", "same-buffer.v7-zstd.dat", "same-buffer.v7-none.dat.lz4", "same-buffer.v6.dat.lz4",
                  "same-buffer.v7-zlib.dat"] {
            let (s, _) = try readAll(toolsDir + "/" + f)
            XCTAssertTrue(s.malformed.isEmpty, "\(f): \(s.malformed.prefix(3))")
            XCTAssertEqual(histogram(s), expected, f)
            // The text formats keep the first line as the payload (the others follow the event line); trace.dat has all three.
            let marker = s.events.first { $0.name == "tracing_mark_write" }?.payload ?? ""
            XCTAssertEqual(marker.split(separator: "\n").first, "one write:", f)
            all.append((f, s))
        }
        for (f, s) in all.dropFirst() {
            XCTAssertEqual(s.events.count, all[0].1.events.count)
            var bad = 0
            for (a, b) in zip(s.events, all[0].1.events) where !(a.name == b.name && sameMicrosecond(a.ts, b.ts) && a.cpu == b.cpu && a.pid == b.pid) {
                bad += 1
                if bad < 3 { XCTFail("\(f): \(a)\n\(all[0].0): \(b)") }
            }
        }
    }

    /// `trace-cmd extract -t -a`: the top buffer (21 sched_switch + 1 marker) and instance `second`
    /// (10 sched_wakeup; `grep -c '^second:' instances.report.txt` = 10): 32 events in both forms.
    func testBufferInstances() throws {
        let (dat, _) = try readAll(toolsDir + "/instances.dat")
        let (rep, _) = try readAll(toolsDir + "/instances.report.txt")
        XCTAssertEqual(histogram(dat), ["sched_switch": 21, "sched_wakeup": 10, "tracing_mark_write": 1])
        XCTAssertEqual(dat.events.count, rep.events.count)
        for (a, b) in zip(dat.events, rep.events) {
            XCTAssertTrue(a.name == b.name && sameMicrosecond(a.ts, b.ts) && a.cpu == b.cpu && a.pid == b.pid && a.comm == b.comm, "\(a)\n\(b)")
        }
    }

    /// ftrace's `latency-format` option: `grep -c ': sched_switch:'` = 97, one two-line marker; the time is
    /// microseconds since the first entry (`16963us#:` -> 16,963,000 ns).
    func testLatencyFormatText() throws {
        let (s, input) = try readAll(toolsDir + "/latency-format.trace.txt")
        XCTAssertEqual(input.format, .ftraceText)
        XCTAssertTrue(s.malformed.isEmpty, "\(s.malformed.prefix(3))")
        XCTAssertEqual(histogram(s), ["sched_switch": 97, "tracing_mark_write": 1])
        XCTAssertEqual(s.events.first?.ts, 16_963_000)
        XCTAssertEqual(s.events.first?.cpu, 0)
        XCTAssertEqual(s.events.first?.pid, 26999)
        XCTAssertEqual(s.events.first?.flags, TraceFlags(bits: TraceFlags.irqsOff, preemptDepth: 2))
    }

    /// An event that never fired: `trace-cmd report -i empty.dat` prints only `cpus=2`. No records, no error.
    func testEmptyTraceDat() throws {
        let (s, input) = try readAll(toolsDir + "/empty.dat")
        XCTAssertEqual(input.format, .traceDat)
        XCTAssertTrue(s.records.isEmpty && s.malformed.isEmpty)
    }
}
