/// Aggregate of a set of exposure windows, folded as they close.
public struct WindowStats: Sendable {
    public var windows = 0
    public var totalNs: UInt64 = 0
    public var maxNs: UInt64 = 0
    public var censored = 0
    public var uncertain = 0
    public var durations = DurationDistribution()

    public init() {}

    public mutating func add(durationNs: UInt64, censored c: Bool, uncertain u: Bool) {
        windows += 1
        totalNs &+= durationNs
        maxNs = max(maxNs, durationNs)
        if c { censored += 1 }
        if u { uncertain += 1 }
        durations.record(durationNs)
    }

    /// Folds `other` in, as if its windows had been added here.
    public mutating func merge(_ other: WindowStats) {
        windows += other.windows
        totalNs &+= other.totalNs
        maxNs = max(maxNs, other.maxNs)
        censored += other.censored
        uncertain += other.uncertain
        durations.merge(other.durations)
    }

    public var p50Ns: UInt64 { durations.percentile(50) }
    public var p99Ns: UInt64 { durations.percentile(99) }
}

/// Count and total time attributed to one call site or task.
public struct Attribution: Sendable, Equatable {
    public var name: String
    public var windows: Int
    public var totalNs: UInt64

    public init(name: String, windows: Int, totalNs: UInt64) {
        self.name = name; self.windows = windows; self.totalNs = totalNs
    }
}
