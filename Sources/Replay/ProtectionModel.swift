import TraceIngest
import EventModel

/// A protection design as a state machine: normalized events and their context in, observations out.
/// Models must not know the input format.
public protocol ProtectionModel: AnyObject {
    /// `highmem`, `pks`, `s390pv`, `directmap`.
    var name: StaticString { get }
    /// Options as reported (`{"kmap_global": "unsupported"}`).
    var options: [String: String] { get }
    /// True for the event kinds this model consumes (they count as used).
    func wants(_ tag: ProtEventTag) -> Bool
    func apply(_ event: ProtEvent, in context: ExecutionContext, emit: ObservationSink)
    /// An IRQ/softirq/NMI instance started on the CPU (it is now the innermost context there).
    func contextStarted(_ context: ExecutionContext, at timestamp: UInt64, emit: ObservationSink)
    /// An IRQ/softirq/NMI instance ended (explicit exit or the flags showed it left).
    func contextEnded(_ context: ExecutionContext, at timestamp: UInt64, line: Int, emit: ObservationSink)
    /// Events were lost on `cpu` at about `timestamp`: state touching that CPU becomes uncertain.
    func eventsLost(cpu: Int32, at timestamp: UInt64)
    /// The trace ended at `timestamp` (the last event's): close what is open, right-censored.
    func finish(at timestamp: UInt64, emit: ObservationSink)
    /// Model-specific counters for the report (`kmap_local_lowmem`, `pkmap_flushes_inferred`, ...).
    var counters: [String: Int] { get }
    /// True once the trace showed the events this model is about (`--model auto` reports only those).
    var applicable: Bool { get }
    /// Every unprotected-access class and anomaly kind the model can report (zeros are reported too).
    var accessClasses: [String] { get }
    var anomalyKinds: [String] { get }
    /// The events the model reads and the ones that show the traced kernel has its mechanism
    /// (the report's coverage section and the observed/what-if basis).
    var requirements: ModelRequirements { get }
    /// The run's cap on live entries: every map keyed by pid, page, pfn or context instance asks it
    /// before inserting a new key (the `ReplayEngine` attaches its limit to each model it runs).
    func attach(_ limit: LiveStateLimit)
}

extension ProtectionModel {
    public func contextStarted(_ context: ExecutionContext, at timestamp: UInt64, emit: ObservationSink) {}
    /// Models without per-key state need no limit.
    public func attach(_ limit: LiveStateLimit) {}
}
