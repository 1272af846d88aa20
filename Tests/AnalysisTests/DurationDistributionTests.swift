import XCTest
@testable import Analysis

final class DurationDistributionTests: XCTestCase {
    // Nearest rank: element ceil(p/100 * N) of the sorted values.
    func testExactNearestRank() {
        var d = DurationDistribution()
        for v: UInt64 in [30, 10, 20] { d.record(v) }
        XCTAssertEqual(d.percentile(50), 20)   // ceil(1.5) = 2nd
        XCTAssertEqual(d.percentile(99), 30)   // ceil(2.97) = 3rd
        var e = DurationDistribution()
        for v: UInt64 in [10, 30] { e.record(v) }
        XCTAssertEqual(e.percentile(50), 10)   // ceil(1.0) = 1st
        var f = DurationDistribution()
        for v in 1...60 { f.record(UInt64(v)) }
        XCTAssertEqual(f.percentile(99), 60)   // ceil(59.4) = 60th
        XCTAssertTrue(f.isExact)
        XCTAssertEqual(DurationDistribution().percentile(50), 0)
    }

    func testSwitchesToHDRPastTheExactLimitWithinThreeDigits() {
        var d = DurationDistribution()
        for v in 1...100_000 { d.record(UInt64(v) * 1000) }
        XCTAssertFalse(d.isExact)
        let p50 = d.percentile(50)
        XCTAssertLessThanOrEqual(abs(Int64(p50) - 50_000_000), 50_000)  // 0.1%
        XCTAssertEqual(d.count, 100_000)
    }

    func testMergeKeepsCounts() {
        var a = DurationDistribution(), b = DurationDistribution()
        for v in 1...3000 { a.record(UInt64(v)) }
        for v in 3001...6000 { b.record(UInt64(v)) }
        a.merge(b)
        XCTAssertEqual(a.count, 6000)
        XCTAssertFalse(a.isExact)
        XCTAssertLessThanOrEqual(abs(Int64(a.percentile(50)) - 3000), 3)
    }

    func testWindowStats() {
        var s = WindowStats()
        s.add(durationNs: 5, censored: true, uncertain: false)
        s.add(durationNs: 9, censored: false, uncertain: true)
        XCTAssertEqual(s.windows, 2)
        XCTAssertEqual(s.totalNs, 14)
        XCTAssertEqual(s.maxNs, 9)
        XCTAssertEqual(s.censored, 1)
        XCTAssertEqual(s.uncertain, 1)
    }
}
