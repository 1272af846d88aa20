import Foundation

/// The checkout the tests run in, and its sample traces.
public enum Repository {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let real = root.appendingPathComponent("SampleTraces/real")
    public static let scenarios = root.appendingPathComponent("SampleTraces/scenarios")
}

/// JSON the way the golden tests compare it.
public enum JSONSubset {
    /// Every key `expected` gives must equal `actual`'s (objects compared on the keys given, arrays
    /// element by element), as in the golden scenarios. Returns one line per difference.
    public static func mismatches(_ expected: Any, _ actual: Any?, path: String = "") -> [String] {
        var out: [String] = []
        collect(expected, actual, path: path, into: &out)
        return out
    }

    static func collect(_ expected: Any, _ actual: Any?, path: String, into out: inout [String]) {
        switch expected {
        case let e as [String: Any]:
            guard let a = actual as? [String: Any] else { out.append("\(path): expected an object, got \(String(describing: actual))"); return }
            for (k, v) in e where k != "_comment" { collect(v, a[k], path: path.isEmpty ? k : "\(path).\(k)", into: &out) }
        case let e as [Any]:
            guard let a = actual as? [Any], a.count == e.count else { out.append("\(path): expected \(e), got \(String(describing: actual))"); return }
            for (i, v) in e.enumerated() { collect(v, a[i], path: "\(path)[\(i)]", into: &out) }
        default:
            let es = "\(expected)", asd = actual.map { "\($0)" } ?? "missing"
            if es != asd { out.append("\(path): expected \(es), got \(asd)") }
        }
    }

    /// The value at a dotted path (`exposure.granted.windows`).
    public static func value(_ json: [String: Any], _ path: String) -> Any? {
        var cur: Any? = json
        for k in path.split(separator: ".") { cur = (cur as? [String: Any])?[String(k)] }
        return cur
    }
}
