import XCTest
import Foundation
@testable import TraceIngest

/// perf.data read directly, checked against the `perf script` text perf made from the same file.
final class PerfDataReaderTests: XCTestCase {
    func testPerfDataMatchesPerfScriptNs() throws {
        let (pd, input) = try readAll(hostDir + "/perf.data")
        XCTAssertEqual(input.format, .perfData)
        let (ps, psInput) = try readAll(hostDir + "/perf-script-ns.txt")
        XCTAssertEqual(psInput.format, .perfScript)
        XCTAssertTrue(pd.malformed.isEmpty && ps.malformed.isEmpty)
        XCTAssertEqual(pd.events.count, ps.events.count)
        // Independent count: one perf script line per sample.
        let lines = try String(contentsOfFile: hostDir + "/perf-script-ns.txt", encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertEqual(pd.events.count, lines.count)
        var bad = 0
        for (a, b) in zip(pd.events, ps.events) where !(a.name == b.name && a.ts == b.ts && a.cpu == b.cpu && a.pid == b.pid && a.comm == b.comm) {
            bad += 1
            if bad < 4 { XCTFail("perf.data \(a)\nperf script \(b)") }
        }
        XCTAssertEqual(bad, 0)
        // Raw fields carry flags; perf script has no flag column.
        XCTAssertTrue(pd.events.allSatisfy { $0.flags.present })
        XCTAssertTrue(ps.events.allSatisfy { !$0.flags.present })
        // sched_switch in ftrace's form, state as letters.
        let sw = pd.events.first { $0.name == "sched_switch" }?.payload ?? ""
        XCTAssertTrue(sw.hasPrefix("prev_comm=") && sw.contains(" ==> next_comm="), sw)
    }

    func testPerfScriptMicrosecondsMatchesNs() throws {
        let (us, _) = try readAll(hostDir + "/perf-script.txt")
        let (ns, _) = try readAll(hostDir + "/perf-script-ns.txt")
        XCTAssertEqual(us.events.count, ns.events.count)
        XCTAssertEqual(us.events.map(\.name), ns.events.map(\.name))
        XCTAssertEqual(us.events.map { $0.ts / 1000 }, ns.events.map { $0.ts / 1000 })
    }

    func testLZ4PerfData() throws {
        let dir = try temporaryDirectory(self)
        let out = dir.appendingPathComponent("p.lz4").path
        guard commandOutput(["lz4", "-q", "-f", hostDir + "/perf.data", out]) != nil else { throw XCTSkip("lz4 not installed") }
        let (z, input) = try readAll(out)
        XCTAssertEqual(input.compression, .lz4)
        XCTAssertEqual(input.format, .perfData)
        XCTAssertEqual(z.records, try readAll(hostDir + "/perf.data").0.records)
    }

    func testTruncationsOfPerfData() throws {
        let dir = try temporaryDirectory(self)
        let all = [UInt8](try Data(contentsOf: URL(fileURLWithPath: hostDir + "/perf.data")))
        var cuts = Set([1, 7, 8, 16, 50, 103, 104, 200, all.count - 1, all.count - 8])
        var c = 0
        while c < all.count { cuts.insert(c); c += all.count / 89 }
        for cut in cuts.sorted() where cut > 0 && cut < all.count {
            let p = dir.appendingPathComponent("cut-\(cut).data").path
            try Data(all[0..<cut]).write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try readAll(p, format: .perfData), "cut at \(cut)") { e in
                guard let ie = e as? InputError else { return XCTFail("\(e)") }
                XCTAssertFalse(ie.description.contains("\n"))
                XCTAssertTrue(ie.description.hasPrefix(p), ie.description)
            }
            try? FileManager.default.removeItem(atPath: p)
        }
    }

