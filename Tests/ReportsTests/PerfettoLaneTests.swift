import XCTest
@testable import Reports

/// `Lane`: which windows may share one Perfetto track (slices there must nest in (timestamp, file order)).
final class PerfettoLaneTests: XCTestCase {
    /// The n-th window written, [open, close].
    func span(_ n: UInt64, _ open: UInt64, _ close: UInt64) -> (Stamp, Stamp) {
        (Stamp(ts: open, seq: 2 * n), Stamp(ts: close, seq: 2 * n + 1))
    }

    func testNestedDisjointTouchingAndEmptyWindowsShareALane() {
        var lane = Lane(uuid: 1)
        let inner = span(0, 20, 30), outer = span(1, 10, 40), after = span(2, 40, 50), empty1 = span(3, 50, 50), empty2 = span(4, 50, 50)
        for (b, e) in [inner, outer, after, empty1, empty2] {
            XCTAssertTrue(lane.admits(begin: b, end: e), "\(b.ts)-\(e.ts)")
            lane.insert(begin: b, end: e)
        }
        // outer enclosed inner; after, empty1, empty2 follow in file order at the shared instants.
        XCTAssertEqual(lane.outermost.map { "\($0.begin.ts)-\($0.end.ts)" }, ["10-40", "40-50", "50-50", "50-50"])
    }

    func testCrossingWindowsDoNot() {
        var lane = Lane(uuid: 1)
        let a = span(0, 10, 30)
        lane.insert(begin: a.0, end: a.1)
        let crossing = span(1, 20, 40), sameOpenLaterWritten = span(2, 10, 30)
        XCTAssertFalse(lane.admits(begin: crossing.0, end: crossing.1))
        // Same timestamps but written later: its begin sorts after a's begin, its end after a's end.
        XCTAssertFalse(lane.admits(begin: sameOpenLaterWritten.0, end: sameOpenLaterWritten.1))
        // Closing at a's close but opening before it encloses a (a's end is earlier in the file).
        let enclosing = span(3, 5, 30)
        XCTAssertTrue(lane.admits(begin: enclosing.0, end: enclosing.1))
    }

    func testForgottenWindowsAreNeverCrossed() {
        var lane = Lane(uuid: 1)
        var n: UInt64 = 0
        for i in 0..<UInt64(Lane.remembered + 10) {
            let s = span(n, 100 + 10 * i, 105 + 10 * i)
            lane.insert(begin: s.0, end: s.1)
            n += 1
        }
        XCTAssertEqual(lane.outermost.count, Lane.remembered)
        // Crosses the first (forgotten) window 100-105: refused though the lane no longer lists it.
        let crossing = span(n, 103, 2_000_000)
        XCTAssertFalse(lane.admits(begin: crossing.0, end: crossing.1))
        // Encloses every window, forgotten or not: admitted, and then it is the lane's only outermost slice.
        let all = span(n + 1, 50, 2_000_000)
        XCTAssertTrue(lane.admits(begin: all.0, end: all.1))
        lane.insert(begin: all.0, end: all.1)
        XCTAssertEqual(lane.outermost.count, 1)
        XCTAssertNil(lane.forgotten)
    }
}
