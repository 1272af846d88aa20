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
