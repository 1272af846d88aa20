import TraceIngest
import Replay

/// Everything one model observed, folded (spec §9).
public struct ModelSummary: Sendable {
    public var model: String
    public var options: [String: String]
    public var counters: [String: Int]
    public var accessClasses: [String]
    public var anomalyKinds: [String]
    public var granted: LayerSummary
    public var effective: LayerSummary
    /// Intended exposure that is not overexposure (directmap: the owner's user mapping).
    public var intended: LayerSummary
    /// EFFECTIVE total - GRANTED total (may be negative when preemption suspends more than stale slots add).
    public var overexposureNs: Int64 { Int64(bitPattern: effective.all.totalNs) &- Int64(bitPattern: granted.all.totalNs) }
    /// The part of `overexposureNs` from windows that opened and closed inside the trace: a measurement.
    public var overexposureClosedNs: Int64 { Int64(bitPattern: effective.all.closedNs) &- Int64(bitPattern: granted.all.closedNs) }
    /// The rest, from censored windows (cut off at the start or end of the trace): not a measurement.
    public var overexposureCensoredNs: Int64 { overexposureNs &- overexposureClosedNs }
    /// Which events the trace had for this model, and whether its numbers are observed or what-if
    /// (nil in reports saved before coverage existed).
    public var coverage: ModelCoverage? = nil
    public var accesses: AccessSummary
    public var anomalies: AnomalySummary
    /// Effective windows and accesses over time, per CPU (collected only when asked: HTML reports).
    public var timeline: Timeline? = nil
    /// `--by-phase`: each workload phase's windows, time and accesses (empty without it).
    public var byPhase: [PhaseTotals] = []

    public init(model: String, options: [String: String], counters: [String: Int], accessClasses: [String], anomalyKinds: [String],
                granted: LayerSummary, effective: LayerSummary, intended: LayerSummary, accesses: AccessSummary,
                anomalies: AnomalySummary, timeline: Timeline? = nil) {
        self.model = model; self.options = options; self.counters = counters; self.accessClasses = accessClasses
        self.anomalyKinds = anomalyKinds; self.granted = granted; self.effective = effective; self.intended = intended
        self.accesses = accesses; self.anomalies = anomalies; self.timeline = timeline
    }
}

/// One window layer: overall, by scope, by API, by close cause, top sites and tasks.
public struct LayerSummary: Sendable {
    public var all = WindowStats()
    public var byScope: [String: WindowStats] = [:]
    public var byAPI: [String: WindowStats] = [:]
    public var byCloseCause: [String: Int] = [:]
    public var topSites: [Attribution] = []
    public var topTasks: [Attribution] = []

    public init(all: WindowStats = WindowStats(), byScope: [String: WindowStats] = [:], byAPI: [String: WindowStats] = [:],
                byCloseCause: [String: Int] = [:], topSites: [Attribution] = [], topTasks: [Attribution] = []) {
        self.all = all; self.byScope = byScope; self.byAPI = byAPI; self.byCloseCause = byCloseCause
        self.topSites = topSites; self.topTasks = topTasks
    }
}

public struct AccessSummary: Sendable {
    public init() {}
    public var total = 0
    public var uncertain = 0
    public var byClass: [String: Int] = [:]
    public var byOutcome: [String: Int] = [:]
    public var byContext: [String: Int] = [:]
    public var topSites: [Attribution] = []
}

public struct AnomalySummary: Sendable {
    public init() {}
    public var total = 0
    public var byKind: [String: Int] = [:]
    /// The first few, in trace order, for the report.
    public var examples: [AnomalyExample] = []
}

public struct AnomalyExample: Sendable, Equatable {
    public var line: Int
    public var timestampNs: UInt64
    public var cpu: Int32
    public var pid: Int32
    public var kind: String
    public var detail: String

    public init(line: Int, timestampNs: UInt64, cpu: Int32, pid: Int32, kind: String, detail: String) {
        self.line = line; self.timestampNs = timestampNs; self.cpu = cpu; self.pid = pid; self.kind = kind; self.detail = detail
    }
}

extension ModelSummary {
    func with(byPhase: [PhaseTotals]) -> ModelSummary {
        var s = self
        s.byPhase = byPhase
        return s
    }
}
