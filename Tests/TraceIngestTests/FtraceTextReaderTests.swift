import XCTest
@testable import TraceIngest

/// Collects what a reader emits, copying the borrowed text fields.
final class Collector: RawEventSink {
    struct Record {
        var kind: RawRecordKind
        var line: Int
        var ts: UInt64
        var cpu: Int32
        var pid: Int32
        var tgid: Int32
        var flags: TraceFlags
        var name: String
        var comm: String
        var payload: String
        var lost: UInt64
        var userStack: Bool
    }
    var records: [Record] = []
    var malformed: [(line: Int, reason: String)] = []
    let names: StringTable
    init(names: StringTable) { self.names = names }

    func consume(_ e: inout RawEvent) {
        records.append(Record(kind: e.kind, line: e.line, ts: e.timestamp, cpu: e.cpu, pid: e.pid, tgid: e.tgid, flags: e.flags,
                              name: names.string(e.name), comm: String(decoding: e.comm, as: UTF8.self),
                              payload: String(decoding: e.payload, as: UTF8.self), lost: e.lostCount, userStack: e.userStack))
    }
    func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) {
        malformed.append((line, "\(reason)"))
    }
}

func readText(_ text: String) -> Collector {
    let names = StringTable()
    let reader = FtraceTextReader(names: names)
    let c = Collector(names: names)
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { reader.read(UnsafeRawBufferPointer($0), offset: 0, into: c) }
    return c
}

final class FtraceTextReaderTests: XCTestCase {
    // formats.md: tracepoint with 5 flag characters.
    func testTracepointFiveFlags() {
        let c = readText("         wl-done-129     [000] d....     6.400358: page_fault_user: address=0x7f9f2d3b6000 ip=0x401bd1 error_code=0x27\n")
        XCTAssertEqual(c.records.count, 1)
        let r = c.records[0]
        XCTAssertEqual(r.kind, .event)
        XCTAssertEqual(r.comm, "wl-done")
        XCTAssertEqual(r.pid, 129)
        XCTAssertEqual(r.cpu, 0)
        XCTAssertEqual(r.ts, 6_400_358_000)
        XCTAssertEqual(r.name, "page_fault_user")
        XCTAssertEqual(r.payload, "address=0x7f9f2d3b6000 ip=0x401bd1 error_code=0x27")
        XCTAssertTrue(r.flags.present)
        XCTAssertEqual(r.flags.bits & TraceFlags.irqsOff, TraceFlags.irqsOff)
    }

    func testIdleTaskAndPreemptDepth() {
        let c = readText("          <idle>-0       [000] d..2.     7.095535: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=init next_pid=321 next_prio=120\n")
        XCTAssertEqual(c.records[0].comm, "<idle>")
        XCTAssertEqual(c.records[0].pid, 0)
        XCTAssertEqual(c.records[0].flags.preemptDepth, 2)
        XCTAssertEqual(c.records[0].name, "sched_switch")
    }

    func testHardirqFlagAndMigrateDepth() {
        let c = readText("         wl-done-262     [000] d.h1.     9.956675: block_rq_complete: 254,16 RM () 8742 + 2 [0]\n" +
                         "         wl-done-125     [000] ...11     7.217483: kmap_local_pfn_ret: (__kmap_local_page_prot+0x51/0x60 <- __kmap_local_pfn_prot) vaddr=0xfffbb000\n")
        XCTAssertTrue(c.records[0].flags.inHardirq)
        XCTAssertEqual(c.records[0].flags.preemptDepth, 1)
        XCTAssertEqual(c.records[1].flags.preemptDepth, 1)
        XCTAssertEqual(c.records[1].flags.migrateDepth, 1)
        XCTAssertEqual(c.records[1].payload, "(__kmap_local_page_prot+0x51/0x60 <- __kmap_local_pfn_prot) vaddr=0xfffbb000")
    }

