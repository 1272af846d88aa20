import Replay
import Analysis

/// `protreplay report --format html`: one self-contained page (inline CSS and SVG, no scripts, nothing
/// fetched): summary table, timeline of effective windows per CPU, log-scale duration histograms per
/// scope, top call sites and tasks, unprotected accesses, anomalies and data quality.
///
/// Every number a test or a reader may look for carries an `id` of the form `MODEL.json.path`
/// (`highmem.exposure.granted.windows`), the same path as in the JSON report.
public enum HTMLReport {
    static let css: StaticString = """
    body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1240px}
    h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
    h3{font-size:15px;margin:18px 0 6px}.meta{color:#555;margin:0 0 2px}.note{color:#666;font-size:12px;margin:2px 0 10px}
    table{border-collapse:collapse;margin:6px 0 12px}th,td{padding:2px 6px;text-align:right;border-bottom:1px solid #eee;white-space:nowrap}
    th:first-child,td:first-child{text-align:left}th{background:#f6f6f6;font-weight:600}
    tr.sub td:first-child{padding-left:26px;color:#555}tr.changed{background:#fff7e0}
    table.inputs th,table.coverage th{text-align:left}td.better{color:#1a7f37}td.worse{color:#c62828}td.text{text-align:left;white-space:normal}
    .grid{display:flex;flex-wrap:wrap;gap:8px 24px}.legend span{display:inline-block;margin-right:14px}
    .swatch{display:inline-block;width:10px;height:10px;margin-right:4px}code{font-size:12px}
    svg text{fill:#333;font-family:system-ui,sans-serif}
    """

    public static func render(_ r: ReportDocument, title: String = "protreplay report") -> String {
        var body: [HTMLNode] = [.el("h1", text: title)]
        body += header(r)
        // Every timeline on the page over one time range, so that models line up.
        let range = Charts.sharedRange(r.models.compactMap(\.timeline))
        for m in r.models { body.append(model(m, firstNs: r.trace.firstNs, range: range)) }
        body.append(dataQuality(r))
        return page(title: title, body)
    }

    static func page(title: String, _ body: [HTMLNode]) -> String {
        let doc = HTMLNode.group([
            .trusted("<!DOCTYPE html>\n"),
            .el("html", [("lang", "en")], [
                .el("head", [], [
                    .el("meta", [("charset", "utf-8")]),
                    .el("meta", [("name", "viewport"), ("content", "width=device-width, initial-scale=1")]),
                    .el("title", text: title),
                    .el("style", [], [.trusted(css)]),
                ]),
                .el("body", [], body),
            ]),
        ])
        return doc.rendered + "\n"
    }

    static func header(_ r: ReportDocument) -> [HTMLNode] {
        let t = r.trace
        var out: [HTMLNode] = []
        out.append(.el("p", [("class", "meta")], [
            .text("input: "), .el("code", text: r.input.path),
            .text(" (\(r.input.format), \(r.input.compression), \(r.input.bytes) bytes)"),
        ]))
        out.append(.el("p", [("class", "meta")], text: "events \(t.events), used \(t.eventsUsed), CPUs \(t.cpus), span \(TextReport.duration(t.spanNs))"))
        out.append(.el("p", [("class", "meta")], text: "profile: \(r.profile.arch)"))
        if let m = r.merged { out.append(.el("p", [("class", "meta")], text: "merged from \(m.reports) reports")) }
        if let f = r.filter {
            out.append(.el("p", [("class", "meta")], text: "filter: \(f.description): \(f.eventsMatched) of \(t.events) events matched; \(f.rule)"))
        }
        if let tool = r.tool { out.append(.el("p", [("class", "meta")], text: "\(tool.name) \(tool.version)" + (tool.commit.map { " (commit \($0))" } ?? ""))) }
        return out
    }

    static func cell(_ id: String, _ v: String, cls: String? = nil) -> HTMLNode {
        var a: [(String, String)] = [("id", id)]
        if let cls { a.append(("class", cls)) }
        return .el("td", a, text: v)
    }

