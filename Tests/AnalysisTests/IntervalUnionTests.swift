import XCTest
@testable import Analysis

/// The union over time of windows (wall-clock time with at least one window open), worked by hand.
final class IntervalUnionTests: XCTestCase {
    func testOverlapsNestingAndGapsInAnyOrder() {
        // [100,400) ∪ [200,300) ∪ [450,500) ∪ [600,1000) = 300 + 50 + 400 = 750.
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]] {
            let spans: [(UInt64, UInt64)] = [(100, 400), (200, 300), (450, 500), (600, 1000)]
            var u = IntervalUnion()
            for i in order { u.add(open: spans[i].0, close: spans[i].1) }
            XCTAssertEqual(u.totalNs, 750, "order \(order)")
            XCTAssertTrue(u.isExact)
        }
    }

    func testAWindowThatBridgesSeveralSpansMergesThem() {
        // [0,10) [20,30) [40,50), then [5,45) joins them all: [0,50) = 50.
        var u = IntervalUnion()
        u.add(open: 0, close: 10); u.add(open: 20, close: 30); u.add(open: 40, close: 50)
        XCTAssertEqual(u.totalNs, 30)
        u.add(open: 5, close: 45)
        XCTAssertEqual(u.totalNs, 50)
        // Touching spans: [50,60) adds 10; an empty window adds nothing.
        u.add(open: 50, close: 60); u.add(open: 70, close: 70)
        XCTAssertEqual(u.totalNs, 60)
    }

    func testPastTheSpanLimitAnEarlyWindowMakesTheUnionALowerBound() {
        // n disjoint spans of 1 ns each, 2 ns apart: the union is n. Past the limit the oldest half is sealed.
        let n = IntervalUnion.spanLimit + 1
        var u = IntervalUnion()
        for i in 0..<UInt64(n) { u.add(open: 2 * i, close: 2 * i + 1) }
        XCTAssertEqual(u.totalNs, UInt64(n))
        XCTAssertTrue(u.isExact)
        // A window over the whole range: the true union is [0, 2n-1) = 2n-1; the sealed part is not
        // revisited, so the result is smaller, and flagged.
        u.add(open: 0, close: UInt64(2 * n - 1))
        XCTAssertFalse(u.isExact)
        XCTAssertLessThan(u.totalNs, UInt64(2 * n - 1))
        XCTAssertGreaterThanOrEqual(u.totalNs, UInt64(n))
    }
}