    func testPerfDataWithoutTracingData() throws {
        let dir = try temporaryDirectory(self)
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: hostDir + "/perf.data")))
        b[72] &= ~2   // clear HEADER_TRACING_DATA in adds_features
        let p = dir.appendingPathComponent("nt.data").path
        try Data(b).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try readAll(p)) { e in
            XCTAssertTrue("\(e)".contains("no tracing data"), "\(e)")
        }
    }

    func testUnparseableEventFormat() throws {
        // Break the sched_switch format text inside the tracing data ("field:" -> "fi#ld:"): libtraceevent rejects it.
        let dir = try temporaryDirectory(self)
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: hostDir + "/perf.data")))
        let needle = Array("name: sched_switch\nID:".utf8)
        guard let at = (0..<(b.count - needle.count)).first(where: { Array(b[$0..<$0 + needle.count]) == needle }) else { return XCTFail("no format") }
        let fieldTag = Array("format:".utf8)
        if let f = (at..<(at + 200)).first(where: { Array(b[$0..<$0 + fieldTag.count]) == fieldTag }) { b[f] = UInt8(ascii: "#") }
        let p = dir.appendingPathComponent("bad-format.data").path
        try Data(b).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try readAll(p)) { e in
            XCTAssertTrue("\(e)".contains("sched_switch") && "\(e)".contains("libtraceevent"), "\(e)")
        }
    }
}

/// `perf script` text shapes of docs/formats.md.
final class PerfScriptReaderTests: XCTestCase {
    func read(_ text: String) -> CollectingSink {
        let names = StringTable()
        let sink = CollectingSink(names: names)
        let r = PerfScriptReader(names: names)
        text.utf8CString.withUnsafeBytes { r.read(UnsafeRawBufferPointer(rebasing: $0.dropLast()), offset: 0, into: sink) }
        return sink
    }

    func testDefaultFields() {
        let s = read("""
                    perf 16579 [000]  1336.236964:                   sched:sched_switch: prev_comm=perf prev_pid=16579 prev_prio=120 prev_state=D ==> next_comm=migration/0 next_pid=18 next_prio=0
                 wl-pkey 15367 [000]  1207.837015:        syscalls:sys_enter_pkey_alloc: flags: 0x00000000, init_val: 0x00000002
              kworker/u8:1 99 [001]   279.856571:         exceptions:page_fault_kernel: address=0x491118 ip=strncpy_from_user error_code=0x0

            """)
        XCTAssertEqual(s.events.count, 3)
        XCTAssertEqual(s.events[0].name, "sched_switch")
        XCTAssertEqual(s.events[0].comm, "perf")
        XCTAssertEqual(s.events[0].pid, 16579)
        XCTAssertEqual(s.events[0].ts, 1336_236_964_000)
        XCTAssertTrue(s.events[0].payload.hasPrefix("prev_comm=perf "))
        XCTAssertEqual(s.events[1].name, "sys_enter_pkey_alloc")
        XCTAssertEqual(s.events[1].payload, "flags: 0x00000000, init_val: 0x00000002")
        XCTAssertEqual(s.events[2].comm, "kworker/u8:1")
        XCTAssertEqual(s.events[2].cpu, 1)
        XCTAssertFalse(s.events[2].flags.present)
    }