    /// Censored figures are lower bounds: shown with `≥`.
    static func statsRow(_ label: String, _ s: WindowStats, id: String, sub: Bool) -> HTMLNode {
        func b(_ ns: UInt64) -> String { (s.isLowerBound ? "≥ " : "") + TextReport.duration(ns) }
        return .el("tr", sub ? [("class", "sub")] : [], [
            .el("td", text: label),
            cell(id + ".windows", String(s.windows)),
            cell(id + ".total_ns", b(s.totalNs)),
            s.unionNs.map { cell(id + ".union_ns", (s.unionExact ? "" : "≥ ") + TextReport.duration($0)) } ?? .el("td", text: "–"),
            cell(id + ".max_ns", b(s.maxNs)),
            cell(id + ".p50_ns", b(s.p50Ns)),
            cell(id + ".p99_ns", b(s.p99Ns)),
            cell(id + ".censored", String(s.censored)),
            cell(id + ".uncertain", String(s.uncertain)),
        ])
    }

    static func layers(_ m: ModelSummary) -> [(String, LayerSummary)] {
        var l = [("granted", m.granted), ("effective", m.effective)]
        if m.intended.all.windows > 0 { l.append(("intended", m.intended)) }
        return l
    }

    static func summaryTable(_ m: ModelSummary) -> HTMLNode {
        let p = m.model + ".exposure."
        var rows: [HTMLNode] = [.el("tr", [], ["exposure windows", "windows", "sum (page-time)", "union", "max", "p50", "p99", "censored", "uncertain"].map { .el("th", text: $0) })]
        for (name, l) in layers(m) {
            rows.append(statsRow(name, l.all, id: p + name, sub: false))
            for s in Scope.allCases { if let st = l.byScope[s.rawValue], st.windows > 0 { rows.append(statsRow("scope " + s.rawValue, st, id: p + name + ".by_scope." + s.rawValue, sub: true)) } }
            for api in l.byAPI.keys.sorted() { rows.append(statsRow("api " + api, l.byAPI[api]!, id: p + name + ".by_api." + api, sub: true)) }
        }
        func signed(_ v: Int64) -> String { (v < 0 ? "−" : "+") + TextReport.duration(UInt64(v.magnitude)) }
        rows.append(.el("tr", [], [.el("td", text: "overexposure (effective − granted)"),
                                   cell(p + "overexposure_ns", signed(m.overexposureNs)),
                                   .el("td", [("colspan", "7")], text: "")]))
        if m.granted.all.censored > 0 || m.effective.all.censored > 0 {
            rows.append(.el("tr", [("class", "sub")], [.el("td", text: "from closed windows"),
                                                       cell(p + "overexposure_closed_ns", signed(m.overexposureClosedNs)),
                                                       .el("td", [("colspan", "7")], text: "")]))
            rows.append(.el("tr", [("class", "sub")], [.el("td", text: "from censored windows (not a measurement)"),
                                                       cell(p + "overexposure_censored_ns", signed(m.overexposureCensoredNs)),
                                                       .el("td", [("colspan", "7")], text: "")]))
        }
        return .el("table", [("class", "summary")], rows)
    }

    /// The notes under the summary table: what sum, union and ≥ mean, and the closed/censored split.
    static func summaryNotes(_ m: ModelSummary) -> [HTMLNode] {
        var n: [HTMLNode] = [.el("p", [("class", "note")], text:
            "sum: window durations added up (page-time; can exceed the trace span). union: wall-clock time with at least one window open.")]
        for (name, l) in layers(m) where l.all.censored > 0 || l.all.uncertain > 0 {
            var parts = ["\(TextReport.duration(l.all.closedNs)) in closed windows"]
            if l.all.censored > 0 { parts.append("≥ \(TextReport.duration(l.all.censoredNs)) in \(l.all.censored) censored windows (cut off at the start or end of the trace: lower bounds)") }
            if l.all.uncertain > 0 { parts.append("\(TextReport.duration(l.all.uncertainNs)) in \(l.all.uncertain) uncertain windows (lost events, or an end the capture has no probe for)") }
            n.append(.el("p", [("class", "note")], text: "\(name): " + parts.joined(separator: "; ")))
        }
        return n
    }

