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
    func event(_ ts: UInt64, cpu: Int32 = 0, pid: Int32 = 5, flags: TraceFlags = TraceFlags(bits: 0), _ kind: ProtEventKind = .marker) -> ProtEvent {
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