    func testNsAndFieldSubsetsAndCallChains() {
        let s = read("""
                      sh 21897 [001]   814.299958840:                        kmem:mm_page_alloc: page=0x10e6d5 pfn=0x10e6d5 order=0
                      wl  7161   279.856571: exceptions:page_fault_kernel: address=0x491118 ip=strncpy_from_user error_code=0x0
            wl-odirect 15367/15368 [000] 1207.837375: probe:get_user_pages_fast: (ffffffff812c4ec0) start=0x7f00 nr_pages=64
            \tffffffff817669a3 __iomap_dio_rw+0x3d3 ([kernel.kallsyms])
            \tffffffff81766bd1 iomap_dio_rw+0x11 ([kernel.kallsyms])

            wl-odirect 15368 [000] 1207.837500: probe:get_user_pages_fast_ret: (ffffffff812c4ec0 <- ffffffff817669a3) ret=64

            """)
        XCTAssertEqual(s.events.count, 4)
        XCTAssertEqual(s.events[0].ts, 814_299_958_840)
        XCTAssertEqual(s.events[1].cpu, 0)
        XCTAssertEqual(s.events[1].pid, 7161)
        XCTAssertEqual(s.events[1].ts, 279_856_571_000)
        XCTAssertEqual(s.events[2].pid, 15368)
        XCTAssertEqual(s.events[2].name, "get_user_pages_fast")
        XCTAssertEqual(s.records.filter { $0.kind == .stackTrace }.count, 1)
        XCTAssertEqual(s.records.filter { $0.kind == .stackFrame }.map(\.payload), ["__iomap_dio_rw", "iomap_dio_rw"])
        XCTAssertEqual(s.events[3].payload, "(ffffffff817669a3 <- ffffffff812c4ec0) ret=64")
        XCTAssertTrue(s.malformed.isEmpty)
    }

    func testMalformedLine() {
        let s = read("this is not a sample\n")
        XCTAssertEqual(s.malformed.count, 1)
    }
}

/// `trace-cmd report` text: plugin-formatted, raw (-R), generated from the real trace.dat when trace-cmd is installed.
final class TraceCmdReportReaderTests: XCTestCase {
    func read(_ text: String) -> CollectingSink {
        let names = StringTable()
        let sink = CollectingSink(names: names)
        let r = TraceCmdReportReader(names: names)
        text.utf8CString.withUnsafeBytes { r.read(UnsafeRawBufferPointer(rebasing: $0.dropLast()), offset: 0, into: sink) }
        return sink
    }

    func testLineShapes() {
        let s = read("""
            cpus=2
                        init-1     [001]     7.093459: page_fault_user:      address=0x5e3c80 ip=0x525046 error_code=0x7
                        init-1     [001]     7.093515: handle_mm_fault:      (ffffffff812d2af0) vma=0xffff88807ff08da8 address=0x5e3c80 flags=0x255
                      <idle>-0     [000]     7.095535: sched_switch:         swapper/0:0 [120] R ==> init:321 [120]
                     wl-done-7910  [000]   328.988047: print:                tracing_mark_write: wl phase fault
                     wl-done-242   [001]     5.013877: __get_user_pages_ret: (ffffffff812c4ec0 <- ffffffff812c6096) ret=1
                     wl-done-242   [001]     5.013533: kernel_stack:         <stack trace >
            => kprobe_trace_func (ffffffff811f55d5)
            => __x64_sys_execve (ffffffff81372732)
                      <idle>-0     [000]     5.009057: sched_switch:          prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=0 next_comm=rcu_preempt next_pid=15 next_prio=120
                        init-1     [001]     5.006370: print:                 ip=tracing_mark_write buf=capture start
                     wl-done-242   [001]     5.013665: __get_user_pages:      __probe_ip=ffffffff812c4ec0 mm=0xffff88800520ba80 start=0x7fffffffeff4
                     wl-done-242   [001]     5.014049: __get_user_pages_ret:  __probe_func=ffffffff812c4ec0 __probe_ret_ip=ffffffff812c6096 ret=1
                        init-1     [001]     5.008869: sched_process_fork:   parent_comm=init parent_pid=1 child_comm=init child_pid=242

            """)
        XCTAssertTrue(s.malformed.isEmpty, "\(s.malformed)")
        let e = s.events
        XCTAssertEqual(e.count, 10)
        XCTAssertEqual(e[0].payload, "address=0x5e3c80 ip=0x525046 error_code=0x7")
        XCTAssertEqual(e[1].payload, "(ffffffff812d2af0) vma=0xffff88807ff08da8 address=0x5e3c80 flags=0x255")
        XCTAssertEqual(e[2].payload, "prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=init next_pid=321 next_prio=120")
        XCTAssertEqual(e[3].name, "tracing_mark_write")
        XCTAssertEqual(e[3].payload, "wl phase fault")
        XCTAssertEqual(e[4].payload, "(ffffffff812c6096 <- ffffffff812c4ec0) ret=1")
        XCTAssertEqual(s.records.filter { $0.kind == .stackTrace }.count, 1)
        XCTAssertEqual(s.records.filter { $0.kind == .stackFrame }.map(\.payload), ["kprobe_trace_func", "__x64_sys_execve"])
        XCTAssertEqual(e[5].payload, "prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=rcu_preempt next_pid=15 next_prio=120")
        XCTAssertEqual(e[6].payload, "capture start")
        XCTAssertEqual(e[7].payload, "(ffffffff812c4ec0) mm=0xffff88800520ba80 start=0x7fffffffeff4")
        XCTAssertEqual(e[8].payload, "(ffffffff812c6096 <- ffffffff812c4ec0) ret=1")
        XCTAssertEqual(e[9].payload, "comm=init pid=1 child_comm=init child_pid=242")
        XCTAssertFalse(e[0].flags.present)
    }