    /// A PREEMPT_RT 6.1 kernel (Debian rt-686-pae) prints 7 flag characters: irqs-off, need-resched,
    /// need-resched-lazy, hardirq/softirq, preempt-depth, preempt-lazy-depth, migrate-disable.
    func testSevenFlagCharactersPreemptRT() {
        let c = readText("          rcuc/1-27      [001] ...s.12    14.033903: softirq_entry: vec=7 [action=SCHED]\n" +
                         "      wl-preempt-276     [000] dn..4..    14.034035: sched_wakeup: comm=ktimers/0 pid=15 prio=98 target_cpu=000\n" +
                         "      wl-preempt-276     [000] d...212    13.954237: sched_switch: prev_comm=wl-preempt prev_pid=276 prev_prio=120 prev_state=R+ ==> next_comm=migration/1 next_pid=26 next_prio=0\n" +
                         "            init-1       [001] ..L....    14.300322: kmap_local_page: (__kmap_local_page_prot+0x0/0x60) page=0xf6dfb6e0\n")
        XCTAssertTrue(c.malformed.isEmpty)
        XCTAssertEqual(c.records.count, 4)
        XCTAssertTrue(c.records[0].flags.inSoftirq)
        XCTAssertEqual(c.records[0].flags.preemptDepth, 0)
        XCTAssertEqual(c.records[0].flags.migrateDepth, 2)          // the lazy depth (1) is not the migrate depth
        XCTAssertEqual(c.records[1].flags.bits & TraceFlags.irqsOff, TraceFlags.irqsOff)
        XCTAssertEqual(c.records[1].flags.bits & TraceFlags.needResched, TraceFlags.needResched)
        XCTAssertEqual(c.records[1].flags.preemptDepth, 4)
        XCTAssertEqual(c.records[2].flags.preemptDepth, 2)
        XCTAssertEqual(c.records[2].flags.migrateDepth, 2)
        XCTAssertEqual(c.records[3].flags.bits & TraceFlags.needResched, TraceFlags.needResched)   // need-resched-lazy
        XCTAssertEqual(c.records.map(\.ts), [14_033_903_000, 14_034_035_000, 13_954_237_000, 14_300_322_000])
    }

    func testFourFlagCharactersOlderKernels() {
        let c = readText("            bash-1977  [001] d.s2  1234.567890: softirq_entry: vec=1 [action=TIMER]\n")
        XCTAssertEqual(c.records.count, 1)
        XCTAssertTrue(c.records[0].flags.inSoftirq)
        XCTAssertEqual(c.records[0].flags.preemptDepth, 2)
        XCTAssertEqual(c.records[0].ts, 1_234_567_890_000)
    }

    func testNoFlagColumn() {
        let c = readText("            bash-1977  [001]  1234.567890: sched_wakeup: comm=foo pid=12 prio=120 target_cpu=001\n")
        XCTAssertEqual(c.records.count, 1)
        XCTAssertFalse(c.records[0].flags.present)
        XCTAssertEqual(c.records[0].name, "sched_wakeup")
    }

    func testRecordTgidColumn() {
        let c = readText("            bash-1977    (   1977) [000] .....   250.123456: tracing_mark_write: hello\n" +
                         "          <idle>-0       (-------) [001] d..2.   250.123460: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=x next_pid=3 next_prio=120\n")
        XCTAssertEqual(c.records[0].tgid, 1977)
        XCTAssertEqual(c.records[0].pid, 1977)
        XCTAssertEqual(c.records[0].payload, "hello")
        XCTAssertEqual(c.records[1].tgid, -1)
        XCTAssertEqual(c.records[1].cpu, 1)
    }

    func testCommWithSpacesDashesAndBrackets() {
        let c = readText("     Web Content-4242    [001] .....   100.000001: page_fault_user: address=0x1 ip=0x2 error_code=0x4\n" +
                         " kworker/u4:1-ev-77      [000] .....   100.000002: tracing_mark_write: x\n" +
                         "          a[1] b-9       [000] .....   100.000003: tracing_mark_write: y\n")
        XCTAssertEqual(c.records.map(\.comm), ["Web Content", "kworker/u4:1-ev", "a[1] b"])
        XCTAssertEqual(c.records.map(\.pid), [4242, 77, 9])
    }

    func testSyscallLines() {
        let c = readText("         wl-done-129     [000] ...1.     6.400152: sys_pkey_mprotect(start: 7f9f2d3b5000, len: 10000, prot: 3, pkey: 1)\n" +
                         "         wl-done-262     [001] ...1.    10.145249: sys_memfd_secret -> 0x4\n")
        XCTAssertEqual(c.records[0].name, "sys_enter_pkey_mprotect")
        XCTAssertEqual(c.records[0].payload, "(start: 7f9f2d3b5000, len: 10000, prot: 3, pkey: 1)")
        XCTAssertEqual(c.records[1].name, "sys_exit_memfd_secret")
        XCTAssertEqual(c.records[1].payload, "0x4")
    }

    func testMarkerAndFunctionTracer() {
        let c = readText("            init-1       [001] .....     9.884342: tracing_mark_write: capture start\n" +
                         "            bash-10     [000] .....    12.000001: do_sys_open <-__x64_sys_openat\n")
        XCTAssertEqual(c.records[0].name, "tracing_mark_write")
        XCTAssertEqual(c.records[0].payload, "capture start")
        XCTAssertEqual(c.records[1].name, "function")
        XCTAssertEqual(c.records[1].payload, "do_sys_open <-__x64_sys_openat")
    }

    func testStackTraceEntryAndFrames() {
        let c = readText("""
                 wl-done-129     [000] .....     7.466805: <stack trace>
         => get_user_pages_fast
         => __iov_iter_get_pages_alloc
                 wl-done-129     [000] .....     7.466900: <user stack trace>
         => <00007f1234567890>

        """)
        XCTAssertEqual(c.records.map(\.kind), [.stackTrace, .stackFrame, .stackFrame, .stackTrace, .stackFrame])
        XCTAssertEqual(c.records[1].payload, "get_user_pages_fast")
        XCTAssertEqual(c.records[2].payload, "__iov_iter_get_pages_alloc")
        XCTAssertFalse(c.records[0].userStack)
        XCTAssertTrue(c.records[3].userStack)
    }

