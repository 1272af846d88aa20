import XCTest
import TraceIngest
import EventModel
import Replay
@testable import Models

/// Drives one model through the replay engine with hand-built events (timestamps in µs).
final class ModelScript {
    let recorder = Recorder()
    let model: ProtectionModel
    let limit: LiveStateLimit
    lazy var engine = ReplayEngine(models: [model], sink: recorder, limit: limit)
    var line = 0
    static let task = TraceFlags(bits: 0)
    static let hardirq = TraceFlags(bits: TraceFlags.hardirq, preemptDepth: 1)

    init(_ model: ProtectionModel, limit: LiveStateLimit = LiveStateLimit()) {
        self.model = model
        self.limit = limit
    }

    func send(_ us: UInt64, cpu: Int32 = 0, pid: Int32 = 100, flags: TraceFlags = ModelScript.task, site: StringTable.ID = 0, _ kind: ProtEventKind) {
        line += 1
        engine.consume(ProtEvent(line: line, timestamp: us * 1000, cpu: cpu, pid: pid, comm: 1, flags: flags, site: site, kind: kind))
    }
    func finish() { engine.finish() }
}

extension Recorder {
    func classes() -> [String] { accesses.map { "\($0.accessClass)" } }
    func outcomes() -> [AccessRecord.Outcome] { accesses.map(\.outcome) }
    func windows(_ layer: WindowLayer, api: String) -> [ExposureWindow] { windows.filter { $0.layer == layer && "\($0.api)" == api } }
}

final class PKSTransitionTests: XCTestCase {
    func pks(_ mode: PKSModel.FaultMode = .relaxed, _ kg: PKSModel.KmapGlobal = .unsupported, ranges: [ClosedRange<UInt64>]? = nil) -> (ModelScript, AddressResolver) {
        var profile = KernelProfile(arch: .x86_64)
        profile.pageOffsetBase = 0xffff888000000000
        profile.memMapBase = 0xffffea0000000000
        profile.structPageSize = 64
        let r = AddressResolver(profile: profile, userFixedLayout: true, userFixedArch: true)
        let m = PKSModel(resolver: r, mode: mode, kmapGlobal: kg, protected: ranges.map { .ranges($0) } ?? .kmapped)
        return (ModelScript(m), r)
    }
    let page: UInt64 = 0xffffea0000000000 + 0x1000 * 64   // pfn 0x1000

    // §4.3 PGMAP_GRANT: cnt 0 -> 1 sets RW (GRANTED and EFFECTIVE open); PGMAP_REVOKE 1 -> 0 sets AD.
    func testGrantRevokeNesting() {
        let (s, _) = pks()
        s.send(10, .pgmapGrant)
        s.send(20, .pgmapGrant)        // nested: count 2, no change
        s.send(30, .pgmapRevoke)
        s.send(40, .pgmapRevoke)       // 1 -> 0: AD
        XCTAssertEqual(s.recorder.windows(.granted, api: "grant").map(\.durationNs), [30_000])
        XCTAssertEqual(s.recorder.windows(.effective, api: "grant").map(\.durationNs), [30_000])
        XCTAssertEqual(s.recorder.windows.first?.scope, .task)
    }

    // §3.4 left-censoring: a revoke with cnt 0 by a task whose count is not known exactly released a grant
    // made before the trace: a left-censored window from the CPU's first event, no anomaly, no wrap, and the
    // task's later grants open windows as usual.
    func testRevokeBeforeAnyGrantIsLeftCensored() {
        let (s, _) = pks()
        s.send(5, .marker(phase: 0))
        s.send(10, .pgmapRevoke)
        s.send(20, .pgmapGrant)
        s.send(30, .pgmapRevoke)
        s.finish()
        XCTAssertEqual(s.recorder.anomalyKinds, [])
        let g = s.recorder.windows(.granted, api: "grant")
        XCTAssertEqual(g.map(\.durationNs), [5_000, 10_000])
        XCTAssertEqual(g.map(\.censoredLeft), [true, false])
        XCTAssertEqual(s.recorder.windows(.effective, api: "grant").map(\.durationNs), [10_000])
    }