    /// The same capture as trace.dat and as `trace-cmd report` / `trace-cmd report -R` text: same records.
    func testGeneratedReportsMatchTraceDat() throws {
        let dir = try temporaryDirectory(self)
        let (dat, _) = try readAll(workloadDir + "/trace.dat")
        for args in [["report"], ["report", "-R"]] {
            guard let text = commandOutput(["trace-cmd"] + args + [workloadDir + "/trace.dat"]) else { throw XCTSkip("trace-cmd not installed") }
            let p = dir.appendingPathComponent("report.txt").path
            try text.write(toFile: p, atomically: true, encoding: .utf8)
            let (rep, input) = try readAll(p)
            XCTAssertEqual(input.format, .traceCmdReport, "\(args)")
            XCTAssertTrue(rep.malformed.isEmpty, "\(args) \(rep.malformed.prefix(2))")
            XCTAssertEqual(rep.events.count, dat.events.count, "\(args)")
            XCTAssertEqual(rep.records.filter { $0.kind == .stackTrace }.count, dat.records.filter { $0.kind == .stackTrace }.count)
            let repFrames = rep.records.filter { $0.kind == .stackFrame }.count, datFrames = dat.records.filter { $0.kind == .stackFrame }.count
            if args.contains("-R") {
                // -R prints the caller array only as long as the format declares it (8 entries): deeper frames are not in the text.
                XCTAssertTrue(repFrames > 0 && repFrames <= datFrames, "\(repFrames) \(datFrames)")
            } else {
                XCTAssertEqual(repFrames, datFrames)
            }
            var bad = 0
            for (a, b) in zip(rep.events, dat.events) where !(a.name == b.name && a.cpu == b.cpu && a.pid == b.pid && a.ts == (b.ts + 500) / 1000 * 1000) {
                bad += 1
                if bad < 4 { XCTFail("\(args) report \(a)\n trace.dat \(b)") }
            }
            XCTAssertEqual(bad, 0)
            // sched_switch comes out in ftrace's form either way.
            for (a, b) in zip(rep.events, dat.events) where a.name == "sched_switch" {
                XCTAssertEqual(a.payload.split(separator: " ").filter { !$0.hasPrefix("prev_state") }, b.payload.split(separator: " ").filter { !$0.hasPrefix("prev_state") })
            }
        }
    }
}

/// Format detection by content, never by name; `--format-in` forces one.
final class FormatDetectionTests: XCTestCase {
    func sniff(_ s: String) -> TraceFormat? { Array(s.utf8).withUnsafeBytes { TraceFormat.sniff($0) } }

