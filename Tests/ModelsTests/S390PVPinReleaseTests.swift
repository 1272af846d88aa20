import XCTest
import TraceIngest
import EventModel
import Replay
@testable import Models

/// s390pv pins (spec §5.3 `GUP_ACQUIRE(pin)` / `GUP_RELEASE`, reporting conventions): the `io_hold` window
/// opens at the entry of the gup API call and closes at the entry of the unpin API call that releases it.
/// Timestamps in µs.
final class S390PVPinReleaseTests: XCTestCase {
    func script() -> ModelScript {
        let r = AddressResolver(profile: KernelProfile(arch: .s390x), userFixedLayout: false, userFixedArch: true)
        return ModelScript(S390PVModel(resolver: r))
    }
    func pin(_ s: ModelScript, _ us: UInt64, array: UInt64, pages: [UInt64], pid: Int32 = 100) {
        s.send(us, pid: pid, .gupAcquire(.pin, path: .remote, start: 0x1000, pages: UInt32(pages.count), flags: 0, array: array))
        for p in pages { s.send(us + 5, pid: pid, .gupPage(page: p, refs: 1, flags: 0x40000)) }
        s.send(us + 6, pid: pid, .gupReturn(.pin, path: .remote, result: Int64(pages.count)))
    }
    func holds(_ s: ModelScript) -> [(UInt64, UInt64)] {
        s.recorder.windows(.granted, api: "gup_pin").map { ($0.openNs / 1000, $0.closeNs / 1000) }.sorted { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
    }

    // The window opens at the API entry (10), not at the grab (15), and closes at unpin_user_page (40),
    // not at its nested gup_put_folio (41).
    func testPinOpensAtTheAPIEntryAndClosesAtTheUnpinEntry() {
        let s = script()
        pin(s, 10, array: 0xA0, pages: [0x1000])
        s.send(40, .gupRelease(.page, pointer: 0x1000, count: 1, dirty: false))
        s.send(41, .gupPut(page: 0x1000, refs: 1, flags: 0x40000))
        s.finish()
        XCTAssertEqual(holds(s).map(\.0), [10])
        XCTAssertEqual(holds(s).map(\.1), [40])
        XCTAssertEqual(s.model.counters["pins_released"], 1)
        XCTAssertTrue(s.recorder.anomalies.isEmpty, s.recorder.anomalyKinds.description)
    }

    // The nested put is the same release: a page pinned twice stays held after one unpin.
    func testNestedPutIsNotASecondRelease() {
        let s = script()
        pin(s, 10, array: 0xA0, pages: [0x1000])
        pin(s, 20, array: 0xB0, pages: [0x1000])
        s.send(40, .gupRelease(.page, pointer: 0x1000, count: 1, dirty: false))
        s.send(41, .gupPut(page: 0x1000, refs: 1, flags: 0x40000))
        XCTAssertTrue(holds(s).isEmpty)
        s.send(60, .gupRelease(.page, pointer: 0x1000, count: 1, dirty: false))
        s.send(61, .gupPut(page: 0x1000, refs: 1, flags: 0x40000))
        XCTAssertEqual(holds(s).map(\.0), [10])
        XCTAssertEqual(holds(s).map(\.1), [60])
        XCTAssertTrue(s.recorder.anomalies.isEmpty, s.recorder.anomalyKinds.description)
    }

    // s390x 6.1 inlines gup_put_folio into unpin_user_page: the API entry alone releases.
    func testUnpinWithoutNestedPutsReleases() {
        let s = script()
        pin(s, 10, array: 0xA0, pages: [0x1000, 0x2000])
        s.send(50, .gupRelease(.page, pointer: 0x1000, count: 1, dirty: false))
        s.send(51, .gupRelease(.page, pointer: 0x2000, count: 1, dirty: false))
        s.send(90, .marker(phase: 0))
        s.finish()
        XCTAssertEqual(holds(s).map(\.1), [50, 51])
        XCTAssertEqual(s.model.counters["unpin_calls"], 2)
    }

    // unpin_user_pages_dirty_lock(pages, n, 0) calls unpin_user_pages(pages, n), which calls gup_put_folio
    // per page: one release of the n pages the pin call with that array took, at the outer entry.
    func testArrayUnpinReleasesThePinCallsPagesOnce() {
        let s = script()
        pin(s, 10, array: 0xA0, pages: [0x1000, 0x2000, 0x3000])
        s.send(30, .gupRelease(.pages, pointer: 0xA0, count: 3, dirty: false))
        s.send(31, .gupRelease(.pages, pointer: 0xA0, count: 3, dirty: false))
        for p: UInt64 in [0x1000, 0x2000, 0x3000] { s.send(32, .gupPut(page: p, refs: 1, flags: 0x40000)) }
        s.finish()
        XCTAssertEqual(holds(s).map(\.1), [30, 30, 30])
        XCTAssertEqual(s.model.counters["unpin_calls"], 1)
        XCTAssertEqual(s.model.counters["pins_released"], 3)
        XCTAssertTrue(s.recorder.anomalies.isEmpty, s.recorder.anomalyKinds.description)
    }

    // A second pin call filling the same array: the array then names the second call's pages.
    func testArrayReusedByALaterPinCall() {
        let s = script()
        pin(s, 10, array: 0xA0, pages: [0x1000])
        s.send(20, .gupRelease(.pages, pointer: 0xA0, count: 1, dirty: true))
        pin(s, 30, array: 0xA0, pages: [0x2000])
        s.send(40, .gupRelease(.pages, pointer: 0xA0, count: 1, dirty: true))
        s.finish()
        XCTAssertEqual(holds(s).map(\.0), [10, 30])
        XCTAssertEqual(holds(s).map(\.1), [20, 40])
    }

    // An array no pin call in the trace filled: unresolved; its nested puts release, dated at the unpin entry.
    func testUnresolvedArrayUnpinReleasesThroughItsNestedPuts() {
        let s = script()
        pin(s, 10, array: 0xA0, pages: [0x1000])
        s.send(30, .gupRelease(.pages, pointer: 0xCC, count: 1, dirty: false))
        s.send(33, .gupPut(page: 0x1000, refs: 1, flags: 0x40000))
        s.finish()
        XCTAssertEqual(holds(s).map(\.1), [30])
        XCTAssertEqual(s.model.counters["unpin_calls_unresolved"], 1)
    }

    // A probe without `pages=`: the unpin takes the same task's latest pin call.
    func testPinCallWithoutArrayIsFoundByTask() {
        let s = script()
        pin(s, 10, array: 0, pages: [0x1000, 0x2000], pid: 7)
        s.send(30, pid: 7, .gupRelease(.pages, pointer: 0xCC, count: 2, dirty: false))
        s.finish()
        XCTAssertEqual(holds(s).map(\.1), [30, 30])
    }

    // Without unpin probes a FOLL_PIN gup_put_folio on its own still releases, at its entry.
    func testStandalonePutReleases() {
        let s = script()
        pin(s, 10, array: 0xA0, pages: [0x1000])
        s.send(45, .gupPut(page: 0x1000, refs: 1, flags: 0x40000))
        s.finish()
        XCTAssertEqual(holds(s).map(\.1), [45])
    }

    // Held to the end: censored; uncertain only when the capture shows no release event at all.
    func testHoldOpenAtTheEndIsUncertainWithoutAReleaseProbe() {
        let s = script()
        pin(s, 10, array: 0xA0, pages: [0x1000])
        s.send(90, .marker(phase: 0))
        s.finish()
        let w = s.recorder.windows(.granted, api: "gup_pin")
        XCTAssertEqual(w.map(\.censoredRight), [true])
        XCTAssertEqual(w.map(\.uncertain), [true])

        let t = script()
        pin(t, 10, array: 0xA0, pages: [0x1000, 0x2000])
        t.send(20, .gupRelease(.page, pointer: 0x2000, count: 1, dirty: false))
        t.send(90, .marker(phase: 0))
        t.finish()
        let open = t.recorder.windows(.granted, api: "gup_pin").filter(\.censoredRight)
        XCTAssertEqual(open.map(\.uncertain), [false])
    }

    // An unpin of a frame the model tracks with no pin left is `release_without_pin`; of a frame it never
    // saw, nothing (the pin predates the trace).
    func testReleaseWithoutPin() {
        let s = script()
        pin(s, 10, array: 0xA0, pages: [0x1000])
        s.send(20, .gupRelease(.page, pointer: 0x1000, count: 1, dirty: false))
        s.send(30, .gupRelease(.page, pointer: 0x1000, count: 1, dirty: false))
        s.send(40, .gupRelease(.page, pointer: 0x9000, count: 1, dirty: false))
        XCTAssertEqual(s.recorder.anomalyKinds, ["release_without_pin"])
    }
}