    // With pks_update_protection probes (a real PKS kernel) the probe decides RW/AD; the RW it sets inside the
    // context's own grant is named `grant`, one outside any grant `pks_set`.
    func testPksSetProbeDecidesAndNamesTheWindows() {
        let (s, _) = pks()
        s.send(10, .pgmapGrant)
        s.send(11, .pksSet(key: 1, readWrite: true))
        s.send(20, .pgmapRevoke)
        s.send(21, .pksSet(key: 1, readWrite: false))
        s.send(30, .pgmapGrant)
        s.send(31, .pksSet(key: 1, readWrite: true))
        s.send(40, .pgmapRevoke)
        s.send(41, .pksSet(key: 1, readWrite: false))
        s.send(50, .pksSet(key: 1, readWrite: true))
        s.send(60, .pksSet(key: 1, readWrite: false))
        let eff = s.recorder.windows.filter { $0.layer == .effective }
        XCTAssertEqual(eff.map(\.durationNs), [11_000, 10_000, 10_000])   // the first RW is inferred at the grant (no probe seen yet)
        XCTAssertEqual(eff.map { "\($0.api)" }, ["grant", "grant", "pks_set"])
    }

    // §4.3 PGMAP_REVOKE below 0 when the count is known exactly (the task was just in user mode): u32 wrap,
    // COUNTER_UNDERFLOW; the next grant takes the count 0xffffffff -> 0 and sets no RW, so the access faults.
    func testCounterUnderflowWhenTheCountIsKnownExactly() {
        let (s, _) = pks()
        s.send(5, .fault(address: 0x7f5c237ff000, ip: 0x4026b8, errorCode: 0x6, user: true))
        s.send(10, .pgmapRevoke)
        XCTAssertEqual(s.recorder.anomalyKinds, ["counter_underflow"])
        XCTAssertTrue(s.recorder.windows.isEmpty)
        s.send(20, .pgmapGrant)
        s.send(25, .fault(address: 0xffff888001000040, ip: 0, errorCode: 0x21, user: false))
        XCTAssertEqual(s.recorder.classes(), ["stray"])
        XCTAssertEqual(s.recorder.outcomes(), [.fixedUp])
    }

    // E-A3: an IRQ that maps while the task holds a grant only bumps cnt; its access faults.
    func testIRQShadowRelaxedAndStrict() {
        for (mode, outcome) in [(PKSModel.FaultMode.relaxed, AccessRecord.Outcome.fixedUp), (.strict, .blocked)] {
            let (s, _) = pks(mode)
            s.send(10, .kmap(.kmapLocalPage, page: page, pfn: nil))
            s.send(11, .kmapReturn(.kmapLocalPage, vaddr: 0xffff888001000000))
            s.send(20, flags: ModelScript.hardirq, .irqEnter(.hardirq, vector: 5))
            s.send(21, flags: ModelScript.hardirq, .kmap(.kmapLocalPage, page: page, pfn: nil))
            s.send(22, flags: ModelScript.hardirq, .kmapReturn(.kmapLocalPage, vaddr: 0xffff888001000000))
            XCTAssertEqual(s.recorder.classes(), ["irq_shadow"], "\(mode)")
            XCTAssertEqual(s.recorder.outcomes(), [outcome], "\(mode)")
        }
    }

    // An IRQ shadows the task's effective window (IRQs start at INIT = AD).
    func testIRQShadowsTaskEffectiveWindow() {
        let (s, _) = pks()
        s.send(10, .pgmapGrant)
        s.send(20, flags: ModelScript.hardirq, .irqEnter(.hardirq, vector: 5))
        s.send(25, flags: ModelScript.hardirq, .irqExit(.hardirq, vector: 5))
        s.send(30, .marker(phase: 0))
        s.send(40, .pgmapRevoke)
        let eff = s.recorder.windows(.effective, api: "grant")
        XCTAssertEqual(eff.map(\.durationNs), [10_000, 15_000])
        XCTAssertEqual(eff.map(\.closeCause), [.shadowed, .unmap])
    }

