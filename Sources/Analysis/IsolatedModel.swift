import TraceIngest
import EventModel
import Replay

/// Runs a model with its own observation sink, so that several instances of one model (two PKS
/// configurations, say) can replay side by side in one `ReplayEngine` and still fold separately:
/// observations carry only the model's name, so the `SummaryBuilder` keys the fold by the instance.
/// Made by `SummaryBuilder.isolate(_:)`; the model's code is untouched.
public final class IsolatedModel: ProtectionModel {
    public let inner: ProtectionModel
    let sink: ObservationSink

    init(_ inner: ProtectionModel, sink: ObservationSink) {
        self.inner = inner
        self.sink = sink
    }

    public var name: StaticString { inner.name }
    public var options: [String: String] { inner.options }
    public func wants(_ tag: ProtEventTag) -> Bool { inner.wants(tag) }
    public func apply(_ event: ProtEvent, in context: ExecutionContext, emit: ObservationSink) { inner.apply(event, in: context, emit: sink) }
    public func contextStarted(_ context: ExecutionContext, at timestamp: UInt64, emit: ObservationSink) {
        inner.contextStarted(context, at: timestamp, emit: sink)
    }
    public func contextEnded(_ context: ExecutionContext, at timestamp: UInt64, line: Int, emit: ObservationSink) {
        inner.contextEnded(context, at: timestamp, line: line, emit: sink)
    }
    public func eventsLost(cpu: Int32, at timestamp: UInt64) { inner.eventsLost(cpu: cpu, at: timestamp) }
    public func attach(_ limit: LiveStateLimit) { inner.attach(limit) }
    public func finish(at timestamp: UInt64, emit: ObservationSink) { inner.finish(at: timestamp, emit: sink) }
    public var counters: [String: Int] { inner.counters }
    public var applicable: Bool { inner.applicable }
    public var accessClasses: [String] { inner.accessClasses }
    public var anomalyKinds: [String] { inner.anomalyKinds }
    public var requirements: ModelRequirements { inner.requirements }
}

/// Forwards one model instance's observations into its own fold.
final class InstanceSink: ObservationSink {
    unowned let builder: SummaryBuilder
    let fold: SummaryBuilder.ModelFold

    init(builder: SummaryBuilder, fold: SummaryBuilder.ModelFold) {
        self.builder = builder
        self.fold = fold
    }

    func window(_ w: ExposureWindow) { builder.window(w, into: fold) }
    func access(_ a: AccessRecord) { builder.access(a, into: fold) }
    func anomaly(_ a: Anomaly) { builder.anomaly(a, into: fold) }
}
