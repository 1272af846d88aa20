import XCTest
import TraceIngest
import EventModel
import Replay
@testable import Analysis

final class MergeAndComparisonTests: XCTestCase {
    static let percentiles: [Double] = [0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 100]

    func assertSame(_ a: DurationDistribution, _ b: DurationDistribution, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        XCTAssertEqual(a.isExact, b.isExact, file: file, line: line)
        for p in Self.percentiles { XCTAssertEqual(a.percentile(p), b.percentile(p), "p\(p)", file: file, line: line) }
    }

    func testExactDistributionRoundTripsThroughEntries() {
        var d = DurationDistribution()
        for v: UInt64 in [30, 10, 20, 10, 0, 10] { d.record(v) }
        // Distinct values with their counts, in order.
        XCTAssertEqual(d.entries.map { [$0.value, $0.count] }, [[0, 1], [10, 3], [20, 1], [30, 1]])
        let r = DurationDistribution(entries: d.entries, exact: true)
        assertSame(d, r)
        XCTAssertEqual(r.percentile(50), 10)   // sorted [0,10,10,10,20,30]: #ceil(3) = 10
        XCTAssertEqual(r.percentile(99), 30)
    }

    func testHDRDistributionRoundTripsLosslessly() {
        var d = DurationDistribution()
        var x: UInt64 = 12345
        for _ in 0..<20_000 {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            d.record(1_000 + (x >> 40) % 5_000_000)
        }
        d.record(7)              // exact minimum and maximum must survive
        d.record(987_654_321)
        XCTAssertFalse(d.isExact)
        let r = DurationDistribution(entries: d.entries, exact: false)
        assertSame(d, r)
        XCTAssertEqual(r.percentile(100), 987_654_321)
        // Merging rebuilt distributions is merging the originals.
        var m1 = d
        m1.merge(d)
        var m2 = r
        m2.merge(DurationDistribution(entries: d.entries, exact: false))
        assertSame(m1, m2)
    }

    func testExactMergePastTheLimitEqualsRecordingEverything() {
        var a = DurationDistribution(), b = DurationDistribution(), all = DurationDistribution()
        for v in 1...3000 { a.record(UInt64(v * 7)); all.record(UInt64(v * 7)) }
        for v in 1...3000 { b.record(UInt64(v * 11)); all.record(UInt64(v * 11)) }
        let ra = DurationDistribution(entries: a.entries, exact: true)
        var merged = ra
        merged.merge(DurationDistribution(entries: b.entries, exact: true))
        assertSame(merged, all)
    }

    func testWindowStatsMergeByHand() {
        var a = WindowStats(), b = WindowStats()
        a.add(durationNs: 70_000, censored: false, uncertain: false)
        a.add(durationNs: 500_000, censored: true, uncertain: false)
        for d: UInt64 in [100_000, 200_000, 70_000] { b.add(durationNs: d, censored: false, uncertain: d == 200_000) }
        a.merge(b)
        // [70k, 500k] + [100k, 200k, 70k]: 5 windows, 940,000; sorted [70,70,100,200,500]k: p50 #3, p99 #5.
        XCTAssertEqual(a.windows, 5)
        XCTAssertEqual(a.totalNs, 940_000)
        XCTAssertEqual(a.maxNs, 500_000)
        XCTAssertEqual(a.censored, 1)
        XCTAssertEqual(a.uncertain, 1)
        XCTAssertEqual(a.p50Ns, 100_000)
        XCTAssertEqual(a.p99Ns, 500_000)
    }

    func testAttributionsMergeByName() {
        let m = Attribution.merged([.init(name: "a", windows: 1, totalNs: 10), .init(name: "b", windows: 2, totalNs: 50)],
                                   [.init(name: "a", windows: 3, totalNs: 45)])
        XCTAssertEqual(m, [.init(name: "a", windows: 4, totalNs: 55), .init(name: "b", windows: 2, totalNs: 50)])
    }

    func summary(_ durations: [UInt64], model: String = "highmem", accesses: Int = 0) -> ModelSummary {
        var l = LayerSummary()
        for d in durations {
            l.all.add(durationNs: d, censored: false, uncertain: false)
            l.byScope["ctx", default: WindowStats()].add(durationNs: d, censored: false, uncertain: false)
        }
        l.topSites = [.init(name: "site_\(durations.count)", windows: durations.count, totalNs: durations.reduce(0, +))]
        var acc = AccessSummary()
        acc.total = accesses
        return ModelSummary(model: model, options: [:], counters: ["pushes": durations.count], accessClasses: [], anomalyKinds: [],
                            granted: l, effective: l, intended: LayerSummary(), accesses: acc, anomalies: AnomalySummary())
    }

    func testComparisonWithItselfHasZeroDeltas() {
        let s = summary([70_000, 500_000])
        let c = Comparison(labels: ["a", "b"], traces: [[("trace.events", 14)], [("trace.events", 14)]], models: [[s], [s]])
        XCTAssertFalse(c.groups[0].rows.isEmpty)
        for r in c.traceRows + c.groups[0].rows {
            XCTAssertEqual(r.delta(1), 0, r.key)
            XCTAssertFalse(r.changed)
        }
        XCTAssertTrue(c.groups[0].shifted.isEmpty)
        XCTAssertEqual(c.groups[0].sitesAppeared[1], [])
    }

