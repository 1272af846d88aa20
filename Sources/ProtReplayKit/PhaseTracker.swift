import TraceIngest
import EventModel
import Analysis

/// Between the normalized events and the replay: turns phase markers (`.marker(phase:)`, text after
/// `wl phase `) into `PhaseSegments`, and passes every event on unchanged.
final class PhaseTracker: ProtEventSink {
    let phases: PhaseSegments
    private let symbols: StringTable
    private let downstream: ProtEventSink

    init(phases: PhaseSegments, symbols: StringTable, downstream: ProtEventSink) {
        self.phases = phases
        self.symbols = symbols
        self.downstream = downstream
    }

    func consume(_ event: ProtEvent) {
        if case let .marker(phase) = event.kind, phase != 0 {
            phases.marker(symbols.string(phase), at: event.timestamp, line: event.line)
        }
        downstream.consume(event)
    }
    func lost(cpu: Int32, count: UInt64, line: Int) { downstream.lost(cpu: cpu, count: count, line: line) }
    func bufferStarted(cpu: Int32, line: Int) { downstream.bufferStarted(cpu: cpu, line: line) }
    func tick(cpu: Int32, pid: Int32, timestamp: UInt64, flags: TraceFlags, line: Int) {
        downstream.tick(cpu: cpu, pid: pid, timestamp: timestamp, flags: flags, line: line)
    }
    func addressFact(_ fact: AddressFact) { downstream.addressFact(fact) }
}
