import Foundation
import TraceIngest
import EventModel
import Models
import Analysis
import Reports

/// The key paths a report can hold, for checking `--fail-if` conditions before any replay: an unknown
/// key is bad usage (exit status 2), not a surprise after an hour of replay.
public enum ReportKeys {
    /// Maps whose keys depend on the trace or the model (an API, an anomaly kind, a counter, ...): any key
    /// below them is accepted.
    static let openMaps: Set<String> = ["by_scope", "by_api", "by_close_cause", "by_class", "by_outcome", "by_context",
                                        "by_kind", "counters", "unmapped_by_name", "state_cap_refusals_by_map"]

    /// Per registered model: the JSON of a report of that model over no events (every fixed key present).
    static let templates: [String: [String: Any]] = {
        var out: [String: [String: Any]] = [:]
        let symbols = StringTable()
        for name in ModelRegistry.names {
            let context = ModelBuildContext(resolver: AddressResolver(profile: KernelProfile(), userFixedLayout: false, userFixedArch: false),
                                            symbols: symbols)
            guard let model = try? ModelConfiguration(model: name).makeModels(context).first else { continue }
            let builder = SummaryBuilder(comms: StringTable(), symbols: symbols)
            builder.register(model)
            var summary = builder.summary(for: model)
            summary.coverage = ModelCoverage.evaluate(model.requirements, events: [])
            var doc = ReportDocument(input: .init(path: "", format: "", compression: "none", bytes: 0), trace: .init(),
                                     profile: .init(arch: "x86_64"), models: [summary])
            doc.filter = .init(description: "", eventsMatched: 0)
            doc.tool = ToolVersion.section
            out[name] = doc.jsonObject
        }
        return out
    }()

    /// Throws when `condition`'s model is not a registered one, or its path is in no model's report.
    public static func check(_ condition: Threshold) throws {
        if let m = condition.model {
            guard let t = templates[m] else {
                throw ConfigurationError("--fail-if '\(condition.text)': unknown model '\(m)'; available: \(ModelRegistry.names.joined(separator: ", "))")
            }
            guard known(condition.path, in: t) else { throw unknown(condition) }
        } else {
            guard templates.values.contains(where: { known(condition.path, in: $0) }) else { throw unknown(condition) }
        }
    }

    static func unknown(_ c: Threshold) -> ConfigurationError {
        ConfigurationError("--fail-if '\(c.text)': no report has a key \(c.path) (docs/report-schema.md lists them; e.g. exposure.effective.total_ns, unprotected_accesses.total)")
    }

    /// True when `path` names a number in `template`, or a key below one of its open maps.
    static func known(_ path: String, in template: [String: Any]) -> Bool {
        var current: Any = template
        var parent = ""
        for part in path.split(separator: ".").map(String.init) {
            guard let dict = current as? [String: Any] else { return false }
            if let next = dict[part] {
                current = next
                parent = part
            } else {
                return openMaps.contains(parent)
            }
        }
        if current is [String: Any] { return openMaps.contains(parent) }
        return !Threshold.isJSONBoolean(current) && (current as? Int64) != nil
    }
}
