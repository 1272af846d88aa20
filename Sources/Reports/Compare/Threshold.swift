import Foundation

/// A CI gate condition (`--fail-if`): when it holds, protreplay exits with status 3 and one line saying why.
///
/// Grammar (whitespace ignored):
///
///     condition := [MODEL ":"] PATH OP VALUE
///     PATH      := a dotted key path of the JSON report with an integer value
///                  (exposure.effective.total_ns, unprotected_accesses.total, anomalies.by_kind.out_of_order_unmap)
///     OP        := ">" | ">=" | "<" | "<=" | "==" | "!="
///     VALUE     := NUMBER [UNIT]                 absolute
///                | ("+" | "-") NUMBER [UNIT]     baseline plus or minus this much
///                | ("+" | "-") NUMBER "%"        baseline plus or minus this percentage
///     UNIT      := "ns" | "us" | "ms" | "s"      (the number becomes ns)
///
/// `MODEL:` picks a model from the report's `models` list (default: the first model). A relative VALUE
/// needs a baseline: the first input of `compare`, or `report --baseline FILE.json`.
public struct Threshold: Sendable, CustomStringConvertible {
    public enum Op: String, Sendable, CaseIterable {
        case ge = ">=", le = "<=", eq = "==", ne = "!=", gt = ">", lt = "<"

        /// Whether `a OP b` holds.
        func holds<T: Comparable>(_ a: T, _ b: T) -> Bool {
            switch self {
            case .gt: return a > b
            case .ge: return a >= b
            case .lt: return a < b
            case .le: return a <= b
            case .eq: return a == b
            case .ne: return a != b
            }
        }
    }
    public enum Value: Sendable, Equatable {
        case absolute(Int64)
        case delta(Int64)
        /// Percent in thousandths (10% = 10_000).
        case percent(Int64)
    }

    public var text: String
    public var model: String?
    public var path: String
    public var op: Op
    public var value: Value

