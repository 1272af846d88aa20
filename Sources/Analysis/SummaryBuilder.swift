import TraceIngest
import EventModel
import Replay

/// Folds observations into per-model summaries as they arrive: windows into aggregates as they close,
/// never a list of every window (memory stays bounded by the number of distinct sites and tasks).
public final class SummaryBuilder: ObservationSink {
    public let comms: StringTable
    public let symbols: StringTable
    public static let topLimit = 10
    public static let anomalyExampleLimit = 10

    final class LayerFold {
        /// Every window of the layer: the merge of its scopes (each window has exactly one), made when the
        /// summary is read instead of being recorded a third time per window. Percentiles come out the same:
        /// the merge records the same values (exact up to `DurationDistribution.exactLimit`, then one histogram).
        var all: WindowStats {
            var s = WindowStats()
            for scope in byScope where scope.windows > 0 { s.merge(scope) }
            return s
        }
        var byScope = [WindowStats](repeating: WindowStats(), count: Scope.allCases.count)
        /// Few distinct APIs per model: a short list compared by the static string's address.
        var byAPI: [(StaticString, WindowStats)] = []
        var byCloseCause = [Int](repeating: 0, count: CloseCause.allCases.count)
        /// Indexed by interned id (ids are dense).
        var sites = IDTally()
        var tasks = IDTally()
        var union = IntervalUnion()
        var unionByScope = [IntervalUnion](repeating: IntervalUnion(), count: Scope.allCases.count)

        func add(_ w: ExposureWindow) {
            let d = w.durationNs
            let c = w.censored, u = w.uncertain
            byScope[w.scope.index].add(durationNs: d, censored: c, uncertain: u)
            union.add(open: w.openNs, close: w.closeNs)
            unionByScope[w.scope.index].add(open: w.openNs, close: w.closeNs)
            if let i = byAPI.firstIndex(where: { $0.0.utf8Start == w.api.utf8Start }) {
                byAPI[i].1.add(durationNs: d, censored: c, uncertain: u)
            } else {
                var s = WindowStats()
                s.add(durationNs: d, censored: c, uncertain: u)
                byAPI.append((w.api, s))
            }
            byCloseCause[w.closeCause.index] += 1
            sites.add(w.site, d)
            tasks.add(w.holderComm, d)
        }
    }

    final class ModelFold {
        // Constant: every window reads one of them, without reference counting.
        let granted = LayerFold()
        let effective = LayerFold()
        let intended = LayerFold()
        var accesses = AccessSummary()
        var accessSites = IDTally()
        var anomalies = AnomalySummary()
        /// `--by-phase`: per phase name.
        var phases: [String: PhaseTotals] = [:]
        var timeline: Timeline?
    }

    private var folds: [(StaticString, ModelFold)] = []
    /// Folds of isolated model instances (`isolate(_:)`), keyed by the instance.
    private var instanceFolds: [ObjectIdentifier: ModelFold] = [:]
    /// Called for every window as it closes (the `--windows` CSV writer hooks in here).
    public var windowObserver: ((ExposureWindow) -> Void)?

    /// Workload phases from trace markers (`--by-phase`, `--phase`): set before the first observation.
    public var phases: PhaseSegments?
    /// `--by-phase`: tally windows, time and accesses per phase (`ModelSummary.byPhase`).
    public var byPhase = false
    /// `--phase NAME`: credit only what falls inside that phase's segments (windows clipped to each).
    public var onlyPhase: String?

    /// The line and timestamp of the event being replayed (`ReplayEngine.line`, `.timestamp`): the
    /// `closeLine` of a window that closes at that timestamp.
    public var currentEvent: (() -> (line: Int, ns: UInt64))?
    /// The same read straight from the engine (no closure call and reference counting per window); it
    /// must outlive this builder's observations (the pipeline holds both). Takes precedence over `currentEvent`.
    public unowned(unsafe) var replayEngine: ReplayEngine?

    /// `--pid`/`--comm`/`--cpu`/`--time` (docs/report-schema.md, "Filters"): a window is credited when its
    /// holder task and CPU match, clipped to the time range (dropped when it does not overlap it; a clipped
    /// end is no longer censored); an access when its task, CPU and time match; an anomaly when its pid,
    /// CPU and time match (none with `--comm`: an anomaly names no task). The observers see only what is
    /// credited. Set before the first observation.
    public var filter: EventFilter? {
        didSet { if filter?.isEmpty == true { filter = nil } }
    }
    /// Per comm id: does it match `filter.comms` (nil: not looked up yet).
    private var commMatch: [Bool?] = []

