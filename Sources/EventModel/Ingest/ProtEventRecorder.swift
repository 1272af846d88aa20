import TraceIngest

/// One thing a `ProtEventSink` receives, kept for replaying later (a parsed piece of text, a benchmark).
public enum ProtEventItem: Sendable {
    case event(ProtEvent)
    case tick(cpu: Int32, pid: Int32, timestamp: UInt64, flags: TraceFlags, line: Int)
    case lost(cpu: Int32, count: UInt64, line: Int)
    case bufferStarted(cpu: Int32, line: Int)
    case fact(AddressFact)

    /// Hands the item to `sink` as it was received.
    @inline(__always)
    public func send(to sink: ProtEventSink) {
        switch self {
        case let .event(e): sink.consume(e)
        case let .tick(cpu, pid, ts, flags, line): sink.tick(cpu: cpu, pid: pid, timestamp: ts, flags: flags, line: line)
        case let .lost(cpu, count, line): sink.lost(cpu: cpu, count: count, line: line)
        case let .bufferStarted(cpu, line): sink.bufferStarted(cpu: cpu, line: line)
        case let .fact(f): sink.addressFact(f)
        }
    }
}

/// A sink that keeps everything it receives, in order.
public final class ProtEventRecorder: ProtEventSink {
    public var items: [ProtEventItem] = []

    public init() {}

    public func consume(_ event: ProtEvent) { items.append(.event(event)) }
    public func tick(cpu: Int32, pid: Int32, timestamp: UInt64, flags: TraceFlags, line: Int) {
        items.append(.tick(cpu: cpu, pid: pid, timestamp: timestamp, flags: flags, line: line))
    }
    public func lost(cpu: Int32, count: UInt64, line: Int) { items.append(.lost(cpu: cpu, count: count, line: line)) }
    public func bufferStarted(cpu: Int32, line: Int) { items.append(.bufferStarted(cpu: cpu, line: line)) }
    public func addressFact(_ fact: AddressFact) { items.append(.fact(fact)) }
}
