/// Wall-clock time during which at least one window was open: the union of `[open, close)` intervals,
/// folded as windows close (in any order).
///
/// Keeps a sorted list of disjoint spans. Past `spanLimit` spans the oldest half is sealed into a sum;
/// a window that opens before the sealed point later is clipped there and counted in `clipped`, which
/// makes the union a lower bound (`isExact` false). On the sample traces nothing is ever sealed.
public struct IntervalUnion: Sendable {
    private var starts: [UInt64] = []
    private var ends: [UInt64] = []
    private var sealedNs: UInt64 = 0
    private var sealedUntil: UInt64 = 0
    /// Windows that opened before the sealed point (their earlier part was not counted).
    public private(set) var clipped = 0
    public static let spanLimit = 1 << 14

    public init() {}

    public var isExact: Bool { clipped == 0 }

    public var totalNs: UInt64 {
        var t = sealedNs
        for i in starts.indices { t &+= ends[i] - starts[i] }
        return t
    }

    public mutating func add(open: UInt64, close: UInt64) {
        var lo = open
        if lo < sealedUntil {
            clipped += 1
            lo = sealedUntil
        }
        guard close > lo else { return }
        // Windows mostly close in time order: the new span lies after, or overlaps the tail.
        if let lastEnd = ends.last, lastEnd < lo {
            starts.append(lo); ends.append(close)
        } else {
            // First span whose end reaches `lo`; spans are disjoint and sorted, so ends are sorted too.
            var a = 0, b = ends.count
            while a < b { let m = (a + b) / 2; if ends[m] < lo { a = m + 1 } else { b = m } }
            // Spans from `a` that start at or before `close` overlap the new one.
            var j = a
            while j < starts.count && starts[j] <= close { j += 1 }
            if j == a {
                starts.insert(lo, at: a); ends.insert(close, at: a)
            } else {
                // In place (a one-element array literal here cost an allocation per overlapping window).
                let s = min(starts[a], lo), e = max(ends[j - 1], close)
                starts[a] = s
                ends[a] = e
                if j - a > 1 {
                    starts.removeSubrange((a + 1)..<j)
                    ends.removeSubrange((a + 1)..<j)
                }
            }
        }
        if starts.count > IntervalUnion.spanLimit { seal(starts.count / 2) }
    }

    private mutating func seal(_ n: Int) {
        for i in 0..<n { sealedNs &+= ends[i] - starts[i] }
        sealedUntil = ends[n - 1]
        starts.removeFirst(n)
        ends.removeFirst(n)
    }

    /// Unions of different traces do not overlap in time: they add (`protreplay merge`).
    public static func mergedTotal(_ a: UInt64?, _ b: UInt64?) -> UInt64? {
        guard a != nil || b != nil else { return nil }
        return (a ?? 0) &+ (b ?? 0)
    }
}
