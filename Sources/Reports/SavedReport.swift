import Replay
import Analysis

/// A report as `compare` and `merge` use it: the `input`, `trace` and `profile` sections as JSON, and
/// one `ModelSummary` per model, rebuilt losslessly (duration distributions included) from a saved
/// `protreplay.report/1` document or taken from a replay.
public struct SavedReport: Sendable {
    public var input: JSONValue
    public var trace: JSONValue
    public var profile: JSONValue
    public var models: [ModelSummary]
    /// Set on merged reports: `{reports, inputs}`.
    public var merged: JSONValue?

    public struct DecodeError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(input: JSONValue, trace: JSONValue, profile: JSONValue, models: [ModelSummary], merged: JSONValue? = nil) {
        self.input = input; self.trace = trace; self.profile = profile; self.models = models; self.merged = merged
    }

    public init(_ r: TraceReport) {
        self.init(input: JSONReport.input(r), trace: JSONReport.trace(r), profile: JSONReport.profile(r), models: r.models)
    }

    /// The `protreplay.report/1` document.
    public var document: JSONValue {
        var top: [String: JSONValue] = [
            "schema": .string(JSONReport.schema), "input": input, "trace": trace, "profile": profile,
        ]
        if let first = models.first {
            for (k, v) in JSONReport.model(first) { top[k] = v }
        }
        // Every model, also when there is one: `models[i].coverage` and `models[i].model.basis` are always there.
        if !models.isEmpty {
            top["models"] = .array(models.map { .object(JSONReport.model($0)) })
        }
        if let merged { top["merged"] = merged }
        return .object(top)
    }

    public var json: String { document.rendered() }

    /// The numbers of the `trace` section, for comparisons (`trace.events`, `trace.span_ns`, ...).
    public var traceMetrics: [(key: String, value: Int64)] {
        let keys = ["events", "events_used", "events_ignored", "unmapped", "malformed", "lost_events", "stack_traces",
                    "cpus", "span_ns", "timestamps_backwards"]
        return keys.compactMap { k in trace[k]?.int64.map { (key: "trace." + k, value: $0) } }
    }

    /// - Throws: `DecodeError` when the document is not a `protreplay.report/1` report with distributions.
    public init(json: JSONValue, source: String) throws {
        guard json["schema"]?.stringValue == JSONReport.schema else {
            throw DecodeError(description: "\(source): not a \(JSONReport.schema) report")
        }
        input = json["input"] ?? .object([:])
        trace = json["trace"] ?? .object([:])
        profile = json["profile"] ?? .object([:])
        merged = json["merged"]
        if let ms = json["models"]?.arrayValue {
            models = try ms.map { try SavedReport.model($0, source) }
        } else if json["model"] != nil {
            models = [try SavedReport.model(json, source)]
        } else {
            models = []
        }
    }

    public init(text: String, source: String) throws {
        let v: JSONValue
        do { v = try JSONValue.parse(text) } catch { throw DecodeError(description: "\(source): \(error)") }
        try self.init(json: v, source: source)
    }

    static func model(_ o: JSONValue, _ source: String) throws -> ModelSummary {
        func ints(_ v: JSONValue?) -> [String: Int] {
            var out: [String: Int] = [:]
            for (k, x) in v?.objectValue ?? [:] { if let i = x.intValue { out[k] = i } }
            return out
        }
        let name = o.at("model.name")?.stringValue ?? "?"
        var options: [String: String] = [:]
        for (k, v) in o.at("model.options")?.objectValue ?? [:] { options[k] = v.stringValue ?? "" }
        let byClass = ints(o.at("unprotected_accesses.by_class"))
        let byKind = ints(o.at("anomalies.by_kind"))
        var acc = AccessSummary()
        acc.total = o.at("unprotected_accesses.total")?.intValue ?? 0
        acc.uncertain = o.at("unprotected_accesses.uncertain")?.intValue ?? 0
        acc.byClass = byClass.filter { $0.value != 0 }
        acc.byOutcome = ints(o.at("unprotected_accesses.by_outcome")).filter { $0.value != 0 }
        acc.byContext = ints(o.at("unprotected_accesses.by_context"))
        acc.topSites = attributions(o.at("unprotected_accesses.top_sites"))
        var an = AnomalySummary()
        an.total = o.at("anomalies.total")?.intValue ?? 0
        an.byKind = byKind.filter { $0.value != 0 }
        an.examples = (o.at("anomalies.examples")?.arrayValue ?? []).map {
            AnomalyExample(line: $0["line"]?.intValue ?? 0, timestampNs: $0["ts_ns"]?.uint64 ?? 0, cpu: Int32($0["cpu"]?.intValue ?? 0),
                           pid: Int32($0["pid"]?.intValue ?? 0), kind: $0["kind"]?.stringValue ?? "", detail: $0["detail"]?.stringValue ?? "")
        }
        let where_ = "\(source): model \(name)"
        var m = ModelSummary(model: name, options: options, counters: ints(o["counters"]),
                            accessClasses: byClass.keys.sorted(), anomalyKinds: byKind.keys.sorted(),
                            granted: try layer(o.at("exposure.granted"), where_ + " granted"),
                            effective: try layer(o.at("exposure.effective"), where_ + " effective"),
                            intended: try layer(o.at("exposure.intended"), where_ + " intended"),
                            accesses: acc, anomalies: an)
        m.coverage = coverage(o)
        return m
    }

