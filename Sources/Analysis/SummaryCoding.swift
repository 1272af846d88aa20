import Replay
import EventModel

// The one place that spells the model keys of `protreplay.report/1` (docs/report-schema.md): a model's
// summary encodes to its section of the JSON report and decodes back losslessly (duration
// distributions included), so saved reports merge and compare like fresh replays.

/// A decoding failure with the report path it concerns.
public struct SummaryDecodingError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension WindowStats: Codable {
    enum CodingKeys: String, CodingKey {
        case windows, censored, uncertain, distribution
        case totalNs = "total_ns", maxNs = "max_ns", p50Ns = "p50_ns", p99Ns = "p99_ns"
        case percentilesExact = "percentiles_exact", censoredNs = "censored_ns", closedNs = "closed_ns"
        case uncertainNs = "uncertain_ns", lowerBound = "lower_bound", unionNs = "union_ns", unionExact = "union_exact"
    }

    /// Lossless form of a duration distribution (`docs/report-schema.md`, "Mergeable reports").
    struct Distribution: Codable {
        var encoding: String
        var values: [UInt64]
        var counts: [UInt64]
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(windows, forKey: .windows)
        try c.encode(totalNs, forKey: .totalNs)
        try c.encode(maxNs, forKey: .maxNs)
        try c.encode(p50Ns, forKey: .p50Ns)
        try c.encode(p99Ns, forKey: .p99Ns)
        try c.encode(censored, forKey: .censored)
        try c.encode(uncertain, forKey: .uncertain)
        try c.encode(durations.isExact, forKey: .percentilesExact)
        try c.encode(censoredNs, forKey: .censoredNs)
        try c.encode(closedNs, forKey: .closedNs)
        try c.encode(uncertainNs, forKey: .uncertainNs)
        try c.encode(isLowerBound, forKey: .lowerBound)
        let e = durations.entries
        try c.encode(Distribution(encoding: durations.isExact ? "exact" : "hdr3", values: e.map(\.value), counts: e.map(\.count)),
                     forKey: .distribution)
        if let unionNs {
            try c.encode(unionNs, forKey: .unionNs)
            try c.encode(unionExact, forKey: .unionExact)
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        windows = try c.decodeIfPresent(Int.self, forKey: .windows) ?? 0
        totalNs = try c.decodeIfPresent(UInt64.self, forKey: .totalNs) ?? 0
        maxNs = try c.decodeIfPresent(UInt64.self, forKey: .maxNs) ?? 0
        censored = try c.decodeIfPresent(Int.self, forKey: .censored) ?? 0
        uncertain = try c.decodeIfPresent(Int.self, forKey: .uncertain) ?? 0
        censoredNs = try c.decodeIfPresent(UInt64.self, forKey: .censoredNs) ?? 0
        uncertainNs = try c.decodeIfPresent(UInt64.self, forKey: .uncertainNs) ?? 0
        unionNs = try c.decodeIfPresent(UInt64.self, forKey: .unionNs)
        unionExact = try c.decodeIfPresent(Bool.self, forKey: .unionExact) ?? true
        let path = c.codingPath.map(\.stringValue).joined(separator: ".")
        guard let d = try c.decodeIfPresent(Distribution.self, forKey: .distribution), d.values.count == d.counts.count else {
            if windows == 0 { return }
            throw SummaryDecodingError("\(path): no duration distribution (a report made before mergeable reports; make it again with this protreplay)")
        }
        durations = DurationDistribution(entries: zip(d.values, d.counts).map { (value: $0, count: $1) }, exact: d.encoding == "exact")
        guard durations.count == UInt64(windows) else {
            throw SummaryDecodingError("\(path): distribution holds \(durations.count) durations for \(windows) windows")
        }
    }
}

extension Attribution: Codable {
    enum CodingKeys: String, CodingKey { case name, count, totalNs = "total_ns" }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(windows, forKey: .count)
        try c.encode(totalNs, forKey: .totalNs)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decodeIfPresent(String.self, forKey: .name) ?? "", windows: try c.decodeIfPresent(Int.self, forKey: .count) ?? 0,
                  totalNs: try c.decodeIfPresent(UInt64.self, forKey: .totalNs) ?? 0)
    }
}

