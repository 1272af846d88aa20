/// Aggregate of a set of exposure windows, folded as they close.
public struct WindowStats: Sendable {
    public var windows = 0
    public var totalNs: UInt64 = 0
    public var maxNs: UInt64 = 0
    public var censored = 0
    public var uncertain = 0
    /// Time in censored windows (cut off at the start or end of the trace): a lower bound of their real length.
    public var censoredNs: UInt64 = 0
    /// Time in uncertain windows (crossed lost events, or end at an event the capture has no probe for).
    public var uncertainNs: UInt64 = 0
    public var durations = DurationDistribution()
    /// Wall-clock time during which at least one of these windows was open (set for a layer and its
    /// scopes; `totalNs` is a sum of window durations, page-time, and can exceed the trace span).
    public var unionNs: UInt64?
    /// False when the union is a lower bound (`IntervalUnion.isExact`).
    public var unionExact = true

    public init() {}

    public mutating func add(durationNs: UInt64, censored c: Bool, uncertain u: Bool) {
        windows += 1
        totalNs &+= durationNs
        maxNs = max(maxNs, durationNs)
        if c { censored += 1; censoredNs &+= durationNs }
        if u { uncertain += 1; uncertainNs &+= durationNs }
        durations.record(durationNs)
    }

    /// Folds `other` in, as if its windows had been added here.
    public mutating func merge(_ other: WindowStats) {
        windows += other.windows
        totalNs &+= other.totalNs
        maxNs = max(maxNs, other.maxNs)
        censored += other.censored
        uncertain += other.uncertain
        censoredNs &+= other.censoredNs
        uncertainNs &+= other.uncertainNs
        durations.merge(other.durations)
        unionNs = IntervalUnion.mergedTotal(unionNs, other.unionNs)
        unionExact = unionExact && other.unionExact
    }

    /// Time in windows that opened and closed inside the trace.
    public var closedNs: UInt64 { totalNs &- censoredNs }
    /// Total, max and percentiles are lower bounds once a censored window is among them.
    public var isLowerBound: Bool { censored > 0 }

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