    private func commMatches(_ id: StringTable.ID, _ flt: EventFilter) -> Bool {
        guard flt.comms != nil else { return true }
        guard id != StringTable.overflowID else { return false }
        let i = Int(id)
        if i >= commMatch.count { commMatch.append(contentsOf: repeatElement(nil, count: i + 64 - commMatch.count)) }
        if let m = commMatch[i] { return m }
        let m = id != 0 && flt.matchesComm(comms.string(id))
        commMatch[i] = m
        return m
    }
    /// Called for every unprotected access (the `--accesses` CSV writer hooks in here).
    public var accessObserver: ((AccessRecord) -> Void)?
    /// Called for every anomaly (the Perfetto export hooks in here).
    public var anomalyObserver: ((Anomaly) -> Void)?
    /// Also fold effective windows and accesses into a per-CPU `Timeline` (HTML reports). Set before the run.
    public var collectTimeline = false {
        didSet {
            for (_, f) in folds where collectTimeline && f.timeline == nil { f.timeline = Timeline() }
            for (_, f) in instanceFolds where collectTimeline && f.timeline == nil { f.timeline = Timeline() }
        }
    }

    public init(comms: StringTable, symbols: StringTable) {
        self.comms = comms
        self.symbols = symbols
    }

    private func fold(_ model: StaticString) -> ModelFold {
        // By the static string's address first: comparing the text builds two Strings per window.
        for i in folds.indices where folds[i].0.utf8Start == model.utf8Start { return folds[i].1 }
        for (name, f) in folds where "\(name)" == "\(model)" { return f }
        let f = newFold()
        folds.append((model, f))
        return f
    }

    private func newFold() -> ModelFold {
        let f = ModelFold()
        if collectTimeline { f.timeline = Timeline() }
        return f
    }

    /// Wraps `model` so that its observations fold separately from every other instance of the same
    /// model (what-if replays: one trace, several configurations, one pass). Give the returned model
    /// to the `ReplayEngine` and ask `summary(for:)` with it.
    public func isolate(_ model: ProtectionModel) -> ProtectionModel {
        let f = newFold()
        let wrapped = IsolatedModel(model, sink: InstanceSink(builder: self, fold: f))
        instanceFolds[ObjectIdentifier(wrapped)] = f
        return wrapped
    }

    public func window(_ w: ExposureWindow) { window(w, into: fold(w.model)) }

    func window(_ w: ExposureWindow, into f: ModelFold) {
        var w = w
        // The event being replayed closed it when the window ends at its timestamp (a window dated earlier,
        // e.g. an off-CPU piece found at a later push, keeps no closing line).
        if w.closeLine == 0 {
            if let engine = replayEngine {
                if engine.timestamp == w.closeNs { w.closeLine = engine.line }
            } else if let now = currentEvent?(), now.ns == w.closeNs { w.closeLine = now.line }
        }
        if let flt = filter {
            guard flt.matchesPid(w.holderPid), flt.matchesCPU(w.cpu), commMatches(w.holderComm, flt) else { return }
            if let s = flt.startNs {
                guard w.closeNs >= s else { return }
                if w.openNs < s { w.openNs = s; w.censoredLeft = false }
            }
            if let e = flt.endNs {
                guard w.openNs <= e else { return }
                if w.closeNs > e { w.closeNs = e; w.censoredRight = false }
            }
        }
        if let ph = phases {
            if let only = onlyPhase {
                // One piece per segment of that phase the window overlaps.
                for s in ph.segments where s.name == only {
                    if let piece = PhaseSegments.clip(w, to: s) { tallyPhases(piece, ph, f); credit(piece, f) }
                }
                return
            }
            tallyPhases(w, ph, f)
        }
        credit(w, f)
    }

    private func tallyPhases(_ w: ExposureWindow, _ ph: PhaseSegments, _ f: ModelFold) {
        guard byPhase, w.layer != .intended else { return }
        for s in ph.segments {
            guard let piece = PhaseSegments.clip(w, to: s) else { continue }
            var t = f.phases[s.name] ?? PhaseTotals(name: s.name)
            if w.layer == .granted { t.grantedWindows += 1; t.grantedNs += piece.durationNs } else { t.effectiveWindows += 1; t.effectiveNs += piece.durationNs }
            f.phases[s.name] = t
        }
    }

    private func credit(_ w: ExposureWindow, _ f: ModelFold) {
        windowObserver?(w)
        switch w.layer {
        case .granted: f.granted.add(w)
        case .effective:
            f.effective.add(w)
            f.timeline?.add(w)
        case .intended: f.intended.add(w)
        }
    }

    public func access(_ a: AccessRecord) { access(a, into: fold(a.model)) }

    func access(_ a: AccessRecord, into f: ModelFold) {
        if let flt = filter {
            guard flt.matchesPid(a.pid), flt.matchesCPU(a.cpu), flt.matchesTime(a.timestamp), commMatches(a.comm, flt) else { return }
        }
        if let ph = phases {
            let seg = ph.segments.last { $0.startNs <= a.timestamp && a.timestamp <= ($0.endNs ?? .max) }
            if let only = onlyPhase, seg?.name != only { return }
            if byPhase, let s = seg { f.phases[s.name, default: PhaseTotals(name: s.name)].accesses += 1 }
        }
        accessObserver?(a)
        f.timeline?.addAccess(at: a.timestamp, cpu: a.cpu)
        f.accesses.total += 1
        if a.uncertain { f.accesses.uncertain += 1 }
        f.accesses.byClass["\(a.accessClass)", default: 0] += 1
        f.accesses.byOutcome[a.outcome.rawValue, default: 0] += 1
        f.accesses.byContext[a.context.rawValue, default: 0] += 1
        f.accessSites.add(a.site, 0)
    }