    static func coverage(_ o: JSONValue) -> ModelCoverage? {
        guard let basis = o.at("model.basis")?.stringValue.flatMap(ModelBasis.init(rawValue:)),
              let needs = o.at("coverage.needs")?.arrayValue else { return nil }
        return ModelCoverage(basis: basis, basisReason: o.at("model.basis_reason")?.stringValue ?? "", needs: needs.map { n in
            var seen: [String: Int] = [:]
            for (k, v) in n["seen"]?.objectValue ?? [:] { seen[k] = v.intValue ?? 0 }
            return ModelCoverage.Need(probes: (n["probes"]?.arrayValue ?? []).compactMap(\.stringValue), seen: seen,
                                      gives: n["gives"]?.stringValue ?? "", withoutIt: n["without_it"]?.stringValue ?? "",
                                      essential: n["essential"]?.boolValue ?? false)
        })
    }

    static func attributions(_ v: JSONValue?) -> [Attribution] {
        (v?.arrayValue ?? []).map {
            Attribution(name: $0["name"]?.stringValue ?? "", windows: $0["count"]?.intValue ?? 0, totalNs: $0["total_ns"]?.uint64 ?? 0)
        }
    }

    static func layer(_ v: JSONValue?, _ source: String) throws -> LayerSummary {
        guard let v else { return LayerSummary() }
        var l = LayerSummary()
        l.all = try stats(v, source)
        for (k, s) in v["by_scope"]?.objectValue ?? [:] {
            let st = try stats(s, source + " scope " + k)
            if st.windows > 0 { l.byScope[k] = st }
        }
        for (k, s) in v["by_api"]?.objectValue ?? [:] { l.byAPI[k] = try stats(s, source + " api " + k) }
        for (k, n) in v["by_close_cause"]?.objectValue ?? [:] { l.byCloseCause[k] = n.intValue ?? 0 }
        l.topSites = attributions(v["top_sites"])
        l.topTasks = attributions(v["top_tasks"])
        return l
    }

    static func stats(_ v: JSONValue, _ source: String) throws -> WindowStats {
        var s = WindowStats()
        s.windows = v["windows"]?.intValue ?? 0
        s.totalNs = v["total_ns"]?.uint64 ?? 0
        s.maxNs = v["max_ns"]?.uint64 ?? 0
        s.censored = v["censored"]?.intValue ?? 0
        s.uncertain = v["uncertain"]?.intValue ?? 0
        s.censoredNs = v["censored_ns"]?.uint64 ?? 0
        s.uncertainNs = v["uncertain_ns"]?.uint64 ?? 0
        s.unionNs = v["union_ns"]?.uint64
        s.unionExact = v["union_exact"]?.boolValue ?? true
        guard let d = v["distribution"], let values = d["values"]?.arrayValue, let counts = d["counts"]?.arrayValue,
              values.count == counts.count else {
            if s.windows == 0 { return s }
            throw DecodeError(description: "\(source): no duration distribution (a report made before mergeable reports; make it again with this protreplay)")
        }
        let entries = zip(values, counts).map { (value: $0.uint64 ?? 0, count: $1.uint64 ?? 0) }
        s.durations = DurationDistribution(entries: entries, exact: d["encoding"]?.stringValue == "exact")
        guard s.durations.count == UInt64(s.windows) else {
            throw DecodeError(description: "\(source): distribution holds \(s.durations.count) durations for \(s.windows) windows")
        }
        return s
    }

