import EventModel
import Replay

/// Whether a model's numbers were measured on a kernel that has the mechanism, or answer "what if"
/// (spec, Reporting conventions: "Observed or what-if").
public enum ModelBasis: String, Sendable {
    case observed
    case whatIf = "what_if"
    /// A merged report of observed and what-if runs.
    case mixed

    /// In words, for text and HTML.
    public var words: String {
        switch self {
        case .observed: return "observed"
        case .whatIf: return "what-if"
        case .mixed: return "mixed (observed and what-if inputs)"
        }
    }
}

/// What one trace lets a model see: for every event the model needs, whether the trace has it, and
/// what becomes unobservable without it; and the basis of the model's numbers.
public struct ModelCoverage: Sendable, Equatable {
    public struct Need: Sendable, Equatable {
        /// Any one of these provides it (`kunmap_local_indexed`, `kmap_high%return`, `sys_enter_*`).
        public var probes: [String]
        /// Events of each probe the trace had, for the probes it had.
        public var seen: [String: Int]
        public var gives: String
        public var withoutIt: String
        public var essential: Bool
        public var present: Bool { !seen.isEmpty }

        public init(probes: [String], seen: [String: Int], gives: String, withoutIt: String, essential: Bool) {
            self.probes = probes; self.seen = seen; self.gives = gives; self.withoutIt = withoutIt; self.essential = essential
        }
    }

    public var basis: ModelBasis
    /// Why: `observedMeans` or `whatIfMeans` of the model's requirements.
    public var basisReason: String
    public var needs: [Need]

    public init(basis: ModelBasis, basisReason: String, needs: [Need]) {
        self.basis = basis; self.basisReason = basisReason; self.needs = needs
    }

    /// The needs the trace lacks: what the report must say it could not observe.
    public var missing: [Need] { needs.filter { !$0.present } }

    /// Checks `requirements` against the events of the trace (`EventNormalizer.nameSummaries()`).
    public static func evaluate(_ requirements: ModelRequirements, events: [EventNormalizer.NameSummary]) -> ModelCoverage {
        func seen(_ points: [ProbePoint]) -> [String: Int] {
            var out: [String: Int] = [:]
            for p in points {
                let n = events.reduce(0) { $0 + ($1.records(p) ? $1.count : 0) }
                if n > 0 { out[p.description, default: 0] += n }
            }
            return out
        }
        let observed = !seen(requirements.mechanism).isEmpty
        return ModelCoverage(
            basis: observed ? .observed : .whatIf,
            basisReason: observed ? requirements.observedMeans : requirements.whatIfMeans,
            needs: requirements.needs.map {
                Need(probes: $0.probes.map(\.description), seen: seen($0.probes), gives: $0.gives, withoutIt: $0.withoutIt,
                     essential: $0.essential)
            })
    }

    /// Several traces' coverage of one model (`protreplay merge`): event counts add up.
    public mutating func merge(_ o: ModelCoverage) {
        if basis != o.basis { basis = .mixed; basisReason = "some inputs observed, some what-if" }
        for (i, n) in o.needs.enumerated() where i < needs.count && needs[i].probes == n.probes {
            for (k, v) in n.seen { needs[i].seen[k, default: 0] += v }
        }
    }
}