    func testTextFormats() {
        XCTAssertEqual(sniff("# tracer: nop\n#\n"), .ftraceText)
        XCTAssertEqual(sniff("            init-1       [001] .....     5.006370: tracing_mark_write: capture start\n"), .ftraceText)
        XCTAssertEqual(sniff("cpus=2\n            init-1     [001]     5.006370: print:                tracing_mark_write: x\n"), .traceCmdReport)
        XCTAssertEqual(sniff("            init-1     [001]     5.006370: page_fault_user:      address=0x1\n"), .traceCmdReport)
        XCTAssertEqual(sniff("            perf 16579 [000]  1336.236964:    sched:sched_switch: prev_comm=perf\n"), .perfScript)
        XCTAssertEqual(sniff("              wl  7161   279.856571: exceptions:page_fault_kernel: address=0x491118\n"), .perfScript)
    }

    func testRealFiles() throws {
        for (file, format) in [(workloadDir + "/trace", TraceFormat.ftraceText), (workloadDir + "/trace.dat", .traceDat),
                               (hostDir + "/perf.data", .perfData), (hostDir + "/perf-script.txt", .perfScript),
                               (hostDir + "/perf-script-ns.txt", .perfScript)] {
            XCTAssertEqual(try TraceInput(path: file).format, format, file)
        }
    }

    func testOptionNames() {
        XCTAssertEqual(TraceFormat(optionName: "trace.dat"), .traceDat)
        XCTAssertEqual(TraceFormat(optionName: "perf-script"), .perfScript)
        XCTAssertEqual(TraceFormat(optionName: "report"), .traceCmdReport)
        XCTAssertNil(TraceFormat(optionName: "pcap"))
    }
}


/// Truncated text from the tools and corrupt LZ4 around a binary file: clear outcomes, never a crash.
final class TruncatedToolTextTests: XCTestCase {
    func testTruncatedPerfScriptAndReportText() throws {
        let dir = try temporaryDirectory(self)
        var texts = [hostDir + "/perf-script.txt", hostDir + "/perf-script-ns.txt"]
        if let rep = commandOutput(["trace-cmd", "report", workloadDir + "/trace.dat"]) {
            let p = dir.appendingPathComponent("report.txt").path
            try rep.write(toFile: p, atomically: true, encoding: .utf8)
            texts.append(p)
        }
        for src in texts {
            let all = [UInt8](try Data(contentsOf: URL(fileURLWithPath: src)))
            let (full, fullInput) = try readAll(src)
            var c = 1
            while c < all.count {
                let p = dir.appendingPathComponent("cut.txt").path
                try Data(all[0..<c]).write(to: URL(fileURLWithPath: p))
                let (part, input) = try readAll(p, format: fullInput.format)
                XCTAssertEqual(input.format, fullInput.format)
                // At most the cut line is unreadable; everything before it reads as in the whole file.
                XCTAssertLessThanOrEqual(part.malformed.count, 1, "\(src) cut at \(c)")
                XCTAssertLessThanOrEqual(part.events.count, full.events.count)
                c += all.count / 37 + 1
            }
        }
    }

    func testCorruptLZ4AroundTraceDat() throws {
        let dir = try temporaryDirectory(self)
        let z = dir.appendingPathComponent("t.lz4").path
        guard commandOutput(["lz4", "-q", "-f", workloadDir + "/trace.dat", z]) != nil else { throw XCTSkip("lz4 not installed") }
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: z)))
        for i in stride(from: b.count / 2, to: b.count / 2 + 64, by: 1) { b[i] ^= 0x5a }
        let p = dir.appendingPathComponent("bad.lz4").path
        try Data(b).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try readAll(p)) { e in
            let d = "\(e)"
            XCTAssertTrue(d.hasPrefix(p) && !d.contains("\n") && d.lowercased().contains("lz4"), d)
        }
        let cut = dir.appendingPathComponent("cut.lz4").path
        try Data(b.prefix(b.count / 3)).write(to: URL(fileURLWithPath: cut))
        XCTAssertThrowsError(try readAll(cut)) { e in
            XCTAssertTrue("\(e)".hasPrefix(cut), "\(e)")
        }
    }
}
