import XCTest
import TraceIngest
import EventModel
import Replay
@testable import Models

/// Issue 11: §8 E5 (accesses derived from state that crossed a lost-events gap are uncertain) and the reporting
/// convention on unobserved closing events (a stale pkmap slot's window ends at a flush only a probe can show).
final class HighmemUncertaintyTests: XCTestCase {
    // A fixmap use-after-unmap is certain before a gap, uncertain after one on the task's CPU, and certain again
    // once the task was seen in user mode holding nothing (its stack is known exactly).
    func testUseAfterUnmapDerivedFromAStackThatCrossedAGap() {
        let s = HighmemScript()
        s.kmapLocal(10, page: 0xf6df6838, pfn: 0x7f89b, vaddr: 0xfffbb000)
        s.kunmapLocal(20, vaddr: 0xfffbb000)
        s.send(30, .fault(address: 0xfffbb010, ip: 0, errorCode: 0, user: false))
        s.engine.lost(cpu: 0, count: 5, line: 0)
        s.send(40, .fault(address: 0xfffbb010, ip: 0, errorCode: 0, user: false))
        s.send(50, .fault(address: 0x8049000, ip: 0, errorCode: 4, user: true))
        s.send(60, .fault(address: 0xfffbb010, ip: 0, errorCode: 0, user: false))
        XCTAssertEqual(s.recorder.accesses.map { "\($0.accessClass)" }, Array(repeating: "use_after_unmap", count: 3))
        XCTAssertEqual(s.recorder.accesses.map(\.uncertain), [false, true, false])
    }

    // A gap on another CPU does not touch this task's stack, but the pkmap table is global.
    func testPkmapUseAfterUnmapAfterAnyGapIsUncertain() {
        let s = HighmemScript()
        s.kmapLocal(5, page: 0xf6df6838, pfn: 0x7f89b, vaddr: 0xfffbb000)
        s.kunmapLocal(6, vaddr: 0xfffbb000)
        s.kmapHigh(10, page: 0xf6de7900, vaddr: 0xff004000)
        s.send(20, .kunmapHigh(page: 0xf6de7900))
        s.send(25, .pkmapFlush)
        s.engine.lost(cpu: 1, count: 1, line: 0)
        s.send(30, .fault(address: 0xff004010, ip: 0, errorCode: 0, user: false))
        s.send(31, .fault(address: 0xfffbb010, ip: 0, errorCode: 0, user: false))
        XCTAssertEqual(s.recorder.accesses.map(\.uncertain), [true, false])
    }

    // No flush probe in the trace: windows closed by an inferred flush, and stale slots at the end, are uncertain;
    // a slot still in use at the end is only censored.
    func testStalePkmapWindowsWithoutAFlushProbe() {
        let s = HighmemScript()
        s.kmapHigh(10, page: 0xf6de7900, vaddr: 0xff1fe000)
        s.send(20, .kunmapHigh(page: 0xf6de7900))
        s.kmapHigh(30, page: 0xf6de7928, vaddr: 0xff1ff000)
        s.kmapHigh(40, page: 0xf6de7950, vaddr: 0xff000000)     // wrapped: inferred flush clears the first slot
        s.send(50, .kunmapHigh(page: 0xf6de7950))
        s.finish()
        let eff = s.recorder.effective("pkmap").sorted { $0.openNs < $1.openNs }
        XCTAssertEqual(eff.map(\.closeCause), [.flushInferred, .traceEnd, .traceEnd])
        XCTAssertEqual(eff.map(\.uncertain), [true, false, true])   // the second slot is held at the end
    }

    // With the flush probe in the trace, a stale slot at the end is censored, not uncertain.
    func testStalePkmapAtTheEndWithAFlushProbe() {
        let s = HighmemScript()
        s.send(5, .pkmapFlush)
        s.kmapHigh(10, page: 0xf6de7900, vaddr: 0xff004000)
        s.send(20, .kunmapHigh(page: 0xf6de7900))
        s.finish()
        let eff = s.recorder.effective("pkmap")
        XCTAssertEqual(eff.map(\.censoredRight), [true])
        XCTAssertEqual(eff.map(\.uncertain), [false])
    }
}