/// Sites of unprotected accesses carry no time (`AccessSummary.topSites`): encoded without `total_ns`.
struct CountOnlyAttributions: Encodable {
    var items: [Attribution]
    func encode(to encoder: Encoder) throws {
        var c = encoder.unkeyedContainer()
        for a in items {
            var o = c.nestedContainer(keyedBy: Attribution.CodingKeys.self)
            try o.encode(a.name, forKey: .name)
            try o.encode(a.windows, forKey: .count)
        }
    }
}

extension LayerSummary: Codable {
    enum CodingKeys: String, CodingKey {
        case byScope = "by_scope", byAPI = "by_api", byCloseCause = "by_close_cause", topSites = "top_sites", topTasks = "top_tasks"
    }

    public func encode(to encoder: Encoder) throws {
        try all.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        // Every scope, zeros included.
        var scopes: [String: WindowStats] = [:]
        for s in Scope.allCases { scopes[s.rawValue] = byScope[s.rawValue] ?? WindowStats() }
        try c.encode(scopes, forKey: .byScope)
        try c.encode(byAPI, forKey: .byAPI)
        try c.encode(byCloseCause, forKey: .byCloseCause)
        try c.encode(topSites, forKey: .topSites)
        try c.encode(topTasks, forKey: .topTasks)
    }

    public init(from decoder: Decoder) throws {
        self.init(all: try WindowStats(from: decoder))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        byScope = (try c.decodeIfPresent([String: WindowStats].self, forKey: .byScope) ?? [:]).filter { $0.value.windows > 0 }
        byAPI = try c.decodeIfPresent([String: WindowStats].self, forKey: .byAPI) ?? [:]
        byCloseCause = try c.decodeIfPresent([String: Int].self, forKey: .byCloseCause) ?? [:]
        topSites = try c.decodeIfPresent([Attribution].self, forKey: .topSites) ?? []
        topTasks = try c.decodeIfPresent([Attribution].self, forKey: .topTasks) ?? []
    }
}

extension AnomalyExample: Codable {
    enum CodingKeys: String, CodingKey { case line, cpu, pid, kind, detail, timestampNs = "ts_ns" }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(line, forKey: .line)
        try c.encode(timestampNs, forKey: .timestampNs)
        try c.encode(cpu, forKey: .cpu)
        try c.encode(pid, forKey: .pid)
        try c.encode(kind, forKey: .kind)
        try c.encode(detail, forKey: .detail)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(line: try c.decodeIfPresent(Int.self, forKey: .line) ?? 0, timestampNs: try c.decodeIfPresent(UInt64.self, forKey: .timestampNs) ?? 0,
                  cpu: try c.decodeIfPresent(Int32.self, forKey: .cpu) ?? 0, pid: try c.decodeIfPresent(Int32.self, forKey: .pid) ?? 0,
                  kind: try c.decodeIfPresent(String.self, forKey: .kind) ?? "", detail: try c.decodeIfPresent(String.self, forKey: .detail) ?? "")
    }
}

extension ModelCoverage.Need: Codable {
    enum CodingKeys: String, CodingKey { case probes, seen, present, essential, gives, withoutIt = "without_it" }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(probes, forKey: .probes)
        try c.encode(seen, forKey: .seen)
        try c.encode(present, forKey: .present)
        try c.encode(essential, forKey: .essential)
        try c.encode(gives, forKey: .gives)
        try c.encode(withoutIt, forKey: .withoutIt)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(probes: try c.decodeIfPresent([String].self, forKey: .probes) ?? [], seen: try c.decodeIfPresent([String: Int].self, forKey: .seen) ?? [:],
                  gives: try c.decodeIfPresent(String.self, forKey: .gives) ?? "", withoutIt: try c.decodeIfPresent(String.self, forKey: .withoutIt) ?? "",
                  essential: try c.decodeIfPresent(Bool.self, forKey: .essential) ?? false)
    }
}