    // §4.5 A0: kmap() grants nothing; the mapper's access is global_kmap, the receiver's handoff (seed 000).
    func testKmapUnsupportedHandoff() {
        let (s, _) = pks()
        s.send(10, pid: 1, .kmap(.kmapHigh, page: page, pfn: nil))
        s.send(11, pid: 1, .kmapReturn(.kmapHigh, vaddr: 0xffff888001000000))
        s.send(50, pid: 2, .kunmapHigh(page: page))
        XCTAssertEqual(s.recorder.anomalyKinds, ["global_kmap_unsupported"])
        XCTAssertEqual(s.recorder.classes(), ["global_kmap", "handoff"])
        XCTAssertEqual(s.recorder.outcomes(), [.fixedUp, .fixedUp])
    }

    // §4.5 A1: while a kmap() is out the global cache is RW: accesses are fixed silently, not unprotected;
    // after the last kunmap each CPU stays open until its next context switch.
    func testGlobalUnprotect() {
        let (s, _) = pks(.relaxed, .globalUnprotect)
        s.send(10, pid: 1, .kmap(.kmapHigh, page: page, pfn: nil))
        s.send(11, pid: 1, .kmapReturn(.kmapHigh, vaddr: 0xffff888001000000))
        s.send(50, pid: 2, .kunmapHigh(page: page))
        s.send(80, pid: 2, .contextSwitch(prevPid: 2, prevComm: 1, prevRunnable: false, nextPid: 3, nextComm: 1))
        s.finish()
        XCTAssertTrue(s.recorder.accesses.isEmpty)
        XCTAssertEqual(s.recorder.windows(.effective, api: "global_unprotect").map(\.durationNs), [40_000])
        XCTAssertEqual(s.recorder.windows(.effective, api: "global_unprotect_lag").map(\.durationNs), [30_000])
        XCTAssertEqual(s.recorder.windows(.granted, api: "global_unprotect").map(\.durationNs), [40_000])
    }

    // §4.5 A2: pardon only kmap()ed pages; the unprotect lasts until the context is left (sched-out).
    func testFlagFaultPardonsOnlyKmappedPages() {
        let (s, _) = pks(.relaxed, .flagFault, ranges: [0x1000...0x1fff])
        s.send(10, pid: 1, .kmap(.kmapHigh, page: page, pfn: nil))
        s.send(11, pid: 1, .kmapReturn(.kmapHigh, vaddr: 0xffff888001000000))
        s.send(20, pid: 1, .contextSwitch(prevPid: 1, prevComm: 1, prevRunnable: true, nextPid: 2, nextComm: 1))
        // A stray supervisor PK fault on another protected page (pfn 0x1001), not kmapped: dies.
        s.send(30, pid: 2, .fault(address: 0xffff888001001000, ip: 0, errorCode: 0x21, user: false))
        XCTAssertEqual(s.recorder.classes(), ["global_kmap", "stray"])
        XCTAssertEqual(s.recorder.outcomes(), [.fixedUp, .blocked])
        XCTAssertEqual(s.recorder.windows(.effective, api: "flag_fault_unprotect").map(\.durationNs), [9_000])
    }

    // §3.4 with A2: a kunmap() of a page whose kmap() predates the trace closes a left-censored kmap_flag
    // window from the CPU's first event; with A0 (kmap() grants nothing) there is nothing to close.
    func testKunmapOfAPreTraceKmap() {
        for (kg, windows) in [(PKSModel.KmapGlobal.flagFault, [UInt64(20_000)]), (.unsupported, [])] {
            let (s, _) = pks(.relaxed, kg)
            s.send(10, cpu: 1, pid: 2, .marker(phase: 0))
            s.send(30, cpu: 1, pid: 2, .kunmapHigh(page: page))
            let w = s.recorder.windows.filter { $0.layer == .granted }
            XCTAssertEqual(w.map(\.durationNs), windows, "\(kg)")
            XCTAssertTrue(w.allSatisfy(\.censoredLeft))
            XCTAssertTrue(s.recorder.accesses.isEmpty)
        }
    }