    /// Folds several reports into one (`protreplay merge`). Models merge when name and options agree;
    /// others are kept side by side. The `trace` numbers add up (`first_ns`/`last_ns` take the earliest
    /// and latest, `span_ns` the sum of spans, `cpus` the largest).
    public static func merge(_ reports: [SavedReport], paths: [String]) -> SavedReport {
        var models: [ModelSummary] = []
        for r in reports {
            for m in r.models {
                if let i = models.firstIndex(where: { $0.sameConfiguration(as: m) }) { models[i].merge(m) } else {
                    var c = m
                    c.timeline = nil
                    models.append(c)
                }
            }
        }
        var trace: [String: JSONValue] = [:]
        let sumKeys = ["events", "events_used", "events_ignored", "malformed_events", "unmapped", "malformed", "lost_events",
                       "lost_markers", "lost_markers_without_count", "stack_traces", "buffer_starts", "span_ns",
                       "timestamps_backwards", "cpu_out_of_range", "state_cap_refusals", "comm_names_refused", "symbols_refused"]
        for k in sumKeys { trace[k] = .uint(reports.reduce(UInt64(0)) { $0 &+ ($1.trace[k]?.uint64 ?? 0) }) }
        trace["cpus"] = .uint(reports.map { $0.trace["cpus"]?.uint64 ?? 0 }.max() ?? 0)
        trace["first_ns"] = .uint(reports.compactMap { $0.trace["first_ns"]?.uint64 }.min() ?? 0)
        trace["last_ns"] = .uint(reports.compactMap { $0.trace["last_ns"]?.uint64 }.max() ?? 0)
        if let cap = reports.compactMap({ $0.trace["max_live_entries"]?.uint64 }).min() { trace["max_live_entries"] = .uint(cap) }
        var byMap: [String: UInt64] = [:]
        for r in reports {
            for (k, v) in r.trace["state_cap_refusals_by_map"]?.objectValue ?? [:] { byMap[k, default: 0] &+= v.uint64 ?? 0 }
        }
        trace["state_cap_refusals_by_map"] = .object(byMap.mapValues { .uint($0) })
        trace["state_cap_first"] = reports.lazy.compactMap { r -> JSONValue? in
            guard let f = r.trace["state_cap_first"], f != .null else { return nil }
            return f
        }.first ?? .null
        var unmapped: [String: UInt64] = [:]
        var examples: [JSONValue] = []
        for r in reports {
            for (k, v) in r.trace["unmapped_by_name"]?.objectValue ?? [:] { unmapped[k, default: 0] &+= v.uint64 ?? 0 }
            for e in r.trace["malformed_examples"]?.arrayValue ?? [] where examples.count < 5 { examples.append(e) }
        }
        trace["unmapped_by_name"] = .object(unmapped.mapValues { .uint($0) })
        trace["malformed_examples"] = .array(examples)
        let bytes = reports.reduce(UInt64(0)) { $0 &+ ($1.input["bytes"]?.uint64 ?? 0) }
        let formats = Set(reports.compactMap { $0.input["format"]?.stringValue })
        let input: JSONValue = .object([
            "path": .string(paths.count == 1 ? paths[0] : "merged:\(paths.count)"),
            "format": .string(formats.count == 1 ? formats.first! : "mixed"),
            "compression": .string("mixed"), "bytes": .uint(bytes),
        ])
        let profiles = reports.map(\.profile)
        let profile = profiles.allSatisfy({ $0 == profiles.first }) ? (profiles.first ?? .object([:])) : .object(["arch": .string("mixed")])
        var inputs: [JSONValue] = []
        for (r, p) in zip(reports, paths) {
            if let prev = r.merged?["inputs"]?.arrayValue { inputs += prev } else { inputs.append(.string(p)) }
        }
        let merged: JSONValue = .object(["reports": .int(inputs.count), "inputs": .array(inputs)])
        return SavedReport(input: input, trace: .object(trace), profile: profile, models: models, merged: merged)
    }
}
