import TraceIngest
import Replay

/// Folds observations into per-model summaries as they arrive: windows into aggregates as they close,
/// never a list of every window (memory stays bounded by the number of distinct sites and tasks).
public final class SummaryBuilder: ObservationSink {
    public let comms: StringTable
    public let symbols: StringTable
    public static let topLimit = 10
    public static let anomalyExampleLimit = 10

    final class LayerFold {
        var all = WindowStats()
        var byScope: [String: WindowStats] = [:]
        var byAPI: [String: WindowStats] = [:]
        var byCloseCause: [String: Int] = [:]
        var sites: [StringTable.ID: (Int, UInt64)] = [:]
        var tasks: [StringTable.ID: (Int, UInt64)] = [:]
    }

    final class ModelFold {
        var granted = LayerFold()
        var effective = LayerFold()
        var accesses = AccessSummary()
        var accessSites: [StringTable.ID: (Int, UInt64)] = [:]
        var anomalies = AnomalySummary()
    }

    private var folds: [String: ModelFold] = [:]
    /// Called for every window as it closes (the `--windows` CSV writer hooks in here).
    public var windowObserver: ((ExposureWindow) -> Void)?

    public init(comms: StringTable, symbols: StringTable) {
        self.comms = comms
        self.symbols = symbols
    }

    private func fold(_ model: String) -> ModelFold {
        if let f = folds[model] { return f }
        let f = ModelFold()
        folds[model] = f
        return f
    }

    public func window(_ w: ExposureWindow) {
        windowObserver?(w)
        let f = fold(w.model)
        let layer = w.layer == .granted ? f.granted : f.effective
        let d = w.durationNs
        layer.all.add(durationNs: d, censored: w.censored, uncertain: w.uncertain)
        layer.byScope[w.scope.rawValue, default: WindowStats()].add(durationNs: d, censored: w.censored, uncertain: w.uncertain)
        layer.byAPI[w.api, default: WindowStats()].add(durationNs: d, censored: w.censored, uncertain: w.uncertain)
        layer.byCloseCause[w.closeCause.rawValue, default: 0] += 1
        let s = layer.sites[w.site] ?? (0, 0)
        layer.sites[w.site] = (s.0 + 1, s.1 &+ d)
        let t = layer.tasks[w.holderComm] ?? (0, 0)
        layer.tasks[w.holderComm] = (t.0 + 1, t.1 &+ d)
    }

    public func access(_ a: AccessRecord) {
        let f = fold(a.model)
        f.accesses.total += 1
        if a.uncertain { f.accesses.uncertain += 1 }
        f.accesses.byClass[a.accessClass, default: 0] += 1
        f.accesses.byOutcome[a.outcome.rawValue, default: 0] += 1
        f.accesses.byContext[a.context.rawValue, default: 0] += 1
        let s = f.accessSites[a.site] ?? (0, 0)
        f.accessSites[a.site] = (s.0 + 1, 0)
    }

    public func anomaly(_ a: Anomaly) {
        let f = fold(a.model)
        f.anomalies.total += 1
        f.anomalies.byKind[a.kind, default: 0] += 1
        if f.anomalies.examples.count < SummaryBuilder.anomalyExampleLimit {
            f.anomalies.examples.append(AnomalyExample(line: a.line, timestampNs: a.timestamp, cpu: a.cpu, pid: a.pid,
                                                       kind: a.kind, detail: a.detail))
        }
    }

    /// Registers a model so it appears in the summary even if it observed nothing.
    public func register(_ model: ProtectionModel) { _ = fold(model.name) }

    public func summary(for model: ProtectionModel) -> ModelSummary {
        let f = fold(model.name)
        var acc = f.accesses
        acc.topSites = top(f.accessSites, in: symbols, none: "[unknown]")
        return ModelSummary(model: model.name, options: model.options, counters: model.counters,
                            accessClasses: model.accessClasses, anomalyKinds: model.anomalyKinds,
                            granted: layer(f.granted), effective: layer(f.effective), accesses: acc, anomalies: f.anomalies)
    }

    private func layer(_ l: LayerFold) -> LayerSummary {
        LayerSummary(all: l.all, byScope: l.byScope, byAPI: l.byAPI, byCloseCause: l.byCloseCause,
                     topSites: top(l.sites, in: symbols, none: "[unknown]"), topTasks: top(l.tasks, in: comms, none: "[unknown]"))
    }

    /// The largest entries by total time, then count, then name (deterministic).
    private func top(_ m: [StringTable.ID: (Int, UInt64)], in table: StringTable, none: String) -> [Attribution] {
        let all = m.map { Attribution(name: $0.key == 0 ? none : table.string($0.key), windows: $0.value.0, totalNs: $0.value.1) }
        return Array(all.sorted {
            if $0.totalNs != $1.totalNs { return $0.totalNs > $1.totalNs }
            if $0.windows != $1.windows { return $0.windows > $1.windows }
            return $0.name < $1.name
        }.prefix(SummaryBuilder.topLimit))
    }
}