    // §4.4 off: no protection, no accesses.
    func testModeOff() {
        let (s, _) = pks(.off)
        s.send(10, pid: 1, .kmap(.kmapHigh, page: page, pfn: nil))
        s.send(20, .fault(address: 0xffff888001000000, ip: 0, errorCode: 0x21, user: false))
        s.finish()
        XCTAssertTrue(s.recorder.accesses.isEmpty)
        XCTAssertEqual(s.recorder.windows(.effective, api: "pks_off").count, 1)
    }

    // A user-mode PK fault (error_code 0x27) is PKU, not PKS.
    func testUserPKFaultIsNotPKS() {
        let (s, _) = pks()
        s.send(10, .fault(address: 0x7f5c237ff000, ip: 0x4026b8, errorCode: 0x27, user: true))
        XCTAssertTrue(s.recorder.accesses.isEmpty)
        XCTAssertEqual(s.model.counters["user_pk_faults"], 1)
    }

    // E2: task 2 kunmap_local()s the direct-map address task 1 mapped: cross_ctx_release; task 1's grant
    // leaks (its windows stay open to the end). Task 2's own count is not known exactly: no underflow claimed.
    func testCrossTaskKunmapLocal() {
        let (s, _) = pks()
        s.send(10, pid: 1, .kmap(.kmapLocalPage, page: page, pfn: nil))
        s.send(11, pid: 1, .kmapReturn(.kmapLocalPage, vaddr: 0xffff888001000000))
        s.send(20, cpu: 1, pid: 2, .kunmapLocal(vaddr: 0xffff888001000000))
        XCTAssertEqual(s.recorder.anomalyKinds, ["cross_ctx_release"])
        s.send(40, pid: 1, .marker(phase: 0))
        s.finish()
        XCTAssertEqual(s.recorder.windows(.granted, api: "grant").map(\.durationNs), [30_000])
        XCTAssertEqual(s.recorder.windows(.granted, api: "grant").map(\.censoredRight), [true])
        XCTAssertEqual(s.recorder.windows(.effective, api: "grant").map(\.durationNs), [30_000])
    }

    // E2 at pgmap level (no page): the task grants, an IRQ on its CPU revokes. cnt 1 -> 0 in the IRQ (its own
    // key was AD anyway), cross_ctx_release, the task keeps RW and its GRANTED window stays open.
    func testPgmapRevokeInAnIRQIsCrossContext() {
        let (s, _) = pks()
        s.send(10, .pgmapGrant)
        s.send(20, flags: ModelScript.hardirq, .irqEnter(.hardirq, vector: 5))
        s.send(21, flags: ModelScript.hardirq, .pgmapRevoke)
        s.send(25, flags: ModelScript.hardirq, .irqExit(.hardirq, vector: 5))
        s.send(30, .marker(phase: 0))
        s.finish()
        XCTAssertEqual(s.recorder.anomalyKinds, ["cross_ctx_release"])
        XCTAssertEqual(s.recorder.windows(.granted, api: "grant").map(\.durationNs), [20_000])
        XCTAssertEqual(s.recorder.windows(.granted, api: "grant").map(\.censoredRight), [true])
        XCTAssertEqual(s.recorder.windows(.effective, api: "grant").map(\.durationNs), [10_000, 5_000])
    }

    // E2 across tasks at pgmap level: task 2, known to hold nothing, revokes while task 1 holds a grant: the
    // revoker underflows and the maker's grant leaks. Unknown to hold nothing, it is left-censored instead.
    func testPgmapRevokeByATaskKnownToHoldNothingIsCrossContext() {
        let (s, _) = pks()
        s.send(10, pid: 1, .pgmapGrant)
        s.send(15, cpu: 1, pid: 2, .syscall(enter: true))
        s.send(20, cpu: 1, pid: 2, .pgmapRevoke)
        XCTAssertEqual(s.recorder.anomalyKinds, ["counter_underflow", "cross_ctx_release"])
        s.send(30, cpu: 2, pid: 3, .pgmapRevoke)
        XCTAssertEqual(s.recorder.anomalyKinds, ["counter_underflow", "cross_ctx_release"])
        XCTAssertEqual(s.recorder.windows(.granted, api: "grant").map(\.censoredLeft), [true])
    }

