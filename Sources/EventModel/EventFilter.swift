/// `--pid`, `--comm`, `--cpu`, `--time`: which events a read counts as matching, and (in `Analysis`)
/// which observations a report credits. The replay itself always sees every event, so that task,
/// IRQ and frame state stay correct; only what is counted and credited is narrowed.
///
///     --pid 1234,2000-2010  --comm kworker/0:1,sendfile  --cpu 0,2-3  --time 100.5,101   (trace seconds)
public struct EventFilter: Sendable, Equatable {
    /// Task ids (the event's `common_pid`, a window's holder), as inclusive ranges. Nil: any.
    public var pids: [ClosedRange<Int64>]?
    /// Task names, exact. Nil: any.
    public var comms: [String]?
    /// CPU numbers, as inclusive ranges. Nil: any.
    public var cpus: [ClosedRange<Int64>]?
    /// Trace time range in ns, both ends included. Nil: open on that side.
    public var startNs: UInt64?
    public var endNs: UInt64?

    /// An option value that is not a valid list, range or time.
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init() {}

    /// Parses the four options (nil or empty: no condition on that field).
    public init(pid: String?, comm: String?, cpu: String?, time: String?) throws {
        if let p = pid, !p.isEmpty { pids = try EventFilter.ranges(p, "--pid") }
        if let c = comm, !c.isEmpty {
            let names = c.split(separator: ",", omittingEmptySubsequences: true).map(String.init)
            guard !names.isEmpty else { throw Invalid(description: "--comm '\(c)': give one or more task names, comma-separated") }
            comms = names
        }
        if let c = cpu, !c.isEmpty { cpus = try EventFilter.ranges(c, "--cpu") }
        if let t = time, !t.isEmpty {
            let parts = t.split(separator: ",", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw Invalid(description: "--time '\(t)': give START,END in trace seconds (either may be empty)") }
            if !parts[0].isEmpty { startNs = try EventFilter.seconds(parts[0], "--time") }
            if !parts[1].isEmpty { endNs = try EventFilter.seconds(parts[1], "--time") }
            if let s = startNs, let e = endNs, e < s { throw Invalid(description: "--time '\(t)': END is before START") }
        }
    }

    /// True when nothing is filtered.
    public var isEmpty: Bool { pids == nil && comms == nil && cpus == nil && startNs == nil && endNs == nil }

    @inline(__always)
    public func matchesTime(_ ns: UInt64) -> Bool {
        if let s = startNs, ns < s { return false }
        if let e = endNs, ns > e { return false }
        return true
    }

    @inline(__always)
    public func matchesPid(_ pid: Int32) -> Bool {
        guard let ps = pids else { return true }
        return ps.contains { $0.contains(Int64(pid)) }
    }

    @inline(__always)
    public func matchesCPU(_ cpu: Int32) -> Bool {
        guard let cs = cpus else { return true }
        return cs.contains { $0.contains(Int64(cpu)) }
    }

    /// The name as a trace prints it (raw bytes of the comm column).
    public func matchesComm(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let cs = comms else { return true }
        return cs.contains { name in name.utf8.elementsEqual(bytes) }
    }

    public func matchesComm(_ name: String) -> Bool {
        guard let cs = comms else { return true }
        return cs.contains(name)
    }

    /// What is filtered, for report headers: `pid 1234; cpu 0,2-3; time 100.500000-101.000000 s`.
    public var description: String {
        var parts: [String] = []
        func list(_ rs: [ClosedRange<Int64>]) -> String {
            rs.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
        }
        if let p = pids { parts.append("pid \(list(p))") }
        if let c = comms { parts.append("comm \(c.joined(separator: ","))") }
        if let c = cpus { parts.append("cpu \(list(c))") }
        if startNs != nil || endNs != nil {
            parts.append("time \(startNs.map(EventFilter.formatSeconds) ?? "start")-\(endNs.map(EventFilter.formatSeconds) ?? "end") s")
        }
        return parts.joined(separator: "; ")
    }

    /// `123.456789` (µs, as ftrace prints) or with ns digits when the value has them.
    public static func formatSeconds(_ ns: UInt64) -> String {
        let s = ns / 1_000_000_000, frac = ns % 1_000_000_000
        if frac % 1000 == 0 {
            let us = String(frac / 1000)
            return "\(s)." + String(repeating: "0", count: 6 - us.count) + us
        }
        let f = String(frac)
        return "\(s)." + String(repeating: "0", count: 9 - f.count) + f
    }

    /// `0,2-3` → [0...0, 2...3].
    static func ranges(_ s: String, _ flag: String) throws -> [ClosedRange<Int64>] {
        var out: [ClosedRange<Int64>] = []
        for item in s.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let lo = Int64(bounds[0]), lo >= 0, let hi = bounds.count == 2 ? Int64(bounds[1]) : lo, hi >= lo else {
                throw Invalid(description: "\(flag) '\(s)': give numbers and ranges, comma-separated (e.g. 0,2-3)")
            }
            out.append(lo...hi)
        }
        return out
    }

    /// Trace seconds (`100.5`, `1234.567890`, up to 9 decimals) → ns, exactly.
    static func seconds(_ s: Substring, _ flag: String) throws -> UInt64 {
        let parts = s.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let frac = parts.count == 2 ? parts[1] : ""
        guard let whole = UInt64(parts[0].isEmpty ? "0" : parts[0]), frac.count <= 9,
              frac.allSatisfy({ $0.isASCII && $0.isNumber }), !(parts[0].isEmpty && frac.isEmpty) else {
            throw Invalid(description: "\(flag): '\(s)' is not a time in seconds (e.g. 1234.567890)")
        }
        let digits = UInt64(frac.isEmpty ? "0" : String(frac))! * UInt64(pow10(9 - frac.count))
        let (ns, o1) = whole.multipliedReportingOverflow(by: 1_000_000_000)
        guard !o1 else { throw Invalid(description: "\(flag): '\(s)' is too large") }
        return ns + digits
    }

    private static func pow10(_ n: Int) -> UInt64 { (0..<n).reduce(1) { r, _ in r * 10 } }
}
