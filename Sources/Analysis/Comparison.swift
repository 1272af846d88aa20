import Replay

/// Numbers of one model's summary under the JSON report's key paths (`exposure.effective.total_ns`,
/// `unprotected_accesses.by_class.handoff`, ...), in report order: what `compare` puts side by side
/// and what `--fail-if` names.
public enum SummaryMetrics {
    static let statKeys = ["windows", "total_ns", "max_ns", "p50_ns", "p99_ns", "censored", "uncertain", "censored_ns", "uncertain_ns"]

    static func stats(_ s: WindowStats, _ prefix: String, into out: inout [(String, Int64)]) {
        let v: [Int64] = [Int64(s.windows), Int64(bitPattern: s.totalNs), Int64(bitPattern: s.maxNs), Int64(bitPattern: s.p50Ns),
                          Int64(bitPattern: s.p99Ns), Int64(s.censored), Int64(s.uncertain), Int64(bitPattern: s.censoredNs),
                          Int64(bitPattern: s.uncertainNs)]
        for (k, x) in zip(statKeys, v) { out.append((prefix + "." + k, x)) }
        if let u = s.unionNs { out.append((prefix + ".union_ns", Int64(bitPattern: u))) }
    }

    /// Every metric of `m`; scopes and APIs only when they had windows, classes/kinds/outcomes only when non-zero.
    public static func of(_ m: ModelSummary) -> [(key: String, value: Int64)] {
        var out: [(String, Int64)] = []
        var layers = [("granted", m.granted), ("effective", m.effective)]
        if m.intended.all.windows > 0 { layers.append(("intended", m.intended)) }
        for (name, l) in layers {
            stats(l.all, "exposure.\(name)", into: &out)
            for s in Scope.allCases { if let st = l.byScope[s.rawValue], st.windows > 0 { stats(st, "exposure.\(name).by_scope.\(s.rawValue)", into: &out) } }
            for api in l.byAPI.keys.sorted() { stats(l.byAPI[api]!, "exposure.\(name).by_api.\(api)", into: &out) }
        }
        out.append(("exposure.overexposure_ns", m.overexposureNs))
        out.append(("exposure.overexposure_closed_ns", m.overexposureClosedNs))
        out.append(("exposure.overexposure_censored_ns", m.overexposureCensoredNs))
        out.append(("unprotected_accesses.total", Int64(m.accesses.total)))
        out.append(("unprotected_accesses.uncertain", Int64(m.accesses.uncertain)))
        for (k, v) in m.accesses.byClass.sorted(by: { $0.key < $1.key }) where v > 0 { out.append(("unprotected_accesses.by_class.\(k)", Int64(v))) }
        for (k, v) in m.accesses.byOutcome.sorted(by: { $0.key < $1.key }) where v > 0 { out.append(("unprotected_accesses.by_outcome.\(k)", Int64(v))) }
        out.append(("anomalies.total", Int64(m.anomalies.total)))
        for (k, v) in m.anomalies.byKind.sorted(by: { $0.key < $1.key }) where v > 0 { out.append(("anomalies.by_kind.\(k)", Int64(v))) }
        for (k, v) in m.counters.sorted(by: { $0.key < $1.key }) { out.append(("counters.\(k)", Int64(v))) }
        return out.map { (key: $0.0, value: $0.1) }
    }
}

/// Several reports side by side: the first column is the baseline, every other column gets a delta
/// and a ratio against it. Built from summaries, so a trace and its saved JSON report compare equal.
public struct Comparison: Sendable {
    public struct Row: Sendable {
        public var key: String
        /// One per column; nil when that column has no such metric.
        public var values: [Int64?]
        /// `values[i] - values[0]` (nil when either is missing).
        public func delta(_ i: Int) -> Int64? {
            guard let a = values[0], let b = values[i] else { return nil }
            return b &- a
        }
        /// `values[i] / values[0]` (nil when either is missing or the baseline is 0).
        public func ratio(_ i: Int) -> Double? {
            guard let a = values[0], let b = values[i], a != 0 else { return nil }
            return Double(b) / Double(a)
        }
        public var changed: Bool { values.contains { $0 != values[0] } }
    }

    /// A window set whose duration distribution moved: p50 and p99 per column.
    public struct Shift: Sendable {
        public var key: String
        public var p50: [Int64?]
        public var p99: [Int64?]
    }

