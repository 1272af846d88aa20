import XCTest
import TraceIngest
import EventModel
@testable import Replay

/// A model that records the context every event ran in.
final class ContextProbe: ProtectionModel {
    let name: StaticString = "probe"
    var options: [String: String] { [:] }
    var counters: [String: Int] { [:] }
    let accessClasses: [String] = []
    let anomalyKinds: [String] = []
    let applicable = true
    let requirements = ModelRequirements(needs: [], mechanism: [], observedMeans: "", whatIfMeans: "a test model")
    var seen: [ExecutionContext] = []
    var ended: [ContextKind] = []
    var lostCPUs: [Int32] = []
    func wants(_ tag: ProtEventTag) -> Bool { tag == .marker }
    func apply(_ event: ProtEvent, in context: ExecutionContext, emit: ObservationSink) { seen.append(context) }
    func contextEnded(_ context: ExecutionContext, at timestamp: UInt64, line: Int, emit: ObservationSink) { ended.append(context.kind) }
    func eventsLost(cpu: Int32, at timestamp: UInt64) { lostCPUs.append(cpu) }
    func finish(at timestamp: UInt64, emit: ObservationSink) {}
}

final class NullSink: ObservationSink {
    func window(_ w: ExposureWindow) {}
    func access(_ a: AccessRecord) {}
    func anomaly(_ a: Anomaly) {}
}

final class ReplayEngineTests: XCTestCase {
    func event(_ ts: UInt64, cpu: Int32 = 0, pid: Int32 = 5, flags: TraceFlags = TraceFlags(bits: 0), _ kind: ProtEventKind = .marker(phase: 0)) -> ProtEvent {
        ProtEvent(line: 0, timestamp: ts, cpu: cpu, pid: pid, comm: 1, flags: flags, kind: kind)
    }

    func testContextKindsFromFlags() {
        let m = ContextProbe()
        let e = ReplayEngine(models: [m], sink: NullSink())
        e.consume(event(1))
        e.consume(event(2, flags: TraceFlags(bits: TraceFlags.softirq)))
        e.consume(event(3, flags: TraceFlags(bits: TraceFlags.hardirq | TraceFlags.softirq)))
        e.consume(event(4, flags: TraceFlags(bits: TraceFlags.softirq)))
        e.consume(event(5))
        XCTAssertEqual(m.seen.map(\.kind), [.task, .softirq, .hardirq, .softirq, .task])
        XCTAssertEqual(m.ended, [.hardirq, .softirq])
        // The same softirq instance before and after the nested hardirq.
        XCTAssertEqual(m.seen[1].instance, m.seen[3].instance)
        XCTAssertNotEqual(m.seen[1].instance, m.seen[2].instance)
        XCTAssertEqual(m.seen[2].pid, 5, "IRQ events carry the interrupted task")
    }

    func testExplicitIRQEventsStartNewInstances() {
        let m = ContextProbe()
        let e = ReplayEngine(models: [m], sink: NullSink())
        let h = TraceFlags(bits: TraceFlags.hardirq)
        e.consume(event(1, flags: h, .irqEnter(.hardirq, vector: 1)))
        e.consume(event(2, flags: h))
        e.consume(event(3, flags: h, .irqExit(.hardirq, vector: 1)))
        e.consume(event(4, flags: h, .irqEnter(.hardirq, vector: 2)))
        e.consume(event(5, flags: h))
        XCTAssertNotEqual(m.seen[0].instance, m.seen[1].instance)
        XCTAssertEqual(m.ended, [.hardirq])
    }

    func testStatsAndBackwardsTimestamps() {
        let m = ContextProbe()
        let e = ReplayEngine(models: [m], sink: NullSink())
        e.consume(event(10))
        e.consume(event(8, cpu: 1))
        e.consume(event(12, cpu: 99_999))
        e.lost(cpu: 1, count: 4, line: 3)
        XCTAssertEqual(e.stats.firstTimestamp, 10)
        XCTAssertEqual(e.stats.lastTimestamp, 10)
        XCTAssertEqual(e.stats.timestampsBackwards, 1)
        XCTAssertEqual(e.stats.cpuOutOfRange, 1)
        XCTAssertEqual(e.stats.cpusSeen, 2)
        XCTAssertEqual(m.lostCPUs, [1])
    }
}

