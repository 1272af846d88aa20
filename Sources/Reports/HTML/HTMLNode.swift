/// A small HTML/SVG tree that escapes by construction: element names are `StaticString` (compiled into
/// the binary, never from a trace), text and attribute values are always escaped, and the
/// only content written unescaped is a `StaticString` (the page's CSS). A comm named
/// `<script>alert(1)</script>` comes out as text.
///
/// (Plot was considered: its 0.14 renderer writes attribute values unescaped and passes existing entities
/// in text through, so a trace string in a `title` or an `&lt;` in a comm would not round-trip.)
public struct HTMLNode: Sendable {
    indirect enum Kind: Sendable {
        case element(StaticString, [(String, String)], [HTMLNode])
        case text(String)
        case trusted(StaticString)
        case group([HTMLNode])
    }
    let kind: Kind

    public static func el(_ name: StaticString, _ attrs: [(String, String)] = [], _ children: [HTMLNode] = []) -> HTMLNode {
        HTMLNode(kind: .element(name, attrs, children))
    }

    public static func el(_ name: StaticString, _ attrs: [(String, String)] = [], text: String) -> HTMLNode {
        HTMLNode(kind: .element(name, attrs, [.text(text)]))
    }

    public static func text(_ s: String) -> HTMLNode { HTMLNode(kind: .text(s)) }
    public static func trusted(_ s: StaticString) -> HTMLNode { HTMLNode(kind: .trusted(s)) }
    public static func group(_ nodes: [HTMLNode]) -> HTMLNode { HTMLNode(kind: .group(nodes)) }
    public static var empty: HTMLNode { .group([]) }

    static let voidElements: Set<String> = ["meta", "br", "hr", "img", "link", "input"]

    public func render(into out: inout String) {
        switch kind {
        case let .element(name, attrs, children):
            let n = "\(name)"
            out += "<" + n
            for (k, v) in attrs {
                out += " \(k)=\""
                HTMLNode.escape(v, into: &out)
                out += "\""
            }
            out += ">"
            if HTMLNode.voidElements.contains(n) { return }
            for c in children { c.render(into: &out) }
            out += "</" + n + ">"
            if n == "tr" || n == "div" || n == "section" || n == "table" || n == "g" || n == "svg" { out += "\n" }
        case let .text(s): HTMLNode.escape(s, into: &out)
        case let .trusted(s): out += "\(s)"
        case let .group(nodes): for c in nodes { c.render(into: &out) }
        }
    }

    public var rendered: String {
        var s = ""
        render(into: &s)
        return s
    }

    /// Escapes for text and for double-quoted attribute values alike. C0 controls (but tab, LF, CR)
    /// and DEL, which HTML does not allow, become U+FFFD.
    public static func escape(_ s: String, into out: inout String) {
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(u)
            default:
                if u.value < 0x20 || u.value == 0x7F { out += "\u{FFFD}" } else { out.unicodeScalars.append(u) }
            }
        }
    }

    public static func escaped(_ s: String) -> String {
        var o = ""
        escape(s, into: &o)
        return o
    }
}

/// Number formatting for SVG coordinates.
@inline(__always) func f1(_ d: Double) -> String {
    let v = (d * 10).rounded() / 10
    return v == v.rounded() ? String(Int(v)) : String(v)
}
