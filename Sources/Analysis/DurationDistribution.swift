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
    /// True while percentiles are exact (`histogram` is nil). A stored flag: testing the optional
    /// histogram itself copies it on every record.
    public private(set) var isExact = true

    public init() {}

    public mutating func record(_ value: UInt64) {
        count += 1
        if isExact {
            exact.append(value)
            if exact.count > DurationDistribution.exactLimit {
                var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: DurationDistribution.highestTrackable,
                                          numberOfSignificantValueDigits: .three)
                for v in exact { _ = h.record(min(v, DurationDistribution.highestTrackable)) }
                exact = []
                histogram = h
                isExact = false
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
            if isExact {
                var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: DurationDistribution.highestTrackable,
                                          numberOfSignificantValueDigits: .three)
                for v in exact { _ = h.record(min(v, DurationDistribution.highestTrackable)) }
                exact = []
                histogram = h
                isExact = false
            }
            histogram!.add(oh)
            count += other.count
        } else {
            for v in other.exact { record(v) }
        }
    }

    /// The distribution as `(value, count)` pairs in increasing value order; lossless:
    /// `DurationDistribution(entries:exact:)` rebuilds one with the same count and the same percentiles,
    /// and merging rebuilt distributions gives what merging the originals gives.
    ///
    /// Exact: every distinct value and how often it was recorded. HDR: one pair per non-empty bucket,
    /// the value being the bucket's lowest equivalent value, except that the lowest bucket carries the
    /// exact minimum and the highest bucket the exact maximum (the histogram clamps percentiles to both).
    public var entries: [(value: UInt64, count: UInt64)] {
        if let h = histogram {
            var out: [(value: UInt64, count: UInt64)] = []
            for it in h.recordedValues() { out.append((h.lowestEquivalentForValue(it.value), UInt64(it.count))) }
            if !out.isEmpty {
                out[0].value = h.min
                out[out.count - 1].value = h.maxRecorded
                if out.count == 1 && h.min != h.maxRecorded {
                    // min and max share the only bucket: keep both exact.
                    let n = out[0].count
                    out = n >= 2 ? [(value: h.min, count: n - 1), (value: h.maxRecorded, count: UInt64(1))] : [(value: h.maxRecorded, count: n)]
                }
            }
            return out
        }
        var out: [(value: UInt64, count: UInt64)] = []
        for v in exact.sorted() {
            if let last = out.last, last.value == v { out[out.count - 1].count += 1 } else { out.append((v, 1)) }
        }
        return out
    }

    /// Rebuilds a distribution from `entries` (see there).
    /// - Parameter exact: the entries are exact values (else HDR buckets with 3 significant digits).
    public init(entries: [(value: UInt64, count: UInt64)], exact: Bool) {
        if exact {
            for e in entries { for _ in 0..<e.count { record(e.value) } }
            return
        }
        var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: DurationDistribution.highestTrackable,
                                  numberOfSignificantValueDigits: .three)
        var n: UInt64 = 0
        for e in entries where e.count > 0 {
            _ = h.record(min(e.value, DurationDistribution.highestTrackable), count: e.count)
            n += e.count
        }
        histogram = h
        isExact = false
        count = n
    }
}