    // §1.3 grants are key-wide: task 2's PK fault while task 1 holds a pgmap-level grant is a hand-off.
    func testAccessWhileAnotherContextHoldsAPgmapGrantIsHandoff() {
        let (s, _) = pks(.strict)
        s.send(10, pid: 1, .pgmapGrant)
        s.send(20, cpu: 1, pid: 2, .fault(address: 0xffff888001000040, ip: 0, errorCode: 0x23, user: false))
        s.send(30, pid: 1, .pgmapRevoke)
        s.send(40, cpu: 1, pid: 2, .fault(address: 0xffff888001000040, ip: 0, errorCode: 0x23, user: false))
        XCTAssertEqual(s.recorder.classes(), ["handoff", "stray"])
        XCTAssertEqual(s.recorder.outcomes(), [.blocked, .blocked])
    }

    // A2: the pardoned fault's unprotect lasts until the context is left, not until a revoke brings cnt to 0.
    func testFlagFaultUnprotectOutlivesARevokeToZero() {
        let (s, _) = pks(.relaxed, .flagFault)
        s.send(10, .kmap(.kmapHigh, page: page, pfn: nil))
        s.send(11, .kmapReturn(.kmapHigh, vaddr: 0xffff888001000000))          // implied access: pardoned
        s.send(20, .kmap(.kmapLocalPage, page: page + 64, pfn: nil))
        s.send(21, .kmapReturn(.kmapLocalPage, vaddr: 0xffff888001001000))
        s.send(30, .kunmapLocal(vaddr: 0xffff888001001000))                    // cnt 1 -> 0: AD, unprotect stays
        s.send(40, .kmap(.kmapHigh, page: page, pfn: nil))
        s.send(41, .kmapReturn(.kmapHigh, vaddr: 0xffff888001000000))          // no fault: still unprotected
        s.send(50, .contextSwitch(prevPid: 100, prevComm: 1, prevRunnable: true, nextPid: 0, nextComm: 1))
        XCTAssertEqual(s.recorder.classes(), ["global_kmap"])
        let eff = s.recorder.windows.filter { $0.layer == .effective }
        XCTAssertEqual(eff.map(\.durationNs), [39_000])
        XCTAssertEqual(eff.map { "\($0.api)" }, ["flag_fault_unprotect"])
        XCTAssertEqual(eff.map(\.closeCause), [.schedOut])
    }

    // A2: a sched-out ends the unprotect but not the task's own grant; after sched-in the task is still RW.
    func testOwnGrantSurvivesSchedOutAfterAPardonedFault() {
        let (s, _) = pks(.relaxed, .flagFault)
        s.send(10, .kmap(.kmapHigh, page: page, pfn: nil))
        s.send(11, .kmapReturn(.kmapHigh, vaddr: 0xffff888001000000))          // pardoned: unprotect
        s.send(20, .kmap(.kmapLocalPage, page: page + 64, pfn: nil))         // cnt 0 -> 1
        s.send(21, .kmapReturn(.kmapLocalPage, vaddr: 0xffff888001001000))
        s.send(30, .contextSwitch(prevPid: 100, prevComm: 1, prevRunnable: true, nextPid: 0, nextComm: 1))
        s.send(40, pid: 0, .contextSwitch(prevPid: 0, prevComm: 1, prevRunnable: true, nextPid: 100, nextComm: 1))
        s.send(50, .kmap(.kmapLocalPage, page: page + 128, pfn: nil))        // cnt 1 -> 2
        s.send(51, .kmapReturn(.kmapLocalPage, vaddr: 0xffff888001002000))    // RW: no fault
        s.send(60, .kunmapLocal(vaddr: 0xffff888001002000))
        s.send(70, .kunmapLocal(vaddr: 0xffff888001001000))                    // cnt 1 -> 0: AD
        XCTAssertEqual(s.recorder.classes(), ["global_kmap"])
        let eff = s.recorder.windows.filter { $0.layer == .effective }
        XCTAssertEqual(eff.map(\.durationNs), [19_000, 30_000])
        XCTAssertEqual(eff.map { "\($0.api)" }, ["flag_fault_unprotect", "grant"])
        XCTAssertEqual(eff.map(\.closeCause), [.schedOut, .unmap])
    }

