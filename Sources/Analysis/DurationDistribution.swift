import Histogram

/// Window durations for p50/p99. Exact (every value kept, nearest-rank percentiles) up to
/// `exactLimit` values; past that an HDR histogram with 3 significant digits takes over, so memory
/// stays bounded however many windows a trace has.
public struct DurationDistribution: Sendable {
    public static let exactLimit = 4096
    /// Largest duration the histogram tracks (about 27.8 hours); longer ones are clamped.
    public static let highestTrackable: UInt64 = 100_000_000_000_000

    private var exact: [UInt64] = []
    private var histogram: Histogram<UInt64>?
    public private(set) var count: UInt64 = 0

    public init() {}

    /// True while percentiles are exact.
    public var isExact: Bool { histogram == nil }

    public mutating func record(_ value: UInt64) {
        count += 1
        if histogram == nil {
            exact.append(value)
            if exact.count > DurationDistribution.exactLimit {
                var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: DurationDistribution.highestTrackable,
                                          numberOfSignificantValueDigits: .three)
                for v in exact { _ = h.record(min(v, DurationDistribution.highestTrackable)) }
                exact = []
                histogram = h
            }
        } else {
            _ = histogram!.record(min(value, DurationDistribution.highestTrackable))
        }
    }

    /// Nearest-rank percentile: the smallest recorded value such that at least `p`% of values are <= it.
    public func percentile(_ p: Double) -> UInt64 {
        if let h = histogram { return h.valueAtPercentile(p) }
        guard !exact.isEmpty else { return 0 }
        let sorted = exact.sorted()
        var rank = Int((p / 100.0 * Double(sorted.count)).rounded(.up))
        rank = min(max(rank, 1), sorted.count)
        return sorted[rank - 1]
    }

    public mutating func merge(_ other: DurationDistribution) {
        if let oh = other.histogram {
            if histogram == nil {
                var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: DurationDistribution.highestTrackable,
                                          numberOfSignificantValueDigits: .three)
                for v in exact { _ = h.record(min(v, DurationDistribution.highestTrackable)) }
                exact = []
                histogram = h
            }
            histogram!.add(oh)
            count += other.count
        } else {
            for v in other.exact { record(v) }
        }
    }
}
