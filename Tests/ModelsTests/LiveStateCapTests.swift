import XCTest
import TraceIngest
import EventModel
import Replay
@testable import Models

/// `--max-live-entries`: with a tiny cap every map refuses new keys, counts them, and keeps modelling
/// the keys it holds; removing state when it ends (unmap, flush, exit, free) makes room again.
final class LiveStateCapTests: XCTestCase {
    let i386 = AddressResolver(profile: KernelProfile(arch: .i386), userFixedLayout: false, userFixedArch: true)

    func x86() -> AddressResolver {
        var p = KernelProfile(arch: .x86_64)
        p.memMapBase = 0xffffea0000000000
        p.structPageSize = 64
        p.pageOffsetBase = 0xffff888000000000
        return AddressResolver(profile: p, userFixedLayout: true, userFixedArch: true)
    }

    /// A task pushes one fixmap slot (`__kmap_local_pfn_prot` entry and return).
    func push(_ s: ModelScript, _ us: UInt64, pid: Int32, pfn: UInt64) {
        s.send(us, pid: pid, .kmap(.kmapLocalPfn, page: nil, pfn: pfn))
        s.send(us, pid: pid, .kmapReturn(.kmapLocalPfn, vaddr: 0xfffbb000))
    }

    // Tasks: 5 tasks map with room for 3; the 2 others are counted; the 3 keep working; an exit makes room.
    func testHighmemTasksPastTheCapAreCountedAndTrackedTasksKeepWorking() {
        let limit = LiveStateLimit(cap: 3)
        let s = ModelScript(HighmemModel(resolver: i386), limit: limit)
        for pid: Int32 in 1...5 { push(s, UInt64(pid), pid: pid, pfn: 0x1000 + UInt64(pid)) }
        XCTAssertEqual(limit.refusals, 2)
        XCTAssertEqual(limit.refusalsByMap, ["highmem.tasks": 2])
        XCTAssertEqual(limit.first, LiveStateLimit.Hit(model: "highmem", map: "tasks", noun: "tasks", line: 7, limit: 3, fixed: false))
        XCTAssertEqual(limit.first?.warning(source: "t.txt"),
                       "t.txt:7: 3 live tasks tracked by the highmem model (the --max-live-entries cap); later new tasks are counted in state_cap_refusals, not modelled")
        XCTAssertEqual(s.model.counters["kmap_local_pushes"], 3)

        // An untracked task's unmap: left-censored, uncertain (its push may have been refused); counted again.
        s.send(9, pid: 4, .kunmapLocal(vaddr: 0xfffbb000))
        XCTAssertEqual(s.recorder.granted("fixmap_kmap").map(\.censoredLeft), [true])
        XCTAssertEqual(s.recorder.granted("fixmap_kmap").map(\.uncertain), [true])
        XCTAssertEqual(limit.refusals, 3)

        // A tracked task still unmaps: its window closes normally.
        s.send(10, pid: 1, .kunmapLocal(vaddr: 0xfffbb000))
        let closed = s.recorder.granted("fixmap_kmap").filter { !$0.censoredLeft }
        XCTAssertEqual(closed.map(\.closeCause), [.unmap])
        XCTAssertEqual(closed.map(\.frame), [.pfn(0x1001)])
        XCTAssertFalse(closed[0].uncertain)

        // Task 2 exits (its slot closes): room for task 6, which is tracked.
        s.send(11, pid: 2, .taskExit(pid: 2))
        push(s, 12, pid: 6, pfn: 0x1006)
        XCTAssertEqual(limit.refusals, 3)
        XCTAssertEqual(s.model.counters["kmap_local_pushes"], 4)
        s.finish()
        XCTAssertEqual(Set(s.recorder.granted("fixmap_kmap").filter { !$0.censoredLeft }.map(\.holderPid)), [1, 2, 3, 6])
        XCTAssertEqual(s.recorder.granted("fixmap_kmap").filter(\.censoredRight).map(\.holderPid).sorted(), [3, 6])
    }

    // Frames (pkmap slots, by struct page *): the same for pages, and a flush frees the stale slots.
    func testHighmemPkmapSlotsPastTheCapAreCountedAndAFlushMakesRoom() {
        let limit = LiveStateLimit(cap: 3)
        let s = ModelScript(HighmemModel(resolver: i386), limit: limit)
        let page = { (i: UInt64) in 0xf6de0000 + i * 40 }
        for i: UInt64 in 0..<5 {
            s.send(10 + i, .kmap(.kmapHigh, page: page(i), pfn: nil))
            s.send(10 + i, .kmapReturn(.kmapHigh, vaddr: 0xff001000 + i * 0x1000))
        }
        XCTAssertEqual(limit.refusalsByMap, ["highmem.pkmap_slots": 2])
        XCTAssertEqual(s.model.counters["pkmap_installs"], 3)
        // A tracked slot releases normally.
        s.send(20, .kunmapHigh(page: page(0)))
        XCTAssertEqual(s.recorder.granted("pkmap").count, 1)
        XCTAssertFalse(s.recorder.granted("pkmap")[0].censoredLeft)
        // The flush clears page 0's stale slot: a new page is tracked again.
        s.send(21, .pkmapFlush)
        XCTAssertEqual(s.recorder.effective("pkmap").map(\.closeCause), [.flush])
        s.send(22, .kmap(.kmapHigh, page: page(9), pfn: nil))
        XCTAssertEqual(s.model.counters["pkmap_installs"], 4)
        XCTAssertEqual(limit.refusals, 2)
        s.finish()
        XCTAssertEqual(s.recorder.granted("pkmap").filter(\.censoredRight).count, 3)
    }

