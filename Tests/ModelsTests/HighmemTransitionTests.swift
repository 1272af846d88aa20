import XCTest
import TraceIngest
import EventModel
import Replay
@testable import Models

/// Records every observation.
final class Recorder: ObservationSink {
    var windows: [ExposureWindow] = []
    var accesses: [AccessRecord] = []
    var anomalies: [Anomaly] = []
    func window(_ w: ExposureWindow) { windows.append(w) }
    func access(_ a: AccessRecord) { accesses.append(a) }
    func anomaly(_ a: Anomaly) { anomalies.append(a) }

    func granted(_ alias: String? = nil) -> [ExposureWindow] { windows.filter { $0.layer == .granted && (alias == nil || "\($0.alias)" == alias) } }
    func effective(_ alias: String? = nil) -> [ExposureWindow] { windows.filter { $0.layer == .effective && (alias == nil || "\($0.alias)" == alias) } }
    var anomalyKinds: [String] { anomalies.map(\.kind) }
}

/// Drives the HIGHMEM model through the replay engine with hand-built events (timestamps in µs).
final class HighmemScript {
    let recorder = Recorder()
    let resolver = AddressResolver(profile: KernelProfile(arch: .i386), userFixedLayout: false, userFixedArch: true)
    lazy var model = HighmemModel(resolver: resolver)
    lazy var engine = ReplayEngine(models: [model], sink: recorder)
    var line = 0
    static let hardirq = TraceFlags(bits: TraceFlags.hardirq, preemptDepth: 1)
    static let task = TraceFlags(bits: 0)

    func send(_ us: UInt64, cpu: Int32 = 0, pid: Int32 = 100, flags: TraceFlags = HighmemScript.task, site: String = "", _ kind: ProtEventKind) {
        line += 1
        engine.consume(ProtEvent(line: line, timestamp: us * 1000, cpu: cpu, pid: pid, comm: 1, flags: flags,
                                 site: site.isEmpty ? 0 : 7, kind: kind))
    }
    /// `kmap_local_page(page)` of a highmem page: entry, nested pfn entry, pfn return.
    func kmapLocal(_ us: UInt64, page: UInt64, pfn: UInt64, vaddr: UInt64, cpu: Int32 = 0, pid: Int32 = 100, flags: TraceFlags = HighmemScript.task) {
        send(us, cpu: cpu, pid: pid, flags: flags, .kmap(.kmapLocalPage, page: page, pfn: nil))
        send(us, cpu: cpu, pid: pid, flags: flags, .kmap(.kmapLocalPfn, page: nil, pfn: pfn))
        send(us, cpu: cpu, pid: pid, flags: flags, .kmapReturn(.kmapLocalPfn, vaddr: vaddr))
        send(us, cpu: cpu, pid: pid, flags: flags, site: "caller", .kmapReturn(.kmapLocalPage, vaddr: vaddr))
    }
    func kunmapLocal(_ us: UInt64, vaddr: UInt64, cpu: Int32 = 0, pid: Int32 = 100, flags: TraceFlags = HighmemScript.task) {
        send(us, cpu: cpu, pid: pid, flags: flags, .kunmapLocal(vaddr: vaddr))
    }
    func kmapHigh(_ us: UInt64, page: UInt64, vaddr: UInt64, pid: Int32 = 100) {
        send(us, pid: pid, .kmap(.kmapHigh, page: page, pfn: nil))
        send(us, pid: pid, site: "caller", .kmapReturn(.kmapHigh, vaddr: vaddr))
    }
    func switchTo(_ us: UInt64, cpu: Int32 = 0, from prev: Int32, to next: Int32, prevRunnable: Bool = true) {
        send(us, cpu: cpu, pid: prev, flags: TraceFlags(bits: TraceFlags.irqsOff, preemptDepth: 2),
             .contextSwitch(prevPid: prev, prevComm: 1, prevRunnable: prevRunnable, nextPid: next, nextComm: 2))
    }
    func finish() { engine.finish() }
}

