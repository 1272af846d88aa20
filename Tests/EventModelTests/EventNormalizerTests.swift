import XCTest
import Foundation
import TraceIngest
@testable import EventModel

final class Sink: ProtEventSink {
    var events: [ProtEvent] = []
    var lost: [(Int32, UInt64)] = []
    func consume(_ e: ProtEvent) { events.append(e) }
    func lost(cpu: Int32, count: UInt64, line: Int) { lost.append((cpu, count)) }
    func bufferStarted(cpu: Int32, line: Int) {}
    var ticks = 0
    func tick(cpu: Int32, pid: Int32, timestamp: UInt64, flags: TraceFlags, line: Int) { ticks += 1 }
    /// Learns from the address facts in front of this sink (`normalize`).
    var resolver = AddressResolver(profile: KernelProfile(), userFixedLayout: false, userFixedArch: false)
}

func normalize(_ text: String, probeMap: ProbeMap = ProbeMap()) -> (EventNormalizer, Sink) {
    let names = StringTable(), comms = StringTable(), symbols = StringTable()
    let sink = Sink()
    let n = EventNormalizer(probeMap: probeMap, names: names, comms: comms, symbols: symbols,
                            into: AddressLearning(resolver: sink.resolver, downstream: sink))
    let reader = FtraceTextReader(names: names)
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { reader.read(UnsafeRawBufferPointer($0), offset: 0, into: n) }
    n.finish()
    return (n, sink)
}

final class EventNormalizerTests: XCTestCase {
    func testKprobesRecognizedByFunctionWhateverTheirName() {
        let (n, s) = normalize("""
                 wl-done-125     [000] ...1.     7.217363: my_odd_name: (__kmap_local_page_prot+0x0/0x60) page=0xf6dfd788
                 wl-done-125     [000] ...1.     7.217423: kmap_local_pfn: (__kmap_local_pfn_prot+0x0/0x180) pfn=0x7fafd
                 wl-done-125     [000] ...11     7.217483: r1: (__kmap_local_page_prot+0x51/0x60 <- __kmap_local_pfn_prot) vaddr=0xfffbb000
                 wl-done-125     [000] ...11     7.217490: kunmap_local: (kunmap_local_indexed+0x0/0x110) vaddr=0xfffbbfa0
                 wl-done-124     [000] .....     8.234370: kmap_high: (kmap_high+0x0/0x260) page=0xf6ded6a8

        """)
        XCTAssertEqual(s.events.count, 5)
        guard case let .kmap(api, page, _) = s.events[0].kind else { return XCTFail() }
        XCTAssertEqual(api, .kmapLocalPage)
        XCTAssertEqual(page, 0xf6dfd788)
        guard case let .kmapReturn(rapi, vaddr) = s.events[2].kind else { return XCTFail() }
        XCTAssertEqual(rapi, .kmapLocalPfn)
        XCTAssertEqual(vaddr, 0xfffbb000)
        XCTAssertEqual(n.symbols.string(s.events[2].site), "__kmap_local_page_prot")
        XCTAssertEqual(s.resolver.profile.arch, .i386)
        XCTAssertEqual(s.resolver.calibration.pairs, 1)
    }

    func testSchedSwitchWithSpacesInComm() {
        let (n, s) = normalize("          <idle>-0       [000] d..2.     7.095535: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=Web Content next_pid=321 next_prio=120\n")
        guard case let .contextSwitch(prev, _, runnable, next, nextComm) = s.events[0].kind else { return XCTFail() }
        XCTAssertEqual(prev, 0)
        XCTAssertEqual(next, 321)
        XCTAssertTrue(runnable)
        XCTAssertEqual(n.comms.string(nextComm), "Web Content")
    }

    func testStackTraceGivesTheCallSiteBelowTheProbedFunction() {
        let (n, s) = normalize("""
              wl-procmem-240     [000] .....     7.397931: kmap_high: (kmap_high+0x0/0x260) page=0xf6dece00
              wl-procmem-240     [000] .....     7.397940: <stack trace>
         => kprobe_trace_func
         => kprobe_dispatcher
         => aggr_pre_handler
         => kprobe_ftrace_handler
         => ftrace_regs_call
         => kmap_high
         => access_remote_vm
         => mem_rw

        """)
        XCTAssertEqual(s.events.count, 1)
        XCTAssertEqual(n.symbols.string(s.events[0].site), "access_remote_vm")
        XCTAssertEqual(n.stats.stackTraces, 1)
        XCTAssertEqual(n.stats.events, 1)
    }

    func testUnmappedIgnoredAndMalformedEventsAreCounted() {
        let (n, s) = normalize("""
                    init-1       [001] .....     9.884342: sched_wakeup: comm=x pid=2 prio=120 target_cpu=001
                    init-1       [001] .....     9.884343: get_user_pages_remote: (__get_user_pages+0x0/0x30) mm=0x1
                    init-1       [001] .....     9.884344: kunmap_high: (kunmap_high+0x0/0x50)
                    init-1       [001] .....     9.884345: tracing_mark_write: hi

        """)
        XCTAssertEqual(n.stats.events, 4)
        XCTAssertEqual(n.stats.unmapped, 1)
        XCTAssertEqual(n.stats.ignored, 1)       // __get_user_pages is an internal helper: IGNORE
        XCTAssertEqual(n.stats.malformedEvents, 1) // kunmap_high without an argument
        XCTAssertEqual(s.events.count, 1)
    }

