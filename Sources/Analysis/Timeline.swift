import Replay

/// Effective exposure over time per CPU and scope, and unprotected accesses per CPU, aggregated into at
/// most `Timeline.maxBuckets` time buckets so an HTML timeline stays readable (and small) at any
/// number of windows. Buckets are `2^shift` ns wide; when the covered span needs more buckets the
/// width doubles and neighbouring buckets fold together (exact: bucket `i` at width `2w` is
/// `i >> 1` at width `w`).
public struct Timeline: Sendable {
    public static let maxBuckets = 512

    public struct Cell: Sendable, Equatable {
        /// Window-time inside this bucket (ns); may exceed the bucket width when windows overlap.
        public var coveredNs: UInt64 = 0
        /// Windows that touch this bucket.
        public var windows = 0
    }

    public struct Lane: Sendable {
        public var cpu: Int32
        public var scope: Scope
        /// Bucket index -> cell.
        public var cells: [Int: Cell]
    }

    /// log2 of the bucket width in ns.
    public private(set) var shift = 0
    public var bucketWidthNs: UInt64 { 1 << UInt64(shift) }
    /// Lowest and highest bucket index with content (at the current width); lo > hi when empty.
    public private(set) var lo = Int.max
    public private(set) var hi = Int.min
    private var lanes: [LaneKey: [Int: Cell]] = [:]
    private var marks: [Int32: [Int: Int]] = [:]

    struct LaneKey: Hashable { var cpu: Int32; var scope: Int }

    public init() {}

    public var isEmpty: Bool { lo > hi }

    /// Lanes sorted by CPU, then scope order.
    public var sortedLanes: [Lane] {
        lanes.keys.sorted { $0.cpu != $1.cpu ? $0.cpu < $1.cpu : $0.scope < $1.scope }
            .map { Lane(cpu: $0.cpu, scope: Scope.allCases[$0.scope], cells: lanes[$0]!) }
    }

    /// Per CPU: bucket index -> unprotected accesses in it.
    public var accessMarks: [(cpu: Int32, buckets: [Int: Int])] {
        marks.keys.sorted().map { ($0, marks[$0]!) }
    }

    /// Start of bucket `i` in ns.
    public func bucketStart(_ i: Int) -> UInt64 { UInt64(i) << UInt64(shift) }

    private mutating func cover(_ a: UInt64, _ b: UInt64) {
        while true {
            let l = min(lo, Int(a >> UInt64(shift))), h = max(hi, Int(b >> UInt64(shift)))
            if h - l < Timeline.maxBuckets { lo = l; hi = h; return }
            coarsen()
        }
    }

    private mutating func coarsen() {
        shift += 1
        if lo <= hi { lo >>= 1; hi >>= 1 }
        for (k, cells) in lanes {
            var n: [Int: Cell] = [:]
            for (i, c) in cells {
                var e = n[i >> 1, default: Cell()]
                e.coveredNs &+= c.coveredNs
                e.windows += c.windows   // a window in both halves counts twice here; see `add`
                n[i >> 1] = e
            }
            lanes[k] = n
        }
        for (cpu, m) in marks {
            var n: [Int: Int] = [:]
            for (i, c) in m { n[i >> 1, default: 0] += c }
            marks[cpu] = n
        }
    }

    public mutating func add(_ w: ExposureWindow) {
        let a = w.openNs, b = max(w.closeNs, w.openNs)
        cover(a, b)
        let key = LaneKey(cpu: w.cpu, scope: w.scope.index)
        var cells = lanes[key] ?? [:]
        let s = UInt64(shift)
        let first = Int(a >> s), last = Int(b >> s)
        for i in first...last {
            let bs = UInt64(i) << s, be = bs + (1 << s)
            let ov = min(b, be) > max(a, bs) ? min(b, be) - max(a, bs) : 0
            var c = cells[i, default: Cell()]
            c.coveredNs &+= ov
            c.windows += 1
            cells[i] = c
        }
        lanes[key] = cells
    }

    public mutating func addAccess(at ts: UInt64, cpu: Int32) {
        cover(ts, ts)
        marks[cpu, default: [:]][Int(ts >> UInt64(shift)), default: 0] += 1
    }
}