    // A fixed limit: past 64 slots on one task's stack (the kernel BUGs at 16) pushes are counted.
    func testHighmemStackDepthIsAFixedLimit() {
        let limit = LiveStateLimit(cap: 1000)
        let s = ModelScript(HighmemModel(resolver: i386), limit: limit)
        for i: UInt64 in 0..<70 { push(s, 10 + i, pid: 7, pfn: 0x2000 + i) }
        XCTAssertEqual(limit.refusalsByMap, ["highmem.kmap_local_depth": 6])
        XCTAssertEqual(limit.first?.fixed, true)
        XCTAssertEqual(limit.first?.limit, KmapLocalStack.trackedDepth)
        XCTAssertTrue(limit.first!.warning(source: "t").contains("64 live kmap_local slots on one task's stack tracked by the highmem model (a fixed limit)"))
        XCTAssertEqual(s.recorder.anomalyKinds.filter { $0 == "kmap_local_overflow" }.count, 64 - 15)
    }

    // PKS: contexts (tasks) past the cap are counted; their grants are not modelled; tracked ones are.
    func testPKSContextsPastTheCapAreCountedAndTrackedGrantsStillPair() {
        let limit = LiveStateLimit(cap: 3)
        let s = ModelScript(PKSModel(resolver: x86()), limit: limit)
        for pid: Int32 in 1...5 { s.send(UInt64(pid), pid: pid, .pgmapGrant) }
        XCTAssertEqual(limit.refusalsByMap, ["pks.contexts": 2])
        XCTAssertEqual(s.model.counters["grants"], 3)
        s.send(10, pid: 1, .pgmapRevoke)
        s.send(10, pid: 4, .pgmapRevoke)   // its grant was refused: nothing to revoke, no counter_underflow
        XCTAssertEqual(s.recorder.windows(.granted, api: "grant").map(\.holderPid), [1])
        XCTAssertTrue(s.recorder.anomalies.isEmpty, s.recorder.anomalyKinds.description)
        XCTAssertEqual(limit.refusals, 3)
        // Task 2 exits: room for task 6.
        s.send(11, pid: 2, .taskExit(pid: 2))
        s.send(12, pid: 6, .pgmapGrant)
        XCTAssertEqual(s.model.counters["grants"], 4)
        XCTAssertEqual(limit.refusals, 3)
        s.finish()
        XCTAssertEqual(s.recorder.windows(.granted, api: "grant").map(\.holderPid).sorted(), [1, 2, 3, 6])
    }

    // s390pv frames: pins past the cap are counted; I/O on a frame not tracked is an uncertain access.
    func testS390PVFramesPastTheCapAreCountedAndTrackedFramesKeepWorking() {
        let limit = LiveStateLimit(cap: 3)
        let r = AddressResolver(profile: KernelProfile(arch: .s390x), userFixedLayout: false, userFixedArch: true)
        let s = ModelScript(S390PVModel(resolver: r), limit: limit)
        s.send(10, .gupAcquire(.pin, path: .fast, start: 0x1000, pages: 5, flags: 0))
        for i: UInt64 in 0..<5 { s.send(11, .gupPage(page: 0xA000 + i * 0x100, refs: 1, flags: 0x40000)) }
        s.send(12, .gupReturn(.pin, path: .fast, result: 5))
        XCTAssertEqual(limit.refusalsByMap, ["s390pv.frames": 2])
        XCTAssertEqual(limit.first?.warning(source: "t"),
                       "t:5: 3 live frames tracked by the s390pv model (the --max-live-entries cap); later new frames are counted in state_cap_refusals, not modelled")
        XCTAssertEqual(s.model.counters["pages_pinned"], 3)
        s.send(20, .ioSubmit(page: 0xA000))          // tracked and accessible: fine
        s.send(21, .ioSubmit(page: 0xA400))          // refused at the cap
        XCTAssertEqual(s.recorder.accesses.map(\.uncertain), [true])
        s.send(30, .gupRelease(.page, pointer: 0xA000, count: 1, dirty: false))
        s.finish()
        XCTAssertEqual(s.recorder.windows(.granted, api: "gup_pin").map(\.closeCause).sorted { $0.rawValue < $1.rawValue }, [.traceEnd, .traceEnd, .unmap])
        XCTAssertEqual(s.recorder.windows(.effective, api: "gup_pin").count, 3)
    }

    // directmap frames: removals past the cap are counted; a free makes room.
    func testDirectMapFramesPastTheCapAreCountedAndAFreeMakesRoom() {
        let limit = LiveStateLimit(cap: 3)
        let s = ModelScript(DirectMapModel(resolver: x86()), limit: limit)
        let page = { (i: UInt64) in 0xffffea0001ff0000 + i * 64 }
        for i: UInt64 in 0..<5 {
            s.send(10 + i, .secretmemFault(address: 0x7f5c237ff000))
            s.send(10 + i, .directMap(page: page(i), valid: false))
        }
        XCTAssertEqual(limit.refusalsByMap, ["directmap.frames": 2])
        XCTAssertEqual(s.model.counters["removals"], 3)
        s.send(20, .secretmemFree(folio: page(0)))
        s.send(21, .directMap(page: page(0), valid: true))
        s.send(22, .pageFree(pfn: 0x7fc00, order: 0))
        XCTAssertEqual(s.recorder.windows(.intended, api: "user_alias").count, 1)
        s.send(30, .secretmemFault(address: 0x7f5c237ff000))
        s.send(30, .directMap(page: page(7), valid: false))
        XCTAssertEqual(s.model.counters["removals"], 4)
        XCTAssertEqual(limit.refusals, 2)
    }
}
