/// A JSON document built in memory and printed deterministically: object keys sorted, integers
/// exact, two-space indentation. The same report always prints to the same bytes.
public indirect enum JSONValue: Equatable, Sendable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case int(Int64)
    case uint(UInt64)
    case bool(Bool)
    case null

    public static func int(_ v: Int) -> JSONValue { .int(Int64(v)) }

    public func rendered() -> String {
        var out = ""
        render(into: &out, indent: 0)
        out += "\n"
        return out
    }

    private func render(into out: inout String, indent: Int) {
        switch self {
        case let .object(d):
            if d.isEmpty { out += "{}"; return }
            out += "{\n"
            let keys = d.keys.sorted()
            for (i, k) in keys.enumerated() {
                out += String(repeating: "  ", count: indent + 1)
                JSONValue.escape(k, into: &out)
                out += ": "
                d[k]!.render(into: &out, indent: indent + 1)
                out += i == keys.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: "  ", count: indent) + "}"
        case let .array(a):
            if a.isEmpty { out += "[]"; return }
            if a.allSatisfy(\.isInteger) {
                // Integer arrays (duration distributions) on one line.
                out += "["
                for (i, v) in a.enumerated() {
                    if i > 0 { out += ", " }
                    v.render(into: &out, indent: 0)
                }
                out += "]"
                return
            }
            out += "[\n"
            for (i, v) in a.enumerated() {
                out += String(repeating: "  ", count: indent + 1)
                v.render(into: &out, indent: indent + 1)
                out += i == a.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: "  ", count: indent) + "]"
        case let .string(s): JSONValue.escape(s, into: &out)
        case let .int(v): out += String(v)
        case let .uint(v): out += String(v)
        case let .bool(b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }

    var isInteger: Bool {
        switch self { case .int, .uint: return true; default: return false }
    }

    /// RFC 8259 string escaping; anything a trace puts in a comm name comes out as valid JSON.
    static func escape(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7F || u.value == 0x2028 || u.value == 0x2029 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}
