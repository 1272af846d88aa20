import Foundation
import Replay
import Analysis

/// One column of a comparison: a trace replayed now, a saved JSON report, or one configuration of a
/// what-if replay.
public struct CompareInput: Sendable {
    public var label: String
    public var path: String
    /// `trace`, `report` or `config`.
    public var kind: String
    /// The `--config` string of a what-if column.
    public var config: String?
    public var report: ReportDocument

    public init(label: String, path: String, kind: String, config: String? = nil, report: ReportDocument) {
        self.label = label; self.path = path; self.kind = kind; self.config = config; self.report = report
    }
}

/// `protreplay compare`: text (aligned, delta and ratio per metric), JSON (`protreplay.compare/1`) and HTML.
public enum CompareReport {
    public static let schema = "protreplay.compare/1"

    public static func comparison(_ inputs: [CompareInput]) -> Comparison {
        Comparison(labels: inputs.map(\.label), traces: inputs.map(\.report.trace.metrics), models: inputs.map(\.report.models))
    }

    static func letter(_ i: Int) -> String { i < 26 ? String(UnicodeScalar(UInt8(65 + i))) : "C\(i)" }

    /// Durations in ns keys print as durations, everything else as integers.
    static func show(_ key: String, _ v: Int64?) -> String {
        guard let v else { return "-" }
        if key.hasSuffix("_ns") { return (v < 0 ? "-" : "") + TextReport.duration(UInt64(v.magnitude)) }
        return String(v)
    }

    static func showDelta(_ key: String, _ d: Int64?) -> String {
        guard let d else { return "-" }
        if d == 0 { return "0" }
        let sign = d < 0 ? "-" : "+"
        if key.hasSuffix("_ns") { return sign + TextReport.duration(UInt64(d.magnitude)) }
        return sign + String(d.magnitude)
    }

    static func showRatio(_ r: Comparison.Row, _ i: Int) -> String {
        if let x = r.ratio(i) { return x < 0 ? "-" : String(format: "x%.3f", x) }   // a sign change has no ratio
        if let a = r.values[0], let b = r.values[i], a == 0 { return b == 0 ? "=" : "new" }
        return "-"
    }

    // MARK: text

    public static func text(_ inputs: [CompareInput], _ c: Comparison, changedOnly: Bool = false) -> String {
        var out = "# protreplay compare\n"
        let whatIf = inputs.allSatisfy { $0.kind == "config" }
        if whatIf, let p = inputs.first?.path { out += "# trace: \(TextReport.clean(p)), one pass, one column per configuration\n" }
        for (i, x) in inputs.enumerated() {
            let source = whatIf ? "" : "  (\(x.kind): \(TextReport.clean(x.path)))"
            out += "# \(letter(i)) = \(TextReport.clean(x.label))\(source)\(i == 0 ? "  [baseline]" : "")\n"
            if let f = x.report.filter {
                out += "#     filter: \(TextReport.clean(f.description)): \(f.eventsMatched) of \(x.report.trace.events) events matched\n"
            }
        }
        let n = inputs.count
        func table(_ title: String, _ rows: [Comparison.Row]) {
            let shown = changedOnly ? rows.filter(\.changed) : rows
            guard !shown.isEmpty else { return }
            let kw = max(40, (shown.map { $0.key.count }.max() ?? 0) + 2)
            var head = TextReport.pad("# " + title, kw)
            for i in 0..<n { head += TextReport.lpad(letter(i), 14) }
            for i in 1..<max(n, 1) { head += TextReport.lpad("delta " + letter(i), 16) + TextReport.lpad("ratio", 10) }
            out += "\n" + head + "\n"
            for r in shown {
                var line = TextReport.pad("  " + r.key, kw)
                for i in 0..<n { line += TextReport.lpad(show(r.key, r.values[i]), 14) }
                for i in 1..<max(n, 1) { line += TextReport.lpad(showDelta(r.key, r.delta(i)), 16) + TextReport.lpad(showRatio(r, i), 10) }
                out += line + "\n"
            }
        }
        table("trace", c.traceRows)
        for g in c.groups {
            let opts = g.options.enumerated().compactMap { i, o -> String? in
                guard let o, !o.isEmpty else { return nil }
                return "\(letter(i)): " + o.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            }
            out += "\n# model: \(g.title)\n"
            if Set(g.options.compactMap { $0 }).count > 1 { for o in opts { out += "#   \(o)\n" } }
            // Observed or what-if, per column: a what-if column is not a measurement of that kernel.
            let bases = g.summaries.enumerated().compactMap { i, m in m?.coverage.map { "\(letter(i)) \($0.basis.words)" } }
            if !bases.isEmpty { out += "# basis: " + bases.joined(separator: ", ") + "\n" }
            // Headline numbers first (layers, overexposure, totals), then the breakdowns and counters.
            if changedOnly && !g.rows.contains(where: \.changed) { out += "  (no metric differs)\n" }
            let headline = g.rows.filter { !$0.key.contains(".by_") && !$0.key.hasPrefix("counters.") }
            table("metric", headline)
            table("breakdown", g.rows.filter { $0.key.contains(".by_") || $0.key.hasPrefix("counters.") })
            if !g.shifted.isEmpty {
                out += "\n# Distributions that shifted (p50 / p99)\n"
                for s in g.shifted {
                    var line = "  " + TextReport.pad(s.key, 44)
                    for i in 0..<n { line += "  \(letter(i)) \(show("_ns", s.p50[i])) / \(show("_ns", s.p99[i]))" }
                    out += line + "\n"
                }
            }
            for i in 1..<max(n, 1) {
                if !g.sitesAppeared[i].isEmpty { out += "\n# Call sites in \(letter(i)) not in A: " + g.sitesAppeared[i].map(TextReport.clean).joined(separator: ", ") + "\n" }
                if !g.sitesDisappeared[i].isEmpty { out += "# Call sites in A not in \(letter(i)): " + g.sitesDisappeared[i].map(TextReport.clean).joined(separator: ", ") + "\n" }
            }
        }
        return out
    }