/// `LiveStateLimit` and the engine's own bound (IRQ nesting per CPU).
final class LiveStateLimitTests: XCTestCase {
    func testCountsRefusalsByMapAndRecordsTheFirstOnce() {
        let limit = LiveStateLimit(cap: 3)
        var calls: [LiveStateLimit.Hit] = []
        limit.onFirstRefusal = { calls.append($0) }
        XCTAssertTrue(limit.admits(2))
        XCTAssertFalse(limit.admits(3))
        limit.line = 42
        limit.refuse("s390pv", "frames")
        limit.line = 43
        limit.refuse("s390pv", "frames")
        limit.refuse("highmem", "pkmap_slots")
        XCTAssertEqual(limit.refusals, 3)
        XCTAssertEqual(limit.refusalsByMap, ["s390pv.frames": 2, "highmem.pkmap_slots": 1])
        XCTAssertEqual(calls.count, 1)
        XCTAssertEqual(limit.first?.line, 42)
        XCTAssertEqual(limit.summary.first, calls.first)
        XCTAssertEqual(calls.first?.warning(source: "trace.txt"),
                       "trace.txt:42: 3 live frames tracked by the s390pv model (the --max-live-entries cap); later new frames are counted in state_cap_refusals, not modelled")
    }

    func testEngineAttachesItsLimitAndKeepsTheLineCurrent() {
        final class Holder: ProtectionModel {
            let name: StaticString = "holder"
            var options: [String: String] { [:] }
            var counters: [String: Int] { [:] }
            let accessClasses: [String] = []
            let anomalyKinds: [String] = []
            let applicable = true
            let requirements = ModelRequirements(needs: [], mechanism: [], observedMeans: "", whatIfMeans: "a test model")
            var limit: LiveStateLimit?
            var lines: [Int] = []
            func attach(_ limit: LiveStateLimit) { self.limit = limit }
            func wants(_ tag: ProtEventTag) -> Bool { tag == .marker }
            func apply(_ event: ProtEvent, in context: ExecutionContext, emit: ObservationSink) { lines.append(limit!.line) }
            func contextEnded(_ context: ExecutionContext, at timestamp: UInt64, line: Int, emit: ObservationSink) {}
            func eventsLost(cpu: Int32, at timestamp: UInt64) {}
            func finish(at timestamp: UInt64, emit: ObservationSink) {}
        }
        let m = Holder()
        let limit = LiveStateLimit(cap: 5)
        let e = ReplayEngine(models: [m], sink: NullSink(), limit: limit)
        XCTAssertTrue(m.limit === limit)
        e.consume(ProtEvent(line: 7, timestamp: 1, cpu: 0, pid: 1, comm: 1, flags: TraceFlags(), kind: .marker(phase: 0)))
        e.consume(ProtEvent(line: 9, timestamp: 2, cpu: 0, pid: 1, comm: 1, flags: TraceFlags(), kind: .marker(phase: 0)))
        XCTAssertEqual(m.lines, [7, 9])
        XCTAssertEqual(e.stats.liveState.cap, 5)
    }

    // Entry events without exits and no flag column could nest IRQ instances without end.
    func testIRQNestingPerCPUIsBounded() {
        let m = ContextProbe()
        let limit = LiveStateLimit()
        let e = ReplayEngine(models: [m], sink: NullSink(), limit: limit)
        let depth = ReplayEngine.maximumIRQDepth
        for i in 0...depth {   // softirq, hardirq, softirq, ...: each nests in the one before
            let kind: IRQKind = i % 2 == 0 ? .softirq : .hardirq
            e.consume(ProtEvent(line: i + 1, timestamp: UInt64(i + 1), cpu: 0, pid: 5, comm: 1, flags: TraceFlags(), kind: .irqEnter(kind, vector: 0)))
        }
        e.consume(ProtEvent(line: depth + 2, timestamp: UInt64(depth + 2), cpu: 0, pid: 5, comm: 1, flags: TraceFlags(), kind: .marker(phase: 0)))
        XCTAssertEqual(limit.refusalsByMap, ["replay.irq_depth": 1])
        XCTAssertEqual(limit.first?.line, depth + 1)
        XCTAssertEqual(limit.first?.fixed, true)
        XCTAssertEqual(m.seen.last?.kind, .hardirq, "events run in the innermost instance tracked")
        XCTAssertEqual(e.stats.liveState.refusals, 1)
        // A flag column showing task context unwinds everything tracked.
        e.consume(ProtEvent(line: 42, timestamp: 42, cpu: 0, pid: 5, comm: 1, flags: TraceFlags(bits: 0), kind: .marker(phase: 0)))
        XCTAssertEqual(m.ended.count, depth)
    }
}