    /// Which events the model needs, which the trace has, and what is unobservable without the others.
    static func coverageTable(_ m: ModelSummary, _ c: ModelCoverage) -> HTMLNode {
        .el("table", [("class", "coverage")], [.el("tr", [], ["needed event", "in this trace", "gives", "without it"].map { .el("th", text: $0) })] +
            c.needs.enumerated().map { i, need in
                .el("tr", need.present ? [] : [("class", "changed")], [
                    .el("td", [("class", "text")], [.el("code", text: need.probes.joined(separator: " | "))]),
                    cell(m.model + ".coverage.needs.\(i).present",
                         need.present ? need.seen.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") : "missing" + (need.essential ? " (essential)" : ""),
                         cls: "text"),
                    .el("td", [("class", "text")], text: need.gives),
                    .el("td", [("class", "text")], text: need.present ? "" : need.withoutIt),
                ])
            })
    }

    static func kv(_ title: String, _ rows: [(String, String, String)]) -> HTMLNode {
        .el("table", [], [.el("tr", [], [.el("th", text: title), .el("th", text: "count")])] +
            rows.map { .el("tr", [], [.el("td", text: $0.0), cell($0.1, $0.2)]) })
    }

    static func model(_ m: ModelSummary, firstNs: UInt64?, range: (origin: UInt64, end: UInt64)? = nil) -> HTMLNode {
        var n: [HTMLNode] = []
        let opts = m.options.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        n.append(.el("h2", [("id", m.model)], text: "model: \(m.model)" + (m.coverage.map { " — \($0.basis.words)" } ?? "") + (opts.isEmpty ? "" : "  (\(opts))")))
        if let c = m.coverage {
            n.append(.el("p", [("class", "meta")], [.el("strong", [("id", m.model + ".model.basis")], text: c.basis.words), .text(": " + c.basisReason)]))
        }
        n.append(.el("p", [("class", "meta")], [
            .text("unprotected accesses: "), .el("strong", [("id", m.model + ".unprotected_accesses.total")], text: String(m.accesses.total)),
            .text(" · anomalies: "), .el("strong", [("id", m.model + ".anomalies.total")], text: String(m.anomalies.total)),
        ]))
        n.append(summaryTable(m))
        n += summaryNotes(m)
        if let c = m.coverage {
            n.append(.el("h3", text: "Coverage: \(c.needs.count - c.missing.count) of \(c.needs.count) needed events in the trace"))
            n.append(coverageTable(m, c))
        }
        if let t = m.timeline {
            n.append(.el("h3", text: "Timeline of effective windows"))
            n.append(legend(Scope.allCases.filter { s in t.sortedLanes.contains { $0.scope == s } }.map { ($0.rawValue, Charts.scopeColors[$0.rawValue]!) }))
            n.append(Charts.timeline(t, firstNs: firstNs, range: range))
        }
        n.append(.el("h3", text: "Window durations (log scale)"))
        var hs: [HTMLNode] = []
        for (name, l) in layers(m) {
            for s in Scope.allCases {
                guard let st = l.byScope[s.rawValue], st.windows > 0 else { continue }
                hs.append(Charts.histogram([(s.rawValue, Charts.scopeColors[s.rawValue]!, st.durations)], title: "\(name), scope \(s.rawValue): \(st.windows) windows"))
            }
        }
        n.append(hs.isEmpty ? .el("p", [("class", "note")], text: "No windows.") : .el("div", [("class", "grid")], hs))
        for (name, l) in layers(m) where !l.topSites.isEmpty || !l.topTasks.isEmpty {
            n.append(.el("h3", text: "Top call sites and tasks (\(name))"))
            n.append(Charts.bars(l.topSites.map(\.name), [l.topSites.map(\.totalNs)], series: [("total", "#4e79a7")],
                                 title: "call sites by total \(name) time", format: TextReport.duration))
            n.append(Charts.bars(l.topTasks.map(\.name), [l.topTasks.map(\.totalNs)], series: [("total", "#59a14f")],
                                 title: "tasks by total \(name) time", format: TextReport.duration))
        }
        n.append(.el("h3", text: "Unprotected accesses"))
        let classes = m.accessClasses.isEmpty ? m.accesses.byClass.keys.sorted() : m.accessClasses
        var grid: [HTMLNode] = [kv("class", classes.map { ($0, m.model + ".unprotected_accesses.by_class." + $0, String(m.accesses.byClass[$0] ?? 0)) })]
        grid.append(kv("outcome", AccessRecord.Outcome.allCases.map {
            ($0.rawValue, m.model + ".unprotected_accesses.by_outcome." + $0.rawValue, String(m.accesses.byOutcome[$0.rawValue] ?? 0))
        }))
        n.append(.el("div", [("class", "grid")], grid))
        if !m.accesses.topSites.isEmpty {
            n.append(Charts.bars(m.accesses.topSites.map(\.name), [m.accesses.topSites.map { UInt64($0.windows) }], series: [("accesses", "#d62728")],
                                 title: "call sites of unprotected accesses", format: { String($0) }))
        }
        n.append(.el("h3", text: "Anomalies"))
        let kinds = m.anomalyKinds.isEmpty ? m.anomalies.byKind.keys.sorted() : m.anomalyKinds
        n.append(kv("kind", kinds.map { ($0, m.model + ".anomalies.by_kind." + $0, String(m.anomalies.byKind[$0] ?? 0)) }))
        if !m.anomalies.examples.isEmpty {
            n.append(.el("table", [], [.el("tr", [], ["line", "time (s)", "cpu", "pid", "kind", "detail"].map { .el("th", text: $0) })] +
                m.anomalies.examples.map { e in
                    .el("tr", [], [.el("td", text: String(e.line)), .el("td", text: TextReport.seconds(e.timestampNs)), .el("td", text: e.cpu < 0 ? "-" : String(e.cpu)),
                                   .el("td", text: e.pid < 0 ? "-" : String(e.pid)), .el("td", text: e.kind), .el("td", [("class", "text")], text: e.detail)])
                }))
        }
        if !m.counters.isEmpty {
            n.append(.el("h3", text: "Counters"))
            n.append(kv("counter", m.counters.sorted { $0.key < $1.key }.map { ($0.key, m.model + ".counters." + $0.key, String($0.value)) }))
        }
        return .el("section", [("class", "model")], n)
    }