extension ModelSummary: Codable {
    public enum CodingKeys: String, CodingKey {
        case model, exposure, counters, coverage, anomalies
        case accesses = "unprotected_accesses"
        case byPhase = "by_phase"
    }
    enum PhaseKeys: String, CodingKey {
        case name, segments, granted, effective, accesses
        case spanNs = "span_ns"
    }
    enum PhaseLayerKeys: String, CodingKey { case windows, totalNs = "total_ns" }
    enum HeaderKeys: String, CodingKey { case name, options, basis, basisReason = "basis_reason" }
    enum ExposureKeys: String, CodingKey {
        case granted, effective, intended
        case overexposure = "overexposure_ns", overexposureClosed = "overexposure_closed_ns", overexposureCensored = "overexposure_censored_ns"
    }
    enum AccessKeys: String, CodingKey {
        case total, uncertain, byClass = "by_class", byOutcome = "by_outcome", byContext = "by_context", topSites = "top_sites"
    }
    enum AnomalyKeys: String, CodingKey { case total, examples, byKind = "by_kind" }
    enum CoverageKeys: String, CodingKey { case needs, missing, unobservable }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        var h = c.nestedContainer(keyedBy: HeaderKeys.self, forKey: .model)
        try h.encode(model, forKey: .name)
        try h.encode(options, forKey: .options)
        if let coverage {
            try h.encode(coverage.basis.rawValue, forKey: .basis)
            try h.encode(coverage.basisReason, forKey: .basisReason)
        }
        var x = c.nestedContainer(keyedBy: ExposureKeys.self, forKey: .exposure)
        try x.encode(granted, forKey: .granted)
        try x.encode(effective, forKey: .effective)
        try x.encode(intended, forKey: .intended)
        try x.encode(overexposureNs, forKey: .overexposure)
        try x.encode(overexposureClosedNs, forKey: .overexposureClosed)
        try x.encode(overexposureCensoredNs, forKey: .overexposureCensored)
        // Every class, outcome and kind the model defines, zeros included.
        var byClass: [String: Int] = [:]
        for k in accessClasses { byClass[k] = 0 }
        for (k, n) in accesses.byClass { byClass[k] = n }
        var byOutcome: [String: Int] = [:]
        for o in AccessRecord.Outcome.allCases { byOutcome[o.rawValue] = 0 }
        for (k, n) in accesses.byOutcome { byOutcome[k] = n }
        var a = c.nestedContainer(keyedBy: AccessKeys.self, forKey: .accesses)
        try a.encode(accesses.total, forKey: .total)
        try a.encode(accesses.uncertain, forKey: .uncertain)
        try a.encode(byClass, forKey: .byClass)
        try a.encode(byOutcome, forKey: .byOutcome)
        try a.encode(accesses.byContext, forKey: .byContext)
        try a.encode(CountOnlyAttributions(items: accesses.topSites), forKey: .topSites)
        var byKind: [String: Int] = [:]
        for k in anomalyKinds { byKind[k] = 0 }
        for (k, n) in anomalies.byKind { byKind[k] = n }
        var an = c.nestedContainer(keyedBy: AnomalyKeys.self, forKey: .anomalies)
        try an.encode(anomalies.total, forKey: .total)
        try an.encode(byKind, forKey: .byKind)
        try an.encode(anomalies.examples, forKey: .examples)
        try c.encode(counters, forKey: .counters)
        if !byPhase.isEmpty {
            var list = c.nestedUnkeyedContainer(forKey: .byPhase)
            for p in byPhase {
                var e = list.nestedContainer(keyedBy: PhaseKeys.self)
                try e.encode(p.name, forKey: .name)
                try e.encode(p.segments, forKey: .segments)
                try e.encode(p.spanNs, forKey: .spanNs)
                var g = e.nestedContainer(keyedBy: PhaseLayerKeys.self, forKey: .granted)
                try g.encode(p.grantedWindows, forKey: .windows); try g.encode(p.grantedNs, forKey: .totalNs)
                var f = e.nestedContainer(keyedBy: PhaseLayerKeys.self, forKey: .effective)
                try f.encode(p.effectiveWindows, forKey: .windows); try f.encode(p.effectiveNs, forKey: .totalNs)
                try e.encode(p.accesses, forKey: .accesses)
            }
        }
        if let coverage {
            var cv = c.nestedContainer(keyedBy: CoverageKeys.self, forKey: .coverage)
            try cv.encode(coverage.needs, forKey: .needs)
            try cv.encode(coverage.missing.map { $0.probes.joined(separator: " | ") }, forKey: .missing)
            try cv.encode(coverage.missing.map(\.withoutIt), forKey: .unobservable)
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let h = try c.nestedContainer(keyedBy: HeaderKeys.self, forKey: .model)
        let name = try h.decodeIfPresent(String.self, forKey: .name) ?? "?"
        let x = try c.nestedContainer(keyedBy: ExposureKeys.self, forKey: .exposure)
        var acc = AccessSummary()
        var byClass: [String: Int] = [:]
        if c.contains(.accesses) {
            let a = try c.nestedContainer(keyedBy: AccessKeys.self, forKey: .accesses)
            acc.total = try a.decodeIfPresent(Int.self, forKey: .total) ?? 0
            acc.uncertain = try a.decodeIfPresent(Int.self, forKey: .uncertain) ?? 0
            byClass = try a.decodeIfPresent([String: Int].self, forKey: .byClass) ?? [:]
            acc.byClass = byClass.filter { $0.value != 0 }
            acc.byOutcome = (try a.decodeIfPresent([String: Int].self, forKey: .byOutcome) ?? [:]).filter { $0.value != 0 }
            acc.byContext = try a.decodeIfPresent([String: Int].self, forKey: .byContext) ?? [:]
            acc.topSites = try a.decodeIfPresent([Attribution].self, forKey: .topSites) ?? []
        }
        var an = AnomalySummary()
        var byKind: [String: Int] = [:]
        if c.contains(.anomalies) {
            let a = try c.nestedContainer(keyedBy: AnomalyKeys.self, forKey: .anomalies)
            an.total = try a.decodeIfPresent(Int.self, forKey: .total) ?? 0
            byKind = try a.decodeIfPresent([String: Int].self, forKey: .byKind) ?? [:]
            an.byKind = byKind.filter { $0.value != 0 }
            an.examples = try a.decodeIfPresent([AnomalyExample].self, forKey: .examples) ?? []
        }
        self.init(model: name, options: try h.decodeIfPresent([String: String].self, forKey: .options) ?? [:],
                  counters: try c.decodeIfPresent([String: Int].self, forKey: .counters) ?? [:],
                  accessClasses: byClass.keys.sorted(), anomalyKinds: byKind.keys.sorted(),
                  granted: try x.decodeIfPresent(LayerSummary.self, forKey: .granted) ?? LayerSummary(),
                  effective: try x.decodeIfPresent(LayerSummary.self, forKey: .effective) ?? LayerSummary(),
                  intended: try x.decodeIfPresent(LayerSummary.self, forKey: .intended) ?? LayerSummary(),
                  accesses: acc, anomalies: an)
        if c.contains(.byPhase) {
            var list = try c.nestedUnkeyedContainer(forKey: .byPhase)
            while !list.isAtEnd {
                let e = try list.nestedContainer(keyedBy: PhaseKeys.self)
                var p = PhaseTotals(name: try e.decode(String.self, forKey: .name))
                p.segments = try e.decodeIfPresent(Int.self, forKey: .segments) ?? 0
                p.spanNs = try e.decodeIfPresent(UInt64.self, forKey: .spanNs) ?? 0
                if e.contains(.granted) {
                    let g = try e.nestedContainer(keyedBy: PhaseLayerKeys.self, forKey: .granted)
                    p.grantedWindows = try g.decodeIfPresent(Int.self, forKey: .windows) ?? 0
                    p.grantedNs = try g.decodeIfPresent(UInt64.self, forKey: .totalNs) ?? 0
                }
                if e.contains(.effective) {
                    let f = try e.nestedContainer(keyedBy: PhaseLayerKeys.self, forKey: .effective)
                    p.effectiveWindows = try f.decodeIfPresent(Int.self, forKey: .windows) ?? 0
                    p.effectiveNs = try f.decodeIfPresent(UInt64.self, forKey: .totalNs) ?? 0
                }
                p.accesses = try e.decodeIfPresent(Int.self, forKey: .accesses) ?? 0
                byPhase.append(p)
            }
        }
        if let basis = try h.decodeIfPresent(String.self, forKey: .basis).flatMap(ModelBasis.init(rawValue:)), c.contains(.coverage) {
            let cv = try c.nestedContainer(keyedBy: CoverageKeys.self, forKey: .coverage)
            coverage = ModelCoverage(basis: basis, basisReason: try h.decodeIfPresent(String.self, forKey: .basisReason) ?? "",
                                     needs: try cv.decodeIfPresent([ModelCoverage.Need].self, forKey: .needs) ?? [])
        }
    }
}