    public func anomaly(_ a: Anomaly) { anomaly(a, into: fold(a.model)) }

    func anomaly(_ a: Anomaly, into f: ModelFold) {
        if let flt = filter {
            // An anomaly names no task: with --comm none is credited to the selected tasks.
            guard flt.comms == nil, flt.matchesPid(a.pid), flt.matchesCPU(a.cpu), flt.matchesTime(a.timestamp) else { return }
        }
        if let ph = phases, let only = onlyPhase {
            guard ph.segments.contains(where: { $0.name == only && $0.startNs <= a.timestamp && a.timestamp <= ($0.endNs ?? .max) }) else { return }
        }
        anomalyObserver?(a)
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
        let f = instanceFolds[ObjectIdentifier(model)] ?? fold(model.name)
        var acc = f.accesses
        acc.topSites = top(f.accessSites, in: symbols, none: "[unknown]")
        return ModelSummary(model: "\(model.name)", options: model.options, counters: model.counters,
                            accessClasses: model.accessClasses, anomalyKinds: model.anomalyKinds,
                            granted: layer(f.granted), effective: layer(f.effective), intended: layer(f.intended), accesses: acc, anomalies: f.anomalies,
                            timeline: f.timeline)
            .with(byPhase: byPhase ? phaseTotals(f) : [])
    }

    /// The fold's phase tallies in order of first appearance, every phase present (zeros included).
    private func phaseTotals(_ f: ModelFold) -> [PhaseTotals] {
        guard let ph = phases else { return [] }
        return ph.names.map { name in
            var t = f.phases[name] ?? PhaseTotals(name: name)
            let segs = ph.segments.filter { $0.name == name }
            t.segments = segs.count
            t.spanNs = segs.reduce(0) { $0 + (($1.endNs ?? $1.startNs) - $1.startNs) }
            return t
        }
    }

    private func layer(_ l: LayerFold) -> LayerSummary {
        func withUnion(_ s: WindowStats, _ u: IntervalUnion) -> WindowStats {
            var s = s
            s.unionNs = u.totalNs
            s.unionExact = u.isExact
            return s
        }
        var byScope: [String: WindowStats] = [:]
        for s in Scope.allCases where l.byScope[s.index].windows > 0 { byScope[s.rawValue] = withUnion(l.byScope[s.index], l.unionByScope[s.index]) }
        var byAPI: [String: WindowStats] = [:]
        for (api, s) in l.byAPI { byAPI["\(api)"] = s }
        var causes: [String: Int] = [:]
        for c in CloseCause.allCases where l.byCloseCause[c.index] > 0 { causes[c.rawValue] = l.byCloseCause[c.index] }
        return LayerSummary(all: withUnion(l.all, l.union), byScope: byScope, byAPI: byAPI, byCloseCause: causes,
                     topSites: top(l.sites, in: symbols, none: "[unknown]"), topTasks: top(l.tasks, in: comms, none: "[unknown]"))
    }

    /// The largest entries by total time, then count, then name (deterministic).
    private func top(_ m: IDTally, in table: StringTable, none: String) -> [Attribution] {
        let all = m.entries.map { Attribution(name: $0.id == 0 ? none : table.string($0.id), windows: $0.count, totalNs: $0.total) }
        return Array(all.sorted {
            if $0.totalNs != $1.totalNs { return $0.totalNs > $1.totalNs }
            if $0.windows != $1.windows { return $0.windows > $1.windows }
            return $0.name < $1.name
        }.prefix(SummaryBuilder.topLimit))
    }
}

/// Count and total time per interned id, in a flat array indexed by id.
struct IDTally {
    private var counts: [Int] = []
    private var totals: [UInt64] = []
    private var overflow: (Int, UInt64) = (0, 0)

    @inline(__always)
    mutating func add(_ id: StringTable.ID, _ ns: UInt64) {
        guard id != StringTable.overflowID else { overflow.0 += 1; overflow.1 &+= ns; return }
        let i = Int(id)
        if i >= counts.count {
            let n = max(i + 1, counts.count * 2)
            counts.append(contentsOf: repeatElement(0, count: n - counts.count))
            totals.append(contentsOf: repeatElement(0, count: n - totals.count))
        }
        counts[i] += 1
        totals[i] &+= ns
    }

    var entries: [(id: StringTable.ID, count: Int, total: UInt64)] {
        var out: [(id: StringTable.ID, count: Int, total: UInt64)] = []
        for i in counts.indices where counts[i] > 0 { out.append((StringTable.ID(i), counts[i], totals[i])) }
        if overflow.0 > 0 { out.append((StringTable.overflowID, overflow.0, overflow.1)) }
        return out
    }
}
