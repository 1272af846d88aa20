/// Folding summaries of several traces into one (`protreplay merge`): counts and sums add, maxima take
/// the larger, duration distributions merge losslessly (`DurationDistribution.entries`).
///
/// Top sites and tasks merge by name and are cut to the top 10 again; an input only carries its own
/// top 10, so a site just outside every input's top 10 is missing from the merged list (documented in
/// `docs/fleet.md`).
extension LayerSummary {
    public mutating func merge(_ o: LayerSummary) {
        all.merge(o.all)
        for (k, v) in o.byScope { byScope[k, default: WindowStats()].merge(v) }
        for (k, v) in o.byAPI { byAPI[k, default: WindowStats()].merge(v) }
        for (k, v) in o.byCloseCause { byCloseCause[k, default: 0] += v }
        topSites = Attribution.merged(topSites, o.topSites)
        topTasks = Attribution.merged(topTasks, o.topTasks)
    }
}

extension Attribution {
    /// Sums by name, then keeps the largest `limit` by total time, count, name (as `SummaryBuilder` orders them).
    public static func merged(_ a: [Attribution], _ b: [Attribution], limit: Int = SummaryBuilder.topLimit) -> [Attribution] {
        var by: [String: Attribution] = [:]
        for x in a + b {
            if var e = by[x.name] { e.windows += x.windows; e.totalNs &+= x.totalNs; by[x.name] = e } else { by[x.name] = x }
        }
        return Array(by.values.sorted {
            if $0.totalNs != $1.totalNs { return $0.totalNs > $1.totalNs }
            if $0.windows != $1.windows { return $0.windows > $1.windows }
            return $0.name < $1.name
        }.prefix(limit))
    }
}

extension ModelSummary {
    /// True when `other` is the same model with the same options (merge only folds those together).
    public func sameConfiguration(as other: ModelSummary) -> Bool { model == other.model && options == other.options }

    /// Folds another trace's summary of the same model and options into this one.
    public mutating func merge(_ o: ModelSummary) {
        for (k, v) in o.counters { counters[k, default: 0] += v }
        for c in o.accessClasses where !accessClasses.contains(c) { accessClasses.append(c) }
        for k in o.anomalyKinds where !anomalyKinds.contains(k) { anomalyKinds.append(k) }
        granted.merge(o.granted)
        effective.merge(o.effective)
        intended.merge(o.intended)
        accesses.total += o.accesses.total
        accesses.uncertain += o.accesses.uncertain
        for (k, v) in o.accesses.byClass { accesses.byClass[k, default: 0] += v }
        for (k, v) in o.accesses.byOutcome { accesses.byOutcome[k, default: 0] += v }
        for (k, v) in o.accesses.byContext { accesses.byContext[k, default: 0] += v }
        accesses.topSites = Attribution.merged(accesses.topSites, o.accesses.topSites)
        anomalies.total += o.anomalies.total
        for (k, v) in o.anomalies.byKind { anomalies.byKind[k, default: 0] += v }
        for e in o.anomalies.examples where anomalies.examples.count < SummaryBuilder.anomalyExampleLimit { anomalies.examples.append(e) }
        if let oc = o.coverage { if coverage == nil { coverage = oc } else { coverage!.merge(oc) } }
        timeline = nil
    }
}
