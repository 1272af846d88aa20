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
    public var accesses: AccessSummary
    public var anomalies: AnomalySummary
}

/// One window layer: overall, by scope, by API, by close cause, top sites and tasks.
public struct LayerSummary: Sendable {
    public var all = WindowStats()
    public var byScope: [String: WindowStats] = [:]
    public var byAPI: [String: WindowStats] = [:]
    public var byCloseCause: [String: Int] = [:]
    public var topSites: [Attribution] = []
    public var topTasks: [Attribution] = []
}

public struct AccessSummary: Sendable {
    public var total = 0
    public var uncertain = 0
    public var byClass: [String: Int] = [:]
    public var byOutcome: [String: Int] = [:]
    public var byContext: [String: Int] = [:]
    public var topSites: [Attribution] = []
}

public struct AnomalySummary: Sendable {
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
}