    public var description: String { text }
    public var isRelative: Bool { if case .absolute = value { return false } else { return true } }

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(_ text: String) throws {
        self.text = text
        let s = text.filter { !$0.isWhitespace }
        guard let opRange = Threshold.findOp(s) else {
            throw ParseError(description: "--fail-if '\(text)': expected PATH OP VALUE with OP one of > >= < <= == !=")
        }
        let lhs = String(s[s.startIndex..<opRange.0.lowerBound])
        op = opRange.1
        let rhs = String(s[opRange.0.upperBound...])
        if let colon = lhs.firstIndex(of: ":") {
            model = String(lhs[lhs.startIndex..<colon])
            path = String(lhs[lhs.index(after: colon)...])
        } else {
            model = nil
            path = lhs
        }
        guard !path.isEmpty, path.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-" }) else {
            throw ParseError(description: "--fail-if '\(text)': '\(lhs)' is not a key path like exposure.effective.total_ns")
        }
        value = try Threshold.parseValue(rhs, text)
    }

    static func findOp(_ s: String) -> (Range<String.Index>, Op)? {
        var i = s.startIndex
        while i < s.endIndex {
            for op in Op.allCases where s[i...].hasPrefix(op.rawValue) {
                return (i..<s.index(i, offsetBy: op.rawValue.count), op)
            }
            i = s.index(after: i)
        }
        return nil
    }

    static func parseValue(_ r: String, _ text: String) throws -> Value {
        var t = Substring(r)
        var sign: Int64 = 0
        if t.hasPrefix("+") { sign = 1; t = t.dropFirst() } else if t.hasPrefix("-") { sign = -1; t = t.dropFirst() }
        let bad = ParseError(description: "--fail-if '\(text)': '\(r)' is not a number, +N, -N, +N% or -N% (units ns, us, ms, s)")
        if t.hasSuffix("%") {
            guard sign != 0, let p = fixed(t.dropLast(), scale: 1000) else { throw bad }
            return .percent(sign * p)
        }
        let units: [(String, Int64)] = [("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000)]
        var scale: Int64 = 1
        for (u, m) in units where t.hasSuffix(u) {
            t = t.dropLast(u.count)
            scale = m
            break
        }
        guard let v = fixed(t, scale: scale) else { throw bad }
        return sign == 0 ? .absolute(v) : .delta(sign * v)
    }

    /// "1.5" at scale 1000 -> 1500; integers only after scaling.
    static func fixed(_ s: Substring, scale: Int64) -> Int64? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = Int64(parts[0].isEmpty ? "0" : parts[0]), !s.isEmpty else { return nil }
        var v = whole * scale
        if parts.count == 2 {
            var frac = Substring(parts[1])
            guard !frac.isEmpty, frac.allSatisfy(\.isNumber) else { return nil }
            var div = scale
            while div > 1 && !frac.isEmpty { div /= 10; v += Int64(String(frac.first!))! * div; frac = frac.dropFirst() }
            if frac.contains(where: { $0 != "0" }) { return nil }
        }
        return v
    }

    /// The value this condition reads from a report (`ReportDocument.jsonObject`).
    public func read(_ doc: [String: Any]) -> Int64? {
        func at(_ o: Any?, _ p: String) -> Any? {
            var cur = o
            for k in p.split(separator: ".") { cur = (cur as? [String: Any])?[String(k)] }
            return cur
        }
        var base: Any? = doc
        if let model {
            if let ms = doc["models"] as? [Any] {
                base = ms.first { at($0, "model.name") as? String == model }
            } else if at(doc, "model.name") as? String != model {
                base = nil
            }
        }
        // Integers only. `v is Bool` cannot tell: JSONSerialization's 0 and 1 are NSNumbers that bridge to
        // Bool as well (so a gate on a count of 0 read as missing); true and false come back as __NSCFBoolean.
        let v = at(base, path)
        guard let v, !Threshold.isJSONBoolean(v) else { return nil }
        return v as? Int64
    }

    /// True for JSONSerialization's `true`/`false` (not for the numbers 0 and 1).
    public static func isJSONBoolean(_ v: Any) -> Bool {
        String(describing: type(of: v)).hasSuffix("Boolean") || type(of: v) == Bool.self
    }

    /// Checks `current` (against `baseline` for relative values).
    /// - Returns: nil when the gate does not trip, else the one-line reason.
    /// - Throws: `ParseError` when the path is missing or a relative value has no baseline.
    public func check(_ current: [String: Any], baseline: [String: Any]?, label: String? = nil) throws -> String? {
        let name = (model.map { $0 + ":" } ?? "") + path
        guard let cur = read(current) else { throw ParseError(description: "--fail-if '\(text)': the report has no integer at \(name)") }
        var limit: Int64
        var how: String
        switch value {
        case let .absolute(v):
            limit = v
            how = "\(v)"
        case let .delta(d):
            guard let b = baseline.flatMap(read) else { throw ParseError(description: "--fail-if '\(text)': a relative threshold needs a baseline with \(name)") }
            limit = b &+ d
            how = "\(limit) (baseline \(b) \(d < 0 ? "-" : "+")\(d.magnitude))"
        case let .percent(p):
            guard let b = baseline.flatMap(read) else { throw ParseError(description: "--fail-if '\(text)': a relative threshold needs a baseline with \(name)") }
            // b * (1 + p/100000), rounded toward the baseline side of the comparison: exact in integers.
            let num = Int128(b) * Int128(100_000 + p)
            limit = Int64(clamping: num / 100_000)
            how = "\(limit) (baseline \(b) \(p < 0 ? "-" : "+")\(Threshold.percentString(p.magnitude)))"
            // Keep exactness for > and <: compare cur*100000 with num.
            let c = Int128(cur) * 100_000
            return op.holds(c, num) ? "fail-if \(text): \(label.map { $0 + ": " } ?? "")\(name) = \(cur) \(op.rawValue) \(how)" : nil
        }
        return op.holds(cur, limit) ? "fail-if \(text): \(label.map { $0 + ": " } ?? "")\(name) = \(cur) \(op.rawValue) \(how)" : nil
    }

    static func percentString(_ p: UInt64) -> String {
        let whole = p / 1000, frac = p % 1000
        if frac == 0 { return "\(whole)%" }
        var f = String(frac)
        f = String(repeating: "0", count: 3 - f.count) + f
        while f.hasSuffix("0") { f.removeLast() }
        return "\(whole).\(f)%"
    }
}