    func testComparisonDeltasRatiosShiftsAndSitesByHand() {
        let a = summary([70_000, 500_000]), b = summary([70_000, 600_000, 100_000], accesses: 2)
        let c = Comparison(labels: ["a", "b"], traces: [[], []], models: [[a], [b]])
        let g = c.groups[0]
        func row(_ k: String) -> Comparison.Row { g.rows.first { $0.key == k }! }
        XCTAssertEqual(row("exposure.granted.total_ns").values, [570_000, 770_000])
        XCTAssertEqual(row("exposure.granted.total_ns").delta(1), 200_000)
        XCTAssertEqual(row("exposure.granted.total_ns").ratio(1)!, 770.0 / 570.0, accuracy: 1e-12)
        // p50: [70k,500k] #1 = 70k; [70k,100k,600k] #ceil(1.5)=#2 = 100k.
        XCTAssertEqual(row("exposure.granted.p50_ns").values, [70_000, 100_000])
        XCTAssertEqual(row("unprotected_accesses.total").values, [0, 2])
        XCTAssertNil(row("unprotected_accesses.total").ratio(1))
        XCTAssertEqual(g.shifted.map(\.key), ["exposure.granted", "exposure.granted.by_scope.ctx", "exposure.effective", "exposure.effective.by_scope.ctx"])
        XCTAssertEqual(g.sitesAppeared[1], ["site_3"])
        XCTAssertEqual(g.sitesDisappeared[1], ["site_2"])
    }

    func testTimelineBucketsByHand() {
        var t = Timeline()
        func w(_ o: UInt64, _ c: UInt64, cpu: Int32 = 0, scope: Scope = .ctx) -> ExposureWindow {
            ExposureWindow(model: "highmem", layer: .effective, scope: scope, frame: nil, alias: "fixmap_kmap", api: "kmap_local_page",
                           holderPid: 1, holderComm: 0, holderContext: .task, cpu: cpu, openNs: o, closeNs: c, site: 0, closeCause: .unmap)
        }
        // Width 1 ns while the span fits 512 buckets: [10, 14) covers buckets 10..14, 1 ns in 10..13, 0 in 14.
        t.add(w(10, 14))
        XCTAssertEqual(t.bucketWidthNs, 1)
        XCTAssertEqual(t.sortedLanes[0].cells[10]?.coveredNs, 1)
        XCTAssertEqual(t.sortedLanes[0].cells.values.reduce(0) { $0 + $1.coveredNs }, 4)
        // A window at 2000 ns needs the span 10..2000 in < 512 buckets: width 4 (10>>2=2 .. 2000>>2=500).
        t.add(w(2000, 2004, cpu: 1, scope: .global))
        XCTAssertEqual(t.bucketWidthNs, 4)
        XCTAssertEqual(t.lo, 2)
        XCTAssertEqual(t.hi, 501)
        // [10,14) at width 4: bucket 2 = [8,12) holds 2 ns, bucket 3 = [12,16) holds 2 ns.
        let lane0 = t.sortedLanes.first { $0.cpu == 0 }!
        XCTAssertEqual(lane0.cells[2]?.coveredNs, 2)
        XCTAssertEqual(lane0.cells[3]?.coveredNs, 2)
        t.addAccess(at: 2001, cpu: 1)
        XCTAssertEqual(t.accessMarks.first?.buckets[500], 1)
    }

    /// A model that emits one granted window per event, of the length it was configured with.
    final class FixedModel: ProtectionModel {
        let length: UInt64
        init(length: UInt64) { self.length = length }
        var name: StaticString { "fixed" }
        var options: [String: String] { ["length": String(length)] }
        var requirements: ModelRequirements { ModelRequirements(needs: [], mechanism: [], observedMeans: "", whatIfMeans: "a test model") }
        func wants(_ tag: ProtEventTag) -> Bool { true }
        func apply(_ event: ProtEvent, in context: ExecutionContext, emit: ObservationSink) {}
        func contextEnded(_ context: ExecutionContext, at timestamp: UInt64, line: Int, emit: ObservationSink) {}
        func eventsLost(cpu: Int32, at timestamp: UInt64) {}
        func finish(at timestamp: UInt64, emit: ObservationSink) {
            emit.window(ExposureWindow(model: "fixed", layer: .granted, scope: .ctx, frame: nil, alias: "x", api: "x", holderPid: 1,
                                       holderComm: 0, holderContext: .task, cpu: 0, openNs: 100, closeNs: 100 + length, site: 0, closeCause: .unmap))
        }
        var counters: [String: Int] { [:] }
        var applicable: Bool { true }
        var accessClasses: [String] { [] }
        var anomalyKinds: [String] { [] }
    }

    func testIsolatedInstancesOfOneModelFoldSeparately() {
        let b = SummaryBuilder(comms: StringTable(), symbols: StringTable())
        let one = b.isolate(FixedModel(length: 10)), two = b.isolate(FixedModel(length: 25))
        let engine = ReplayEngine(models: [one, two], sink: b)
        engine.finish()
        XCTAssertEqual(b.summary(for: one).granted.all.totalNs, 10)
        XCTAssertEqual(b.summary(for: two).granted.all.totalNs, 25)
        XCTAssertEqual(b.summary(for: one).granted.all.windows, 1)
        XCTAssertEqual(b.summary(for: two).options, ["length": "25"])
    }
}
