import TraceIngest
import EventModel
import Replay
import Models
import Analysis

/// The replay half of the pipeline on events that were normalized elsewhere (the hot-path benchmarks
/// replay recorded events): address learning in front of the replay engine and the models, into an
/// observation sink or a summary fold.
public final class ReplayStage {
    /// Send normalized events here.
    public let front: ProtEventSink
    private let engine: ReplayEngine
    /// The fold, when no other observation sink was given.
    public let summaries: SummaryBuilder?
    public let models: [ProtectionModel]

    /// - Parameters:
    ///   - selection: the models, built against this stage's resolver.
    ///   - observations: where windows, accesses and anomalies go; nil folds them into `summaries`.
    public init(selection: ModelConfiguration, comms: StringTable, symbols: StringTable, observations: ObservationSink? = nil) throws {
        let resolver = AddressResolver(profile: KernelProfile(), userFixedLayout: false, userFixedArch: false)
        models = try selection.makeModels(ModelBuildContext(resolver: resolver, symbols: symbols))
        let builder = observations == nil ? SummaryBuilder(comms: comms, symbols: symbols) : nil
        summaries = builder
        for m in models { builder?.register(m) }
        engine = ReplayEngine(models: models, sink: observations ?? builder!)
        front = AddressLearning(resolver: resolver, downstream: engine)
    }

    /// The end of the events: windows still open are closed, censored.
    public func finish() { engine.finish() }

    /// Each model's summary (only when this stage folds).
    public func modelSummaries() -> [ModelSummary] { models.compactMap { summaries?.summary(for: $0) } }
}