    // §4.4 relaxed: the fixup lasts until the context next sets K to AD. A revoke that leaves cnt > 0 writes
    // nothing (V10 sets AD only on reaching 0), so the fixup survives it; the one that reaches 0 ends it.
    func testRelaxedFixupEndsAtTheNextADWriteOnly() {
        let (s, _) = pks()
        s.send(10, .pgmapGrant)                                                        // cnt 0 -> 1, RW (grant)
        s.send(20, .pgmapGrant)                                                        // 1 -> 2
        s.send(30, flags: ModelScript.hardirq, .irqEnter(.hardirq, vector: 5))
        s.send(31, flags: ModelScript.hardirq, .fault(address: 0xffff888001000040, ip: 0, errorCode: 0x21, user: false))
        s.send(32, flags: ModelScript.hardirq, .pgmapGrant)                              // 2 -> 3, IRQ stays AD... but fixed up
        s.send(33, flags: ModelScript.hardirq, .pgmapRevoke)                             // 3 -> 2: no AD write, fixup stays
        s.send(35, flags: ModelScript.hardirq, .irqExit(.hardirq, vector: 5))            // IRQ exit ends it
        s.send(40, .pgmapRevoke)                                                       // 2 -> 1
        s.send(50, .pgmapRevoke)                                                       // 1 -> 0: AD
        XCTAssertEqual(s.recorder.classes(), ["irq_shadow"])
        XCTAssertEqual(s.recorder.windows(.effective, api: "relaxed_fixup").map(\.durationNs), [4_000])
        XCTAssertEqual(s.recorder.windows(.effective, api: "relaxed_fixup").map(\.closeCause), [.contextEnd])
        XCTAssertEqual(s.recorder.windows(.effective, api: "grant").map(\.durationNs), [20_000, 15_000])
    }

    // A2 with --context-end return-to-user: sched-out suspends the unprotect, the next user-mode fault ends it.
    func testFlagFaultUnprotectUntilReturnToUser() {
        var profile = KernelProfile(arch: .x86_64)
        profile.pageOffsetBase = 0xffff888000000000
        profile.memMapBase = 0xffffea0000000000
        profile.structPageSize = 64
        let r = AddressResolver(profile: profile, userFixedLayout: true, userFixedArch: true)
        let s = ModelScript(PKSModel(resolver: r, mode: .relaxed, kmapGlobal: .flagFault, contextEnd: .returnToUser))
        s.send(10, .kmap(.kmapHigh, page: page, pfn: nil))
        s.send(11, .kmapReturn(.kmapHigh, vaddr: 0xffff888001000000))          // pardoned: unprotect
        s.send(20, .contextSwitch(prevPid: 100, prevComm: 1, prevRunnable: true, nextPid: 0, nextComm: 1))
        s.send(30, pid: 0, .contextSwitch(prevPid: 0, prevComm: 1, prevRunnable: true, nextPid: 100, nextComm: 1))
        s.send(40, .fault(address: 0x7f5c237ff000, ip: 0x4026b8, errorCode: 0x6, user: true))   // back in user mode
        s.send(50, .marker(phase: 0))
        s.finish()
        let eff = s.recorder.windows(.effective, api: "flag_fault_unprotect")
        XCTAssertEqual(eff.map(\.durationNs), [9_000, 10_000])
        XCTAssertEqual(eff.map(\.closeCause), [.schedOut, .contextEnd])
    }