final class HighmemTransitionTests: XCTestCase {
    // §7.3 row KMAP(kmap): a new slot opens the EFFECTIVE window (count 1) and a GRANTED one (count 2).
    // Row KUNMAP(kmap): count--, the GRANTED window closes; at count 1 the EFFECTIVE window stays open (stale).
    // Row PKMAP_FLUSH: count-1 slots are cleared, their EFFECTIVE window closes with cause flush.
    func testKmapHighStaleUntilExplicitFlush() {
        let s = HighmemScript()
        s.kmapHigh(10, page: 0xf6de0000, vaddr: 0xff001000)
        s.send(30, .kunmapHigh(page: 0xf6de0000))
        XCTAssertEqual(s.recorder.granted("pkmap").map(\.durationNs), [20_000])
        XCTAssertTrue(s.recorder.effective("pkmap").isEmpty, "stale slot keeps the effective window open")
        s.send(100, .pkmapFlush)
        let eff = s.recorder.effective("pkmap")
        XCTAssertEqual(eff.count, 1)
        XCTAssertEqual(eff[0].openNs, 10_000)
        XCTAssertEqual(eff[0].closeNs, 100_000)
        XCTAssertEqual(eff[0].closeCause, .flush)
        XCTAssertEqual(eff[0].scope, .global)
        XCTAssertEqual(s.model.counters["pkmap_flushes"], 1)
    }

    // A second kmap of a mapped page only bumps the count: no new EFFECTIVE window; a flush while
    // a user holds it does not close it.
    func testKmapHighSharedSlotSurvivesFlushWhileUsed() {
        let s = HighmemScript()
        s.kmapHigh(10, page: 0xf6de0000, vaddr: 0xff001000)
        s.kmapHigh(20, page: 0xf6de0000, vaddr: 0xff001000, pid: 200)
        s.send(30, pid: 200, .kunmapHigh(page: 0xf6de0000))
        s.send(40, .pkmapFlush)
        XCTAssertTrue(s.recorder.effective().isEmpty)
        // The caller's own grant was released (pid 200's, opened at 20).
        XCTAssertEqual(s.recorder.granted().map(\.openNs), [20_000])
        s.send(50, .kunmapHigh(page: 0xf6de0000))
        s.send(60, .pkmapFlush)
        XCTAssertEqual(s.recorder.effective().map(\.durationNs), [50_000])
        XCTAssertEqual(s.model.counters["pkmap_installs"], 1)
    }

    // The slot search is linear: a new slot at a lower address means it wrapped and flushed.
    func testFlushInferredFromSlotWrap() {
        let s = HighmemScript()
        s.kmapHigh(10, page: 0xa000, vaddr: 0xff005000)
        s.send(20, .kunmapHigh(page: 0xa000))
        s.kmapHigh(30, page: 0xb000, vaddr: 0xff001000)   // wrapped
        let eff = s.recorder.effective("pkmap")
        XCTAssertEqual(eff.count, 1)
        XCTAssertEqual(eff[0].closeCause, .flushInferred)
        XCTAssertEqual(eff[0].durationNs, 20_000)
        XCTAssertEqual(s.model.counters["pkmap_flushes_inferred"], 1)
    }

    // Row KMAP(kmap_local): push, GRANTED ctx scope from the kmap_local_page entry.
    // Row KUNMAP(kmap_local): pops the top.
    func testKmapLocalGrantedAndEffective() {
        let s = HighmemScript()
        s.kmapLocal(100, page: 0xf6dfd788, pfn: 0x7fafd, vaddr: 0xfffbb000)
        s.kunmapLocal(160, vaddr: 0xfffbbfa0)
        XCTAssertEqual(s.recorder.granted().count, 1)
        let g = s.recorder.granted()[0]
        XCTAssertEqual(g.scope, .ctx)
        XCTAssertEqual(g.frame, .pfn(0x7fafd))
        XCTAssertEqual(g.durationNs, 60_000)
        XCTAssertEqual(g.closeCause, .unmap)
        XCTAssertEqual(s.recorder.effective().map(\.durationNs), [60_000])
        XCTAssertTrue(s.recorder.anomalies.isEmpty)
    }

    // A lowmem page comes back through the direct map: no slot, no window; its kunmap_local pops nothing.
    func testLowmemKmapLocalIsNotAWindow() {
        let s = HighmemScript()
        s.kmapLocal(100, page: 0xf6dfd788, pfn: 0x7fafd, vaddr: 0xfffbb000)
        s.send(110, .kmap(.kmapLocalPage, page: 0xf5b00000, pfn: nil))
        s.send(111, .kmapReturn(.kmapLocalPage, vaddr: 0xc2dbc000))
        s.kunmapLocal(120, vaddr: 0xc2dbc000)
        s.kunmapLocal(130, vaddr: 0xfffbb000)
        XCTAssertEqual(s.recorder.granted().map(\.durationNs), [30_000])
        XCTAssertEqual(s.model.counters["kmap_local_lowmem"], 1)
        XCTAssertEqual(s.model.counters["kunmap_local_lowmem"], 1)
        XCTAssertTrue(s.recorder.anomalies.isEmpty)
    }