    /// One model (or, for a what-if, the one model of each configuration) across the columns.
    public struct Group: Sendable {
        /// The model name per column (nil: that column did not report it).
        public var models: [String?]
        public var options: [[String: String]?]
        public var rows: [Row]
        /// Per column (index 0 unused): top call sites (granted and effective) absent from the baseline.
        public var sitesAppeared: [[String]]
        /// Per column (index 0 unused): baseline top call sites absent from that column.
        public var sitesDisappeared: [[String]]
        public var shifted: [Shift]
        /// The summaries themselves (for charts), nil where absent.
        public var summaries: [ModelSummary?]
        public var title: String {
            let names = models.compactMap { $0 }
            return Set(names).count == 1 ? names[0] : names.joined(separator: " | ")
        }
    }

    public var labels: [String]
    public var traceRows: [Row]
    public var groups: [Group]

    /// - Parameters:
    ///   - labels: one per column.
    ///   - traces: per column, the `trace` numbers of that report (`events`, `span_ns`, ...).
    ///   - models: per column, its model summaries. When every column has exactly one model they are
    ///     paired whatever their names (one trace under two designs); otherwise models pair by name.
    public init(labels: [String], traces: [[(key: String, value: Int64)]], models: [[ModelSummary]]) {
        self.labels = labels
        traceRows = Comparison.rows(traces)
        var groups: [Group] = []
        let n = labels.count
        var pairs: [[ModelSummary?]] = []
        if models.allSatisfy({ $0.count == 1 }) {
            pairs = [models.map { $0[0] }]
        } else {
            var names: [String] = []
            for ms in models { for m in ms where !names.contains(m.model) { names.append(m.model) } }
            pairs = names.map { name in models.map { ms in ms.first { $0.model == name } } }
        }
        for col in pairs {
            var rows = Comparison.rows(col.map { $0.map(SummaryMetrics.of) ?? [] })
            // A scope, API, class or kind a column's model did not report had nothing: 0 (counters stay
            // missing: another model has other counters).
            for r in rows.indices where !rows[r].key.hasPrefix("counters.") {
                for i in 0..<n where col[i] != nil && rows[r].values[i] == nil { rows[r].values[i] = 0 }
            }
            var appeared = [[String]](repeating: [], count: n), disappeared = [[String]](repeating: [], count: n)
            func sites(_ m: ModelSummary?) -> [String] {
                guard let m else { return [] }
                var s: [String] = []
                for a in m.granted.topSites + m.effective.topSites + m.accesses.topSites where !s.contains(a.name) { s.append(a.name) }
                return s
            }
            let base = sites(col[0])
            for i in 1..<max(n, 1) where col[i] != nil && col[0] != nil {
                let other = sites(col[i])
                appeared[i] = other.filter { !base.contains($0) }
                disappeared[i] = base.filter { !other.contains($0) }
            }
            var shifted: [Shift] = []
            let p50 = Dictionary(uniqueKeysWithValues: rows.filter { $0.key.hasSuffix(".p50_ns") }.map { (String($0.key.dropLast(7)), $0.values) })
            for r in rows where r.key.hasSuffix(".p99_ns") {
                let k = String(r.key.dropLast(7))
                let a = p50[k] ?? r.values.map { _ in nil }
                if r.changed || a.contains(where: { $0 != a[0] }) { shifted.append(Shift(key: k, p50: a, p99: r.values)) }
            }
            groups.append(Group(models: col.map { $0?.model }, options: col.map { $0?.options }, rows: rows,
                                sitesAppeared: appeared, sitesDisappeared: disappeared, shifted: shifted, summaries: col))
        }
        self.groups = groups
    }

    /// Union of keys in first-seen order, one value per column.
    static func rows(_ columns: [[(key: String, value: Int64)]]) -> [Row] {
        var order: [String] = []
        var seen = Set<String>()
        var maps: [[String: Int64]] = []
        for c in columns {
            var m: [String: Int64] = [:]
            for (k, v) in c {
                m[k] = v
                if seen.insert(k).inserted { order.append(k) }
            }
            maps.append(m)
        }
        return order.map { k in Row(key: k, values: maps.map { $0[k] }) }
    }
}