    // Known exactly via fork: the child of a parent known to hold nothing underflows; the child of an
    // unknown parent is left-censored from its fork.
    func testForkPassesOnAnExactlyKnownZeroCount() {
        let (s, _) = pks()
        s.send(5, pid: 1, .fault(address: 0x7f5c237ff000, ip: 0x4026b8, errorCode: 0x6, user: true))
        s.send(10, pid: 1, .taskFork(parentPid: 1, childPid: 2, childComm: 1))
        s.send(12, cpu: 1, pid: 3, .marker(phase: 0))
        s.send(15, cpu: 1, pid: 3, .taskFork(parentPid: 3, childPid: 4, childComm: 1))
        s.send(20, pid: 0, .contextSwitch(prevPid: 1, prevComm: 1, prevRunnable: true, nextPid: 2, nextComm: 1))
        s.send(30, pid: 2, .pgmapRevoke)
        s.send(40, cpu: 1, pid: 3, .contextSwitch(prevPid: 3, prevComm: 1, prevRunnable: true, nextPid: 4, nextComm: 1))
        s.send(50, cpu: 1, pid: 4, .pgmapRevoke)
        XCTAssertEqual(s.recorder.anomalyKinds, ["counter_underflow"])
        let g = s.recorder.windows(.granted, api: "grant")
        XCTAssertEqual(g.map(\.holderPid), [4])
        XCTAssertEqual(g.map(\.openNs), [15_000])
        XCTAssertEqual(g.map(\.censoredLeft), [true])
    }

    // E13: with ranges and no page_offset_base, an x86_64 kernel address resolves with the §2.3 default;
    // one outside the default direct map is counted as unresolved, never dropped.
    func testPKFaultResolvesWithTheDefaultDirectMapBase() {
        let r = AddressResolver(profile: KernelProfile(), userFixedLayout: false, userFixedArch: false)
        var warnings: [String] = []
        r.onDirectMapBaseDefaulted = { warnings.append($0) }
        let s = ModelScript(PKSModel(resolver: r, mode: .strict, protected: .ranges([0x1000...0x1fff])))
        s.send(10, .fault(address: 0xffff888001000040, ip: 0, errorCode: 0x21, user: false))
        s.send(20, .fault(address: 0xffff888001000080, ip: 0, errorCode: 0x21, user: false))
        s.send(30, .fault(address: 0xffffc90000001000, ip: 0, errorCode: 0x21, user: false))   // vmalloc
        XCTAssertEqual(s.recorder.classes(), ["stray", "stray"])
        XCTAssertEqual(s.recorder.accesses.map(\.frame), [.pfn(0x1000), .pfn(0x1000)])
        XCTAssertEqual(s.model.counters["unresolved_faults"], 1)
        XCTAssertEqual(s.model.counters["faults_on_default_direct_map_base"], 2)
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("--page-offset-base"))
    }

    // E13: an s390x or i386 profile never takes the x86_64 default.
    func testNoDefaultDirectMapBaseOffX86_64() {
        let r = AddressResolver(profile: KernelProfile(arch: .s390x), userFixedLayout: false, userFixedArch: true)
        XCTAssertEqual(r.pfn(forDirectMapAddress: 0x1000040), 0x1000)     // s390x: identity direct map
        let u = AddressResolver(profile: KernelProfile(), userFixedLayout: false, userFixedArch: false)
        XCTAssertNil(u.pfn(forDirectMapAddress: 0xc1000040))                  // 32-bit address: no guess
        XCTAssertFalse(u.directMapBaseDefaulted)
    }
}

final class S390PVTransitionTests: XCTestCase {
    func s390() -> ModelScript {
        let r = AddressResolver(profile: KernelProfile(arch: .s390x), userFixedLayout: false, userFixedArch: true)
        return ModelScript(S390PVModel(resolver: r))
    }

    // §5.3 GUP_ACQUIRE(pin): implied make-accessible; the I/O is fine. GUP_ACQUIRE(get): no state change; I/O fails.
    func testPinVersusGetThenIO() {
        let s = s390()
        s.send(10, .gupAcquire(.pin, path: .fast, start: 0x1000, pages: 1, flags: 0))
        s.send(11, .gupPage(page: 0xA000, refs: 1, flags: 0x40000))
        s.send(12, .gupReturn(.pin, path: .fast, result: 1))
        s.send(20, .ioSubmit(page: 0xA000))
        s.send(30, .gupAcquire(.get, path: .fast, start: 0x2000, pages: 1, flags: 0))
        s.send(31, .gupPage(page: 0xB000, refs: 1, flags: 0x4))
        s.send(32, .gupReturn(.get, path: .fast, result: 1))
        s.send(40, .ioSubmit(page: 0xB000))
        XCTAssertEqual(s.recorder.classes(), ["io_after_get"])
        XCTAssertEqual(s.recorder.outcomes(), [.ioErrorExpected])
        XCTAssertEqual(s.model.counters["make_accessible_implied_gup"], 1)
    }

