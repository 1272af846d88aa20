import Foundation
import Replay
import Analysis

/// Inline SVG charts for the HTML report and the comparison page. Every label from a trace goes
/// through `HTMLNode.text`/attribute escaping.
enum Charts {
    static let scopeColors: [String: String] = ["ctx": "#4e79a7", "task": "#59a14f", "cpu": "#f28e2b", "global": "#e15759", "device": "#b07aa1"]
    static let seriesColors = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"]

    static func seriesColor(_ i: Int) -> String { seriesColors[i % seriesColors.count] }

    static func svg(width: Int, height: Int, label: String, _ children: [HTMLNode]) -> HTMLNode {
        .el("svg", [("xmlns", "http://www.w3.org/2000/svg"), ("width", String(width)), ("height", String(height)),
                    ("viewBox", "0 0 \(width) \(height)"), ("role", "img"), ("aria-label", label)], children)
    }

    static func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, opacity: Double = 1, title: String? = nil, cls: String? = nil) -> HTMLNode {
        var a: [(String, String)] = [("x", f1(x)), ("y", f1(y)), ("width", f1(max(w, 0.5))), ("height", f1(h)), ("fill", fill)]
        if opacity < 1 { a.append(("fill-opacity", String(format: "%.2f", opacity))) }
        if let cls { a.append(("class", cls)) }
        return .el("rect", a, title.map { [.el("title", text: $0)] } ?? [])
    }

    static func label(_ x: Double, _ y: Double, _ s: String, anchor: String = "start", size: Int = 11, cls: String? = nil) -> HTMLNode {
        var a: [(String, String)] = [("x", f1(x)), ("y", f1(y)), ("font-size", String(size)), ("text-anchor", anchor)]
        if let cls { a.append(("class", cls)) }
        return .el("text", a, text: s)
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String = "#999", width: Double = 1) -> HTMLNode {
        .el("line", [("x1", f1(x1)), ("y1", f1(y1)), ("x2", f1(x2)), ("y2", f1(y2)), ("stroke", stroke), ("stroke-width", f1(width))])
    }

    // MARK: timeline

    /// Effective windows per CPU and scope over time (shade = share of the bucket covered), accesses as red ticks.
    /// The time range every timeline of one page is drawn over (one origin, one scale), from the
    /// timelines' buckets.
    static func sharedRange(_ ts: [Timeline]) -> (origin: UInt64, end: UInt64)? {
        let live = ts.filter { !$0.isEmpty }
        guard let origin = live.map({ $0.bucketStart($0.lo) }).min(), let end = live.map({ $0.bucketStart($0.hi) + $0.bucketWidthNs }).max() else { return nil }
        return (origin, max(end, origin + 1))
    }

    /// - Parameter range: the page's shared time range (`sharedRange`); nil: this timeline's own.
    static func timeline(_ t: Timeline, firstNs: UInt64?, range: (origin: UInt64, end: UInt64)? = nil) -> HTMLNode {
        guard !t.isEmpty else { return .el("p", [("class", "note")], text: "No effective windows.") }
        let lanes = t.sortedLanes
        let marks = t.accessMarks
        let left = 110.0, plotW = 840.0, laneH = 14.0, gap = 3.0
        let origin = range?.origin ?? t.bucketStart(t.lo)
        let end = range?.end ?? (t.bucketStart(t.hi) + t.bucketWidthNs)
        let width = t.bucketWidthNs
        // x of a bucket from its start time, so that timelines with other bucket widths line up.
        let scale = plotW / Double(end - origin)
        let bw = Double(width) * scale
        func x(_ i: Int) -> Double { left + Double(t.bucketStart(i) - origin) * scale }
        var nodes: [HTMLNode] = []
        var y = 8.0
        var cpus: [Int32] = []
        for l in lanes where !cpus.contains(l.cpu) { cpus.append(l.cpu) }
        for (cpu, _) in marks where !cpus.contains(cpu) { cpus.append(cpu) }
        cpus.sort()
        for cpu in cpus {
            nodes.append(label(4, y + 11, "cpu \(cpu)", size: 12, cls: "lane-cpu"))
            for l in lanes where l.cpu == cpu {
                let color = scopeColors[l.scope.rawValue] ?? "#888"
                nodes.append(label(left - 6, y + 11, l.scope.rawValue, anchor: "end", size: 10))
                nodes.append(rect(left, y, plotW, laneH, fill: "#f3f3f3"))
                for (i, c) in l.cells.sorted(by: { $0.key < $1.key }) {
                    let share = min(1.0, Double(c.coveredNs) / Double(width))
                    let x = x(i)
                    let from = t.bucketStart(i) - origin
                    let tip = "cpu \(cpu), scope \(l.scope.rawValue): \(c.windows) window piece(s), \(TextReport.duration(c.coveredNs)) exposed in +\(TextReport.duration(from)) .. +\(TextReport.duration(from + width))"
                    nodes.append(rect(x, y, bw, laneH, fill: color, opacity: 0.3 + 0.7 * share, title: tip))
                }
                y += laneH + gap
            }
            if let m = marks.first(where: { $0.cpu == cpu }) {
                nodes.append(label(left - 6, y + 9, "accesses", anchor: "end", size: 10))
                for (i, c) in m.buckets.sorted(by: { $0.key < $1.key }) {
                    let x = x(i) + 0.5 * bw
                    let from = t.bucketStart(i) - origin
                    nodes.append(.el("path", [("d", "M\(f1(x)) \(f1(y + 1))l-4 10h8z"), ("fill", "#d62728"), ("class", "access-mark")],
                                     [.el("title", text: "cpu \(cpu): \(c) unprotected access(es) at +\(TextReport.duration(from))")]))
                }
                y += 12 + gap
            }
            y += 4
        }
        // Axis: six ticks, time relative to the origin.
        let span = end - origin
        nodes.append(line(left, y, left + plotW, y))
        for k in 0...5 {
            let x = left + plotW * Double(k) / 5
            nodes.append(line(x, y, x, y + 4))
            nodes.append(label(x, y + 16, "+" + TextReport.duration(span * UInt64(k) / 5), anchor: k == 0 ? "start" : (k == 5 ? "end" : "middle"), size: 10))
        }
        y += 22
        var caption = "Bucket \(TextReport.duration(width)); shade = share of the bucket covered by effective windows."
        if let f = firstNs { caption += " Time from \(TextReport.seconds(origin)) s (trace starts at \(TextReport.seconds(f)) s)." }
        return .group([svg(width: Int(left + plotW + 10), height: Int(y), label: "timeline of effective exposure windows", nodes),
                       .el("p", [("class", "note")], text: caption)])
    }

    // MARK: histograms

    static let binsPerDecade = 5.0

    /// Log-scale bins: bin k holds durations in [10^(k/5), 10^((k+1)/5)); bin -1 holds 0 ns.
    static func logBins(_ d: DurationDistribution) -> [Int: UInt64] {
        var out: [Int: UInt64] = [:]
        for e in d.entries {
            let k = e.value == 0 ? -1 : Int((log10(Double(e.value)) * binsPerDecade + 1e-9).rounded(.down))
            out[k, default: 0] += e.count
        }
        return out
    }

    static func decadeLabel(_ decade: Int) -> String {
        let units = ["ns", "us", "ms", "s"]
        let u = min(decade / 3, 3)
        var v = 1
        for _ in 0..<(decade - u * 3) { v *= 10 }
        return "\(v) \(units[u])"
    }

    /// One histogram per series (overlaid when several): x log duration, y window count.
    static func histogram(_ series: [(name: String, color: String, dist: DurationDistribution)], title: String, width: Int = 440, height: Int = 180) -> HTMLNode {
        let bins = series.map { logBins($0.dist) }
        let keys = bins.flatMap { $0.keys }
        guard let lo0 = keys.min(), let hi0 = keys.max() else { return .el("p", [("class", "note")], text: "\(title): no windows.") }
        let lo = min(lo0, Int((Double(max(lo0, 0)) / binsPerDecade).rounded(.down) * binsPerDecade))
        let hi = max(hi0, lo + 4)
        let maxCount = bins.flatMap { $0.values }.max() ?? 1
        let overlay = series.count > 1
        let left = 44.0, top = overlay ? 36.0 : 18.0, plotW = Double(width) - left - 10, plotH = Double(height) - top - 30
        let nb = Double(hi - lo + 1)
        let bw = plotW / nb
        var nodes: [HTMLNode] = [label(left, 12, title, size: 12, cls: "chart-title")]
        nodes.append(line(left, top + plotH, left + plotW, top + plotH))
        nodes.append(line(left, top, left, top + plotH))
        nodes.append(label(left - 4, top + 8, String(maxCount), anchor: "end", size: 9))
        nodes.append(label(left - 4, top + plotH, "0", anchor: "end", size: 9))
        if lo < 0 {
            nodes.append(label(left + bw / 2, top + plotH + 15, "0", anchor: "middle", size: 9))
        }
        for k in lo...hi where k >= (lo < 0 ? 1 : 0) && k % Int(binsPerDecade) == 0 {
            let x = left + Double(k - lo) * bw
            nodes.append(line(x, top + plotH, x, top + plotH + 4))
            nodes.append(label(x, top + plotH + 15, decadeLabel(k / Int(binsPerDecade)), anchor: "middle", size: 9))
        }
        for (si, s) in series.enumerated() {
            if overlay {
                var pts: [String] = ["\(f1(left)),\(f1(top + plotH))"]
                for k in lo...hi {
                    let c = bins[si][k] ?? 0
                    let yv = top + plotH - plotH * Double(c) / Double(maxCount)
                    let x0 = left + Double(k - lo) * bw
                    pts.append("\(f1(x0)),\(f1(yv))")
                    pts.append("\(f1(x0 + bw)),\(f1(yv))")
                }
                pts.append("\(f1(left + plotW)),\(f1(top + plotH))")
                nodes.append(.el("polyline", [("points", pts.joined(separator: " ")), ("fill", s.color), ("fill-opacity", "0.12"),
                                              ("stroke", s.color), ("stroke-width", "2")], [.el("title", text: s.name)]))
            } else {
                for k in lo...hi {
                    guard let c = bins[si][k], c > 0 else { continue }
                    let h = plotH * Double(c) / Double(maxCount)
                    let x0 = left + Double(k - lo) * bw
                    let range = k < 0 ? "0 ns" : "\(TextReport.duration(UInt64(pow(10, Double(k) / binsPerDecade).rounded(.up)))) .. \(TextReport.duration(UInt64(pow(10, Double(k + 1) / binsPerDecade).rounded(.up))))"
                    nodes.append(rect(x0 + 1, top + plotH - h, bw - 2, h, fill: s.color, title: "\(s.name): \(c) window(s) in \(range)"))
                }
            }
        }
        if overlay {
            var lx = left
            for s in series {
                nodes.append(rect(lx, 18, 10, 10, fill: s.color))
                nodes.append(label(lx + 14, 27, s.name, size: 10))
                lx += 24 + Double(min(s.name.count, 28)) * 6
            }
        }
        return svg(width: width, height: height, label: title, nodes)
    }

    // MARK: bars

    /// Horizontal bars: one row per name, one bar per series (side by side when several).
    static func bars(_ names: [String], _ values: [[UInt64]], series: [(name: String, color: String)], title: String,
                     format: (UInt64) -> String, width: Int = 900) -> HTMLNode {
        guard !names.isEmpty else { return .el("p", [("class", "note")], text: "\(title): none.") }
        let maxV = max(1, values.flatMap { $0 }.max() ?? 1)
        let labelW = 300.0, valueW = 110.0, barH = 12.0, plotW = Double(width) - labelW - valueW
        let rowH = barH * Double(series.count) + 6
        var nodes: [HTMLNode] = [label(0, 12, title, size: 12, cls: "chart-title")]
        var y = 20.0
        for (i, name) in names.enumerated() {
            let shown = name.count > 46 ? String(name.prefix(45)) + "…" : name
            nodes.append(.el("text", [("x", f1(labelW - 6)), ("y", f1(y + barH - 2)), ("font-size", "11"), ("text-anchor", "end"), ("class", "bar-name")],
                             [.text(shown), .el("title", text: name)]))
            for s in series.indices {
                let v = values[s][i]
                let w = plotW * Double(v) / Double(maxV)
                let yy = y + Double(s) * barH
                nodes.append(rect(labelW, yy, w, barH - 1, fill: series[s].color, title: "\(series[s].name): \(name): \(format(v))"))
                nodes.append(label(labelW + w + 4, yy + barH - 2, format(v), size: 10))
            }
            y += rowH
        }
        if series.count > 1 {
            var lx = labelW
            for s in series {
                nodes.append(rect(lx, y + 2, 10, 10, fill: s.color))
                nodes.append(label(lx + 14, y + 11, s.name, size: 10))
                lx += 24 + Double(min(s.name.count, 28)) * 6
            }
            y += 16
        }
        return svg(width: width, height: Int(y + 4), label: title, nodes)
    }
}