    func testLostEventsAndBufferStarted() {
        let c = readText("CPU:1 [LOST 1234 EVENTS]\nCPU:0 [LOST EVENTS]\n##### CPU 1 buffer started ####\n")
        XCTAssertEqual(c.records.map(\.kind), [.lostEvents, .lostEvents, .bufferStarted])
        XCTAssertEqual(c.records[0].cpu, 1)
        XCTAssertEqual(c.records[0].lost, 1234)
        XCTAssertEqual(c.records[1].lost, 0)
        XCTAssertEqual(c.records[2].cpu, 1)
    }

    func testHeaderIsReadNotCounted() {
        let names = StringTable()
        let reader = FtraceTextReader(names: names)
        let c = Collector(names: names)
        let text = "# tracer: nop\n#\n# entries-in-buffer/entries-written: 10118/10120   #P:2\n#\n#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n\n"
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { reader.read(UnsafeRawBufferPointer($0), offset: 0, into: c) }
        XCTAssertEqual(c.records.count, 0)
        XCTAssertEqual(c.malformed.count, 0)
        XCTAssertEqual(reader.headerEntriesInBuffer, 10118)
        XCTAssertEqual(reader.headerEntriesWritten, 10120)
        XCTAssertEqual(reader.headerCPUs, 2)
        XCTAssertEqual(reader.tracer, "nop")
    }

    func testMalformedLinesAreReportedWithLineNumbers() {
        let c = readText("""
        # tracer: nop
        this is not a trace line
                    init-1       [001] .....     notatime: tracing_mark_write: x
                    init-1       [001] .q...     9.884342: tracing_mark_write: x
        \u{01}\u{02}\u{ff}garbage
                    init-1       [001] .....     9.884342: tracing_mark_write: ok

        """)
        XCTAssertEqual(c.records.count, 1)
        XCTAssertEqual(c.malformed.map(\.line), [2, 3, 4, 5])
    }

    /// `printf 'one write:\nsecond line\nthird line\n' > trace_marker` (SampleTraces/tools/same-buffer.trace.txt):
    /// one event; the lines after it are its text, up to the next record.
    func testMultiLineMarkerContinuesOverTheFollowingLines() {
        let c = readText("""
                  printf-13747   [001] ...1.   384.748085: tracing_mark_write: one write:
        second line
        third line
                  printf-13747   [001] ...1.   384.748097: mm_page_alloc: page=00000000f5ae56ce pfn=0x104828 order=0 migratetype=0 gfp_flags=GFP_NOWAIT
        not a continuation: after a page allocation
                  printf-13747   [001] ...1.   384.748098: bprint:               foo: first
         indented second
        CPU:1 [LOST 3 EVENTS]

        """)
        let events = c.records.filter { $0.kind == .event }
        XCTAssertEqual(events.map(\.name), ["tracing_mark_write", "mm_page_alloc", "bprint"])
        XCTAssertEqual(events[0].payload, "one write:")
        XCTAssertEqual(c.malformed.map(\.line), [5])
        XCTAssertEqual(c.records.last?.kind, .lostEvents)
    }

    /// Found by `scripts/fuzz trace-cmd-report`: a line that starts with "[2]" made the reader look
    /// one byte before the chunk for the TASK-PID column.
    func testBracketAtTheVeryStartOfTheInput() {
        let c = readText("[2]")
        XCTAssertEqual(c.records.count, 0)
        XCTAssertEqual(c.malformed.map(\.line), [1])
        // And ")[0]": a tgid-like ")" with nothing before it.
        let d = readText(")[0]\n")
        XCTAssertEqual(d.records.count, 0)
        XCTAssertEqual(d.malformed.map(\.line), [1])
    }

    func testCRLFAndNoTrailingNewline() {
        let c = readText("            init-1       [001] .....     9.884342: tracing_mark_write: a\r\n            init-1       [001] .....     9.884343: tracing_mark_write: b")
        XCTAssertEqual(c.records.map(\.payload), ["a", "b"])
    }

    func testTimestampPrecisionAndOverflow() {
        let c = readText("            init-1       [001] .....     1.123456789: tracing_mark_write: ns\n" +
                         "            init-1       [001] .....     99999999999999999999.000001: tracing_mark_write: overflow\n" +
                         "            init-1       [001] .....     123456: tracing_mark_write: counter clock\n")
        XCTAssertEqual(c.records.count, 2)
        XCTAssertEqual(c.records[0].ts, 1_123_456_789)
        XCTAssertEqual(c.records[1].ts, 123_456)
        XCTAssertEqual(c.malformed.count, 1)
    }
}