    // Row KUNMAP(kmap_local) with vaddr != top: anomaly, the TOP closes, the named entry stays open.
    func testOutOfOrderUnmapPopsTop() {
        let s = HighmemScript()
        s.kmapLocal(100, page: 1, pfn: 0x100, vaddr: 0xfffbb000)
        s.kmapLocal(110, page: 2, pfn: 0x200, vaddr: 0xfffba000)
        s.kunmapLocal(120, vaddr: 0xfffbb000)   // names the bottom
        XCTAssertEqual(s.recorder.anomalyKinds, ["out_of_order_unmap"])
        XCTAssertEqual(s.recorder.granted().map(\.frame), [.pfn(0x200)])
        XCTAssertEqual(s.recorder.granted()[0].closeCause, .outOfOrderPop)
        s.kunmapLocal(130, vaddr: 0xfffba000)   // names the (already popped) top: pops the remaining entry
        XCTAssertEqual(s.recorder.granted().map(\.frame), [.pfn(0x200), .pfn(0x100)])
        XCTAssertEqual(s.recorder.anomalyKinds, ["out_of_order_unmap", "out_of_order_unmap"])
    }

    // Row CTX_SWITCH: the EFFECTIVE window is suspended while the task is off-CPU (E8).
    func testPreemptionSplitsEffectiveWindow() {
        let s = HighmemScript()
        s.kmapLocal(100, page: 1, pfn: 0x100, vaddr: 0xfffbb000)
        s.switchTo(120, from: 100, to: 200)
        s.switchTo(150, from: 200, to: 100)
        s.kunmapLocal(170, vaddr: 0xfffbb000)
        XCTAssertEqual(s.recorder.granted().map(\.durationNs), [70_000])
        XCTAssertEqual(s.recorder.effective().map(\.durationNs), [20_000, 20_000])
        XCTAssertEqual(s.recorder.effective().map(\.closeCause), [.schedOut, .unmap])
    }

    // Row TASK_MIGRATE while the stack is non-empty.
    func testMigrationWithLocalKmapIsAnAnomaly() {
        let s = HighmemScript()
        s.kmapLocal(100, page: 1, pfn: 0x100, vaddr: 0xfffbb000)
        s.switchTo(120, from: 100, to: 200)
        s.switchTo(130, cpu: 1, from: 300, to: 100)
        XCTAssertEqual(s.recorder.anomalyKinds, ["migrate_with_local_kmap"])
        s.send(140, cpu: 1, .taskMigrate(pid: 100, fromCPU: 1, toCPU: 0))
        XCTAssertEqual(s.recorder.anomalyKinds, ["migrate_with_local_kmap"], "reported once while the stack is held")
    }

    // kmap_local in an IRQ pushes on the interrupted task's stack; holder is the IRQ instance (E7).
    // Row IRQ_EXIT with entries pushed by that IRQ.
    func testKmapLocalInIRQAndLeakAcrossExit() {
        let s = HighmemScript()
        s.send(100, flags: HighmemScript.hardirq, .irqEnter(.hardirq, vector: 11))
        s.kmapLocal(101, page: 1, pfn: 0x100, vaddr: 0xfffbb000, flags: HighmemScript.hardirq)
        s.kunmapLocal(105, vaddr: 0xfffbb000, flags: HighmemScript.hardirq)
        s.kmapLocal(106, page: 2, pfn: 0x200, vaddr: 0xfffbb000, flags: HighmemScript.hardirq)
        s.send(110, flags: HighmemScript.hardirq, .irqExit(.hardirq, vector: 11))
        XCTAssertEqual(s.recorder.granted().map(\.holderContext), [.hardirq])
        XCTAssertEqual(s.recorder.anomalyKinds, ["leaked_across_irq_exit"])
        // The task then pops the IRQ's slot: a cross-context release.
        s.kunmapLocal(120, vaddr: 0xfffbb000)
        XCTAssertEqual(s.recorder.anomalyKinds, ["leaked_across_irq_exit", "cross_ctx_local"])
    }