    static func legend(_ items: [(String, String)]) -> HTMLNode {
        .el("p", [("class", "legend")], items.map { .el("span", [], [.el("span", [("class", "swatch"), ("style", "background:\($0.1)")]), .text($0.0)]) })
    }

    static func dataQuality(_ r: ReportDocument) -> HTMLNode {
        let t = r.trace
        let rows: [(String, String)] = [
            ("events", String(t.events)), ("events_used", String(t.eventsUsed)), ("events_ignored", String(t.eventsIgnored)),
            ("unmapped", String(t.unmapped)), ("malformed", String(t.malformed)), ("malformed_events", String(t.malformedEvents)),
            ("lost_events", String(t.lostEvents)), ("lost_markers", String(t.lostMarkers)), ("stack_traces", String(t.stackTraces)),
            ("buffer_starts", String(t.bufferStarts)), ("cpus", String(t.cpus)), ("span_ns", TextReport.duration(t.spanNs)),
            ("timestamps_backwards", String(t.timestampsBackwards)), ("cpu_out_of_range", String(t.cpuOutOfRange)),
            ("state_cap_refusals", String(t.stateCapRefusals)),
        ]
        var n: [HTMLNode] = [.el("h2", text: "Data quality")]
        n.append(kv("trace", rows.map { ($0.0, "trace." + $0.0, $0.1) }))
        let unmapped = t.unmappedByName.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        if !unmapped.isEmpty {
            n.append(.el("h3", text: "Unmapped events (no probe-map rule)"))
            n.append(.el("table", [], [.el("tr", [], [.el("th", text: "event"), .el("th", text: "count")])] +
                unmapped.prefix(20).map { .el("tr", [], [.el("td", text: $0.key), .el("td", text: String($0.value))]) }))
        }
        if !t.malformedExamples.isEmpty {
            n.append(.el("h3", text: "Malformed lines (first few)"))
            n.append(.el("table", [], [.el("tr", [], ["line", "byte", "reason", "text"].map { .el("th", text: $0) })] + t.malformedExamples.map { e in
                .el("tr", [], [.el("td", text: String(e.line)), .el("td", text: String(e.offset)),
                               .el("td", [("class", "text")], text: e.reason), .el("td", [("class", "text")], [.el("code", text: e.text)])])
            }))
        }
        return .el("section", [("class", "quality")], n)
    }
}