    // The sendfile hole: a page-cache page sent zero-copy with no make-accessible.
    func testSendfileHole() {
        let s = s390()
        s.send(10, .spliceZeroCopy(page: 0xC000))
        XCTAssertEqual(s.recorder.classes(), ["sendfile_hole"])
    }

    // WB_START makes accessible (observed from arch_make_page_accessible when present); WB_END ends the hold.
    func testWritebackObservedMakeAccessible() {
        let s = s390()
        s.send(10, .writebackStart(folio: 0xD000))
        s.send(11, .makeAccessible(page: 0xD000))
        s.send(12, site: 0, .makeAccessibleReturn(result: 0))
        s.send(20, .writebackEnd(folio: 0xD000))
        s.send(30, .ioSubmit(page: 0xD000))
        s.finish()
        XCTAssertTrue(s.recorder.accesses.isEmpty)
        XCTAssertEqual(s.model.counters["make_accessible_implied_writeback"], 0)
        XCTAssertEqual(s.recorder.windows(.granted, api: "writeback").map(\.durationNs), [10_000])
        // Accessible from the make-accessible call (11), not the writeback start (10), to the end (30).
        XCTAssertEqual(s.recorder.windows(.effective, api: "writeback").map(\.durationNs), [19_000])
    }

    // Seed 003: gup grabbing a page of a VM_PFNMAP mapping.
    func testGupSpecialPfn() {
        let s = s390()
        s.send(10, .gupAcquire(.get, path: .slow, start: 0x1000, pages: 1, flags: 0))
        s.send(11, .gupPte(vmFlags: 0x400, special: nil, pte: nil))
        s.send(12, .gupPage(page: 0xE000, refs: 1, flags: 0x4))
        XCTAssertEqual(s.recorder.anomalyKinds, ["gup_special_pfn"])
    }
}

final class DirectMapTransitionTests: XCTestCase {
    func testSecretmemLifecycleWindows() {
        var p = KernelProfile(arch: .x86_64)
        p.memMapBase = 0xffffea0000000000
        p.structPageSize = 64
        p.pageOffsetBase = 0xffff888000000000
        let r = AddressResolver(profile: p, userFixedLayout: true, userFixedArch: true)
        let s = ModelScript(DirectMapModel(resolver: r))
        let page: UInt64 = 0xffffea0001ff0000            // pfn 0x7fc00
        s.send(10, .secretmemFault(address: 0x7f5c237ff000))
        s.send(12, .pageAlloc(pfn: 0x7fc00, order: 0))
        s.send(15, .directMap(page: page, valid: false))
        s.send(20, .tlbFlushKernelRange(start: 0xffff88807fc00000, end: 0xffff88807fc01000))
        s.send(30, .fault(address: 0xffff88807fc00010, ip: 0, errorCode: 0x0, user: false))
        s.send(50, .secretmemFree(folio: page))
        s.send(52, .directMap(page: page, valid: true))
        s.send(55, .fault(address: 0xffff88807fc00010, ip: 0, errorCode: 0x0, user: false))  // restored: not removed
        s.send(60, .pageFree(pfn: 0x7fc00, order: 0))
        XCTAssertEqual(s.recorder.classes(), ["removed_direct_map"])
        XCTAssertEqual(s.recorder.windows(.effective, api: "pre_removal").map(\.durationNs), [3_000])
        XCTAssertEqual(s.recorder.windows(.effective, api: "stale_tlb").map(\.durationNs), [5_000])
        XCTAssertEqual(s.recorder.windows(.effective, api: "residual").map(\.durationNs), [8_000])
        XCTAssertEqual(s.recorder.windows(.granted, api: "residual").map(\.scope), [.ctx])
        XCTAssertEqual(s.recorder.windows(.intended, api: "user_alias").map(\.durationNs), [50_000])  // fault to free
    }
}