    func testUserProbeMapOverridesDefaults() throws {
        var pm = ProbeMap()
        try pm.load(data: Data("""
        {"probes": [
          {"event": "my_unmap", "maps_to": "KUNMAP_LOCAL", "fields": {"vaddr": "addr"}},
          {"function": "kmap_high", "probe": "entry", "maps_to": "IGNORE"}
        ]}
        """.utf8), path: "pm.json")
        let (n, s) = normalize("""
                    init-1       [001] .....     9.884342: my_unmap: addr=0xfffbb000 other=1
                    init-1       [001] .....     9.884343: kmap_high: (kmap_high+0x0/0x260) page=0xf6ded6a8

        """, probeMap: pm)
        XCTAssertEqual(s.events.count, 1)
        guard case let .kunmapLocal(v) = s.events[0].kind else { return XCTFail() }
        XCTAssertEqual(v, 0xfffbb000)
        XCTAssertEqual(n.stats.ignored, 1)
    }

    func testBadProbeMapIsAClearError() {
        var pm = ProbeMap()
        XCTAssertThrowsError(try pm.load(data: Data(#"[{"event": "x", "maps_to": "NOPE"}]"#.utf8), path: "pm.json")) { e in
            XCTAssertTrue("\(e)".contains("pm.json: invalid probe map: rule 0: maps_to \"NOPE\""), "\(e)")
        }
    }

    func testCalibrationFromPairs() {
        var c = PageCalibration()
        c.observe(page: 0xf5a09000 + 0x7fafd * 40, pfn: 0x7fafd)
        c.observe(page: 0xf5a09000 + 0x7fa00 * 40, pfn: 0x7fa00)
        XCTAssertNil(c.base, "two pairs propose, a third confirms")
        c.observe(page: 0xf5a09000 + 0x7f000 * 40, pfn: 0x7f000)
        XCTAssertEqual(c.base, 0xf5a09000)
        XCTAssertEqual(c.size, 40)
        c.observe(page: 0x1234, pfn: 0x10)
        XCTAssertEqual(c.mismatches, 1)
    }

    func testProfileResolvesX86Layout() {
        var p = KernelProfile(arch: .x86_64)
        p.memMapBase = 0xffffea0000000000
        p.structPageSize = 64
        p.pageOffsetBase = 0xffff888000000000
        XCTAssertEqual(p.pfn(forPage: 0xffffea0000184ac0), 0x612b)   // capture-recipe.md, confirmed by the filemap event
        XCTAssertEqual(p.pfn(forDirectMapAddress: 0xffff88800612b000), 0x612b)
    }
}

final class ProtEventTagTests: XCTestCase {
    func testOrdinalIsThePositionInAllCases() {
        for (i, t) in ProtEventTag.allCases.enumerated() { XCTAssertEqual(t.ordinal, i, "\(t)") }
    }
}

/// Fuzz crash (perf-data-zstd): two `PERF_RECORD_LOST` records whose counts add past `UInt64.max` trapped on
/// the overflow. The count saturates instead.
final class LostEventCountTests: XCTestCase {
    func testLostCountsSaturateInsteadOfTrapping() {
        let names = StringTable()
        let n = EventNormalizer(probeMap: ProbeMap(), names: names, comms: StringTable(), symbols: StringTable(), into: ProtEventRecorder())
        for count in [UInt64.max - 1, 5] {
            var e = RawEvent()
            e.kind = .lostEvents
            e.lostCount = count
            n.consume(&e)
        }
        n.finish()
        XCTAssertEqual(n.stats.lostEvents, UInt64.max)
        XCTAssertEqual(n.stats.lostMarkers, 2)
        var total = IngestStats()
        total.add(n.stats, lineBase: 0)
        total.add(n.stats, lineBase: 0)
        XCTAssertEqual(total.lostEvents, UInt64.max)
    }
}

/// What the normalizer tells the binary readers about an event's payload text (`readsPayloadText`),
/// and how it reads an event whose text was not printed.
final class PayloadTextTests: XCTestCase {
    /// A binary-reader event: `fields` as `RawField`s, and the text only when given.
    func consume(_ n: EventNormalizer, _ name: String, text: String?, fields: [(String, UInt64, RawField.Form)]) {
        var payload = Array((text ?? "").utf8)
        let labels = fields.map { f -> UnsafeMutableRawBufferPointer in
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: f.0.utf8.count, alignment: 1)
            b.copyBytes(from: f.0.utf8)
            return b
        }
        defer { labels.forEach { $0.deallocate() } }
        let raw = zip(labels, fields).map { RawField(label: UnsafeRawBufferPointer($0.0), value: $0.1.1, form: $0.1.2) }
        raw.withUnsafeBufferPointer { rf in
            payload.withUnsafeMutableBytes { p in
                var e = RawEvent()
                e.name = n.names.intern(name)
                e.flags = TraceFlags(bits: 0)
                e.payload = UnsafeRawBufferPointer(p)
                e.fields = rf
                n.consume(&e)
            }
        }
    }

    func testWhichEventsNeedTheirText() {
        let names = StringTable()
        let n = EventNormalizer(probeMap: ProbeMap(), names: names, comms: StringTable(), symbols: StringTable(), into: ProtEventRecorder())
        n.wantedTags = [.pageAlloc, .contextSwitch, .kmap]
        let alloc = names.intern("mm_page_alloc")
        XCTAssertNil(n.readsPayloadText(of: alloc), "no binding before the first event")
        consume(n, "mm_page_alloc", text: "pfn=0x10 order=0", fields: [("pfn", 0x10, .hex), ("order", 0, .decimal)])
        XCTAssertEqual(n.readsPayloadText(of: alloc), false, "a wanted kind whose fields are all numbers")
        consume(n, "mm_page_free", text: "pfn=0x10 order=0", fields: [("pfn", 0x10, .hex), ("order", 0, .decimal)])
        XCTAssertEqual(n.readsPayloadText(of: names.intern("mm_page_free")), false, "PAGE_FREE: not wanted")
        consume(n, "tlb_flush", text: "pages=1 reason=0", fields: [("pages", 1, .decimal), ("reason", 0, .decimal)])
        XCTAssertEqual(n.readsPayloadText(of: names.intern("tlb_flush")), false, "unmapped")
        consume(n, "sched_switch", text: "prev_comm=a prev_pid=1 prev_prio=120 prev_state=S ==> next_comm=b next_pid=2 next_prio=120", fields: [])
        XCTAssertEqual(n.readsPayloadText(of: names.intern("sched_switch")), true, "comm strings")
        consume(n, "kmap_high", text: "(kmap_high+0x0/0x60) page=0xf6dfd788", fields: [("page", 0xf6df_d788, .hex)])
        XCTAssertEqual(n.readsPayloadText(of: names.intern("kmap_high")), true, "a kprobe: its location")
        // Without text, the event is read from its numbers alone, as with it.
        consume(n, "mm_page_alloc", text: nil, fields: [("pfn", 0x20, .hex), ("order", 1, .decimal)])
        n.finish()
        XCTAssertEqual(n.stats.malformed, 0)
        XCTAssertEqual(n.stats.events, 6)
    }

    /// Which tracepoints' formats a trace.dat reader parses (`ProbeMap.tracepointFieldReader`): those
    /// mapped to a wanted kind made from fields; not syscalls (made from the name), not unmapped ones.
    func testWhichFormatsAreParsed() {
        let all = ProbeMap().tracepointFieldReader(wantedTags: nil)
        XCTAssertTrue(all("mm_page_alloc"))
        XCTAssertTrue(all("sched_switch"))
        XCTAssertFalse(all("sys_enter_write"), "SYSCALL is made from the event's name alone")
        XCTAssertFalse(all("tlb_flush"), "unmapped")
        let highmem = ProbeMap().tracepointFieldReader(wantedTags: [.contextSwitch, .irqEnter, .irqExit])
        XCTAssertTrue(highmem("sched_switch"))
        XCTAssertFalse(highmem("mm_page_alloc"), "PAGE_ALLOC not wanted")
        for name in ["mm_page_alloc", "sched_switch", "sys_enter_write", "tlb_flush", "softirq_entry"] {
            XCTAssertEqual(all(name), ProbeMap().readsFields(ofTracepoint: name, wantedTags: nil), name)
        }
    }

    /// A rule reading a field the event lacks (`pfn` renamed to `frame`): the malformed line shows the
    /// text the reader did not print, made from the numbers (`?` for what is not a number).
    func testMalformedEventWithoutTextShowsItsNumbers() throws {
        var map = ProbeMap()
        try map.load(data: Data(#"[{"event": "mm_page_alloc", "maps_to": "PAGE_ALLOC", "fields": {"pfn": "frame"}}]"#.utf8), path: "map.json")
        let n = EventNormalizer(probeMap: map, names: StringTable(), comms: StringTable(), symbols: StringTable(), into: ProtEventRecorder())
        consume(n, "mm_page_alloc", text: "pfn=0x10 order=0 gfp_flags=GFP_KERNEL", fields: [("pfn", 0x10, .hex), ("order", 0, .decimal), ("gfp_flags", 0, .other)])
        consume(n, "mm_page_alloc", text: nil, fields: [("pfn", 0x10, .hex), ("order", 0, .decimal), ("gfp_flags", 0, .other)])
        consume(n, "mm_page_alloc", text: nil, fields: [("pfn", 0x20, .hex), ("order", 3, .decimal), ("nid", UInt64(bitPattern: -1), .negativeDecimal)])
        n.finish()
        XCTAssertEqual(n.stats.malformed, 3)
        XCTAssertEqual(n.stats.malformedExamples.map(\.text), ["pfn=0x10 order=0 gfp_flags=GFP_KERNEL", "pfn=0x10 order=0 gfp_flags=?", "pfn=0x20 order=3 nid=-1"])
    }
}