    // The flags alone (no irq events) start and end IRQ instances.
    func testIRQContextFromFlagsOnly() {
        let s = HighmemScript()
        s.kmapLocal(101, page: 1, pfn: 0x100, vaddr: 0xfffbb000, flags: HighmemScript.hardirq)
        s.send(110, .marker(phase: 0)) // back in task context: the hardirq instance ended with its slot pushed
        XCTAssertEqual(s.recorder.anomalyKinds, ["leaked_across_irq_exit"])
    }

    // Stack depth beyond KM_MAX_IDX-1.
    func testOverflow() {
        let s = HighmemScript()
        for i in 0..<16 { s.kmapLocal(100 + UInt64(i), page: UInt64(i), pfn: UInt64(0x100 + i), vaddr: 0xfffbb000 - UInt64(i) * 0x1000) }
        XCTAssertEqual(s.recorder.anomalyKinds, ["kmap_local_overflow"])
    }

    // Windows still open at the end close at the last event, right-censored (E4).
    func testCensoringAtTraceEnd() {
        let s = HighmemScript()
        s.kmapLocal(100, page: 1, pfn: 0x100, vaddr: 0xfffbb000)
        s.kmapHigh(110, page: 0xa000, vaddr: 0xff001000)
        s.send(200, .marker(phase: 0))
        s.finish()
        XCTAssertEqual(s.recorder.granted().map(\.durationNs).sorted(), [90_000, 100_000])
        XCTAssertTrue(s.recorder.windows.allSatisfy { $0.censoredRight && $0.closeCause == .traceEnd })
        XCTAssertEqual(s.recorder.effective().count, 2)
    }

    // An unmatched release is left-censored when the grant may predate the trace ...
    func testUnmatchedReleaseIsLeftCensored() {
        let s = HighmemScript()
        s.send(50, .marker(phase: 0))
        s.kunmapLocal(80, vaddr: 0xfffbb000)
        XCTAssertEqual(s.recorder.granted().count, 1)
        XCTAssertTrue(s.recorder.granted()[0].censoredLeft)
        XCTAssertEqual(s.recorder.granted()[0].durationNs, 30_000)
        XCTAssertTrue(s.recorder.anomalies.isEmpty)
    }

    // ... and an anomaly once the task was seen in user mode with nothing mapped.
    func testUnmatchedReleaseAfterUserFaultIsAnomaly() {
        let s = HighmemScript()
        s.send(50, .fault(address: 0x1000, ip: 0x400000, errorCode: 0x6, user: true))
        s.kunmapLocal(80, vaddr: 0xfffbb000)
        XCTAssertTrue(s.recorder.windows.isEmpty)
        XCTAssertEqual(s.recorder.anomalyKinds, ["unmatched_release"])
    }

    // Lost events mark what crosses them as uncertain (E5).
    func testLostEventsMarkOpenWindowsUncertain() {
        let s = HighmemScript()
        s.kmapLocal(100, page: 1, pfn: 0x100, vaddr: 0xfffbb000)
        s.engine.lost(cpu: 0, count: 12, line: 99)
        s.kunmapLocal(150, vaddr: 0xfffbb000)
        s.kmapLocal(160, page: 2, pfn: 0x200, vaddr: 0xfffbb000)
        s.kunmapLocal(170, vaddr: 0xfffbb000)
        XCTAssertEqual(s.recorder.granted().map(\.uncertain), [true, false])
    }

    // A not-present kernel fault on a fixmap address with no live slot: use after unmap (§7.4).
    func testUseAfterUnmapFault() {
        let s = HighmemScript()
        s.kmapLocal(100, page: 1, pfn: 0x100, vaddr: 0xfffbb000)
        s.kunmapLocal(110, vaddr: 0xfffbb000)
        s.send(120, .fault(address: 0xfffbb010, ip: 0xc1000000, errorCode: 0x0, user: false))
        XCTAssertEqual(s.recorder.accesses.map { "\($0.accessClass)" }, ["use_after_unmap"])
    }

    // E9: kmap_local_fork warns if the parent holds slots; the child starts empty.
    func testForkWithLocalKmap() {
        let s = HighmemScript()
        s.kmapLocal(100, page: 1, pfn: 0x100, vaddr: 0xfffbb000)
        s.send(105, .taskFork(parentPid: 100, childPid: 101, childComm: 3))
        XCTAssertEqual(s.recorder.anomalyKinds, ["fork_with_local_kmap"])
        s.kunmapLocal(110, vaddr: 0xfffbb000, pid: 101)
        XCTAssertEqual(s.recorder.anomalyKinds, ["fork_with_local_kmap", "unmatched_release"])
    }
}
