import TraceIngest
import EventModel
import Replay

// The one file that depends on how the normalizer and the ProtEvent sinks are wired (the API the
// text pipeline refactor changes): adapt here, nothing else should need to change.

/// A new normalizer with the default probe map, decoding every kind (as `--model auto` does).
public func makeNormalizer(names: StringTable, comms: StringTable, symbols: StringTable,
                           into sink: ProtEventSink) -> EventNormalizer {
    EventNormalizer(probeMap: ProbeMap(), names: names, comms: comms, symbols: symbols, into: sink)
}

/// What a normalizer hands on, in order, for replaying later.
public typealias ProtItem = ProtEventItem

extension ProtEventItem {
    /// Events and ticks are one per trace event; the rest ride along.
    var isTraceEvent: Bool {
        switch self { case .event, .tick: return true; default: return false }
    }
}

/// Keeps everything the normalizer sends.
typealias CollectingSink = ProtEventRecorder

/// Counts what the normalizer sends (the parse + normalize benchmarks).
public final class CountingProtSink: ProtEventSink {
    public private(set) var events = 0
    public private(set) var ticks = 0
    public private(set) var other = 0
    public init() {}
    public func consume(_ event: ProtEvent) { events += 1 }
    public func tick(cpu: Int32, pid: Int32, timestamp: UInt64, flags: TraceFlags, line: Int) { ticks += 1 }
    public func lost(cpu: Int32, count: UInt64, line: Int) { other += 1 }
    public func bufferStarted(cpu: Int32, line: Int) { other += 1 }
    public func addressFact(_ fact: AddressFact) { other += 1 }
}