    // MARK: JSON

    /// `protreplay.compare/1` (docs/report-schema.md, "Comparison").
    struct Document: Encodable {
        var schema = CompareReport.schema
        var baseline = 0
        var inputs: [Input]
        var trace: [Row]
        var models: [Group]

        struct Input: Encodable {
            var column, label, path, kind: String
            var config: String?
            var models: [String]
        }
        struct Row: Encodable {
            var key: String
            var values, deltas, ratiosPermille: [Int64?]
            var changed: Bool
            enum CodingKeys: String, CodingKey { case key, values, deltas, changed, ratiosPermille = "ratios_permille" }
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(key, forKey: .key)
                try c.encode(values, forKey: .values)   // nulls where a column has no such metric
                try c.encode(deltas, forKey: .deltas)
                try c.encode(ratiosPermille, forKey: .ratiosPermille)
                try c.encode(changed, forKey: .changed)
            }
        }
        struct Shift: Encodable {
            var key: String
            var p50, p99: [Int64?]
            enum CodingKeys: String, CodingKey { case key, p50 = "p50_ns", p99 = "p99_ns" }
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(key, forKey: .key); try c.encode(p50, forKey: .p50); try c.encode(p99, forKey: .p99)
            }
        }
        struct Group: Encodable {
            var models: [String?]
            var options: [[String: String]?]
            var basis: [String?]
            var metrics: [Row]
            var shifted: [Shift]
            var sitesAppeared, sitesDisappeared: [[String]]
            enum CodingKeys: String, CodingKey {
                case models, options, basis, metrics, shifted, sitesAppeared = "sites_appeared", sitesDisappeared = "sites_disappeared"
            }
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(models, forKey: .models); try c.encode(options, forKey: .options); try c.encode(basis, forKey: .basis)
                try c.encode(metrics, forKey: .metrics); try c.encode(shifted, forKey: .shifted)
                try c.encode(sitesAppeared, forKey: .sitesAppeared); try c.encode(sitesDisappeared, forKey: .sitesDisappeared)
            }
        }
    }

    static func rows(_ rows: [Comparison.Row], _ n: Int) -> [Document.Row] {
        rows.map { r in
            Document.Row(key: r.key, values: r.values, deltas: (0..<n).map { r.delta($0) },
                         ratiosPermille: (0..<n).map { i in r.ratio(i).map { Int64(($0 * 1000).rounded()) } }, changed: r.changed)
        }
    }

    /// The comparison as `protreplay.compare/1` JSON (sorted keys, exact integers).
    public static func json(_ inputs: [CompareInput], _ c: Comparison) -> String {
        let n = inputs.count
        let doc = Document(
            inputs: inputs.enumerated().map { i, x in
                Document.Input(column: letter(i), label: x.label, path: x.path, kind: x.kind, config: x.config, models: x.report.models.map(\.model))
            },
            trace: rows(c.traceRows, n),
            models: c.groups.map { g in
                Document.Group(models: g.models, options: g.options, basis: g.summaries.map { $0?.coverage?.basis.rawValue },
                               metrics: rows(g.rows, n), shifted: g.shifted.map { Document.Shift(key: $0.key, p50: $0.p50, p99: $0.p99) },
                               sitesAppeared: g.sitesAppeared, sitesDisappeared: g.sitesDisappeared)
            })
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! e.encode(doc), as: UTF8.self) + "\n"
    }

    // MARK: HTML

    public static func html(_ inputs: [CompareInput], _ c: Comparison) -> String {
        let n = inputs.count
        let series = inputs.enumerated().map { (name: "\(letter($0.offset)) \($0.element.label)", color: Charts.seriesColor($0.offset)) }
        var body: [HTMLNode] = [.el("h1", text: "protreplay compare")]
        body.append(.el("table", [("class", "inputs")], [.el("tr", [], ["", "input", "kind", "path"].map { .el("th", text: $0) })] + inputs.enumerated().map { i, x in
            .el("tr", [], [.el("td", [], [.el("span", [("class", "swatch"), ("style", "background:\(Charts.seriesColor(i))")]), .text(letter(i) + (i == 0 ? " (baseline)" : ""))]),
                           .el("td", [("class", "text")], text: x.label), .el("td", [("class", "text")], text: x.kind),
                           .el("td", [("class", "text")], [.el("code", text: x.path)])])
        }))
        func table(_ title: String, _ rows: [Comparison.Row], idPrefix: String) -> HTMLNode {
            var head: [HTMLNode] = [.el("th", text: title)]
            for i in 0..<n { head.append(.el("th", text: letter(i))) }
            for i in 1..<max(n, 1) { head += [.el("th", text: "Δ " + letter(i)), .el("th", text: "ratio")] }
            return .el("table", [("class", "compare")], [.el("tr", [], head)] + rows.map { r in
                var cells: [HTMLNode] = [.el("td", text: r.key)]
                for i in 0..<n { cells.append(.el("td", [("id", "\(idPrefix)\(r.key).\(letter(i))")], text: show(r.key, r.values[i]))) }
                for i in 1..<max(n, 1) {
                    let d = r.delta(i) ?? 0
                    // Fewer windows, less time and fewer accesses or anomalies read as better.
                    let cls = d == 0 ? "" : (d < 0 ? "better" : "worse")
                    cells.append(.el("td", [("id", "\(idPrefix)\(r.key).delta.\(letter(i))"), ("class", cls)], text: showDelta(r.key, r.delta(i))))
                    cells.append(.el("td", text: showRatio(r, i)))
                }
                return .el("tr", r.changed ? [("class", "changed")] : [], cells)
            })
        }
        body.append(.el("h2", text: "Trace"))
        body.append(table("trace", c.traceRows, idPrefix: ""))
        for (gi, g) in c.groups.enumerated() {
            body.append(.el("h2", text: "model: \(g.title)"))
            for (i, o) in g.options.enumerated() {
                if let o, !o.isEmpty { body.append(.el("p", [("class", "meta")], text: "\(letter(i)): " + o.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))) }
            }
            for (i, m) in g.summaries.enumerated() {
                if let c = m?.coverage { body.append(.el("p", [("class", "meta")], text: "\(letter(i)): \(c.basis.words): \(c.basisReason)")) }
            }
            let present = g.summaries.enumerated().compactMap { i, m in m.map { (i, $0) } }
            body.append(.el("h3", text: "Window durations, overlaid (log scale)"))
            var hs: [HTMLNode] = []
            for layer in ["granted", "effective"] {
                hs.append(Charts.histogram(present.map { i, m in
                    (series[i].name, series[i].color, layer == "granted" ? m.granted.all.durations : m.effective.all.durations)
                }, title: "\(layer): all scopes"))
            }
            body.append(.el("div", [("class", "grid")], hs))
            body.append(.el("h3", text: "Side by side"))
            let ser = present.map { series[$0.0] }
            for layer in ["granted", "effective"] {
                let scopes = Scope.allCases.map(\.rawValue).filter { s in present.contains { (layer == "granted" ? $0.1.granted : $0.1.effective).byScope[s] != nil } }
                body.append(Charts.bars(scopes.map { "scope " + $0 }, present.map { _, m in
                    scopes.map { (layer == "granted" ? m.granted : m.effective).byScope[$0]?.totalNs ?? 0 }
                }, series: ser, title: "\(layer) time by scope", format: TextReport.duration))
            }
            var sites: [String] = []
            for (_, m) in present { for a in m.granted.topSites.prefix(8) where !sites.contains(a.name) { sites.append(a.name) } }
            body.append(Charts.bars(sites, present.map { _, m in sites.map { s in m.granted.topSites.first { $0.name == s }?.totalNs ?? 0 } },
                                    series: ser, title: "granted time by call site (top sites)", format: TextReport.duration))
            body.append(.el("h3", text: "Metrics"))
            body.append(table("metric", g.rows, idPrefix: "g\(gi)."))
            if !g.shifted.isEmpty {
                body.append(.el("h3", text: "Distributions that shifted"))
                var head: [HTMLNode] = [.el("th", text: "windows")]
                for i in 0..<n { head.append(.el("th", text: "p50 / p99 " + letter(i))) }
                body.append(.el("table", [], [.el("tr", [], head)] + g.shifted.map { s in
                    .el("tr", [], [.el("td", text: s.key)] + (0..<n).map { .el("td", text: "\(show("_ns", s.p50[$0])) / \(show("_ns", s.p99[$0]))") })
                }))
            }
            for i in 1..<max(n, 1) where !g.sitesAppeared[i].isEmpty || !g.sitesDisappeared[i].isEmpty {
                body.append(.el("p", [("class", "meta")], text: "Call sites in \(letter(i)) not in A: " + (g.sitesAppeared[i].isEmpty ? "none" : g.sitesAppeared[i].joined(separator: ", "))))
                body.append(.el("p", [("class", "meta")], text: "Call sites in A not in \(letter(i)): " + (g.sitesDisappeared[i].isEmpty ? "none" : g.sitesDisappeared[i].joined(separator: ", "))))
            }
        }
        return HTMLReport.page(title: "protreplay compare", body)
    }
}
