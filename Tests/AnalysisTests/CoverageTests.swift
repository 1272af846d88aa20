import XCTest
import EventModel
import Replay
@testable import Analysis

/// Coverage and basis from the event names of a trace.
final class CoverageTests: XCTestCase {
    let requirements = ModelRequirements(
        needs: [
            EventRequirement([.kprobe("kmap_high")], gives: "grants", withoutIt: "no grant", essential: true),
            EventRequirement([.kretprobe("kmap_high")], gives: "slot", withoutIt: "no slot"),
            EventRequirement([.kprobe("__kmap_flush_unused"), .kprobe("flush_all_zero_pkmaps")], gives: "flushes", withoutIt: "uncertain ends"),
            EventRequirement([.tracepoint("sched_switch")], gives: "tasks", withoutIt: "no tasks"),
            EventRequirement([.tracepointPrefix("sys_enter_")], gives: "syscalls", withoutIt: "no returns to user"),
        ],
        mechanism: [.kprobe("kmap_high")], observedMeans: "HIGHMEM kernel", whatIfMeans: "not shown")

    func summary(_ name: String, _ count: Int, function: String? = nil, isReturn: Bool = false) -> EventNormalizer.NameSummary {
        EventNormalizer.NameSummary(name: name, count: count, mapsTo: "x", function: function, isReturn: isReturn)
    }

    func testPresentAndMissingNeedsAndTheObservedBasis() {
        // The kprobe is named by the user (`my_kmap`), recognised by its function; the kretprobe by its
        // function and the return flag; `sys_enter_write` by the prefix.
        let events = [summary("my_kmap", 16, function: "kmap_high"), summary("my_kmap_ret", 15, function: "kmap_high", isReturn: true),
                      summary("sched_switch", 246), summary("sys_enter_write", 3), summary("sys_enter_read", 2)]
        let c = ModelCoverage.evaluate(requirements, events: events)
        XCTAssertEqual(c.basis, .observed)
        XCTAssertEqual(c.basisReason, "HIGHMEM kernel")
        XCTAssertEqual(c.needs.map(\.present), [true, true, false, true, true])
        XCTAssertEqual(c.needs[0].seen, ["kmap_high": 16])
        XCTAssertEqual(c.needs[1].seen, ["kmap_high%return": 15])
        XCTAssertEqual(c.needs[4].seen, ["sys_enter_*": 5])
        XCTAssertEqual(c.missing.map(\.probes), [["__kmap_flush_unused", "flush_all_zero_pkmaps"]])
        XCTAssertEqual(c.missing.map(\.withoutIt), ["uncertain ends"])
    }

    func testATracepointNamedLikeAFunctionIsNotAKprobe() {
        // A tracepoint called `kmap_high` (no probed function) does not show the kprobe: what-if.
        let c = ModelCoverage.evaluate(requirements, events: [summary("kmap_high", 3)])
        XCTAssertEqual(c.basis, .whatIf)
        XCTAssertEqual(c.basisReason, "not shown")
        XCTAssertFalse(c.needs[0].present)
    }

    func testMergeAddsCountsAndMixesTheBasis() {
        var a = ModelCoverage.evaluate(requirements, events: [summary("k", 2, function: "kmap_high")])
        let b = ModelCoverage.evaluate(requirements, events: [summary("sched_switch", 5)])
        a.merge(b)
        XCTAssertEqual(a.basis, .mixed)
        XCTAssertEqual(a.needs[0].seen, ["kmap_high": 2])
        XCTAssertEqual(a.needs[3].seen, ["sched_switch": 5])
    }
}
