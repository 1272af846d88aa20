import TraceIngest
import EventModel
import Replay
import Analysis

/// The human report, dense and aligned like `perf report --stdio`: what was read, the model, exposure,
/// unprotected accesses, anomalies.
public enum TextReport {
    public static func render(_ r: ReportDocument) -> String {
        if r.merged != nil { return renderMerged(r) }
        var out = ""
        func line(_ s: String = "") { out += s + "\n" }
        let t = r.trace
        line("# protreplay report")
        line("# input:    \(r.input.path) (\(r.input.format)\(r.input.compression == "none" ? "" : ", " + r.input.compression), \(bytes(r.input.bytes)))")
        line("# events:   \(t.events)  used \(t.eventsUsed)  ignored \(t.eventsIgnored)  unmapped \(t.unmapped)  malformed \(t.malformed)  lost \(t.lostEvents)\(t.lostMarkersWithoutCount > 0 ? "+?" : "")  stack traces \(t.stackTraces)")
        line("# cpus:     \(t.cpus)  span \(duration(t.spanNs))  (\(seconds(t.firstNs)) .. \(seconds(t.lastNs)))")
        var prof = "# profile:  \(r.profile.arch)"
        if r.profile.archSource == "inferred" {
            prof += r.profile.arch == "i386" ? " (inferred from the kmap probes, which every 32-bit HIGHMEM kernel has: i386 or arm32)"
                                             : " (inferred from the trace)"
        }
        if let base = r.profile.memMapBase, let size = r.profile.structPageSize, let source = r.profile.pageLayoutSource {
            prof += ", struct page \(size) B from \(base) (\(source)"
            if source == "calibrated", let c = r.profile.calibration { prof += " from \(c.pairs) pairs, \(c.mismatches) mismatches" }
            prof += ")"
        }
        line(prof)
        if let f = r.filter {
            line("# filter:   \(clean(f.description)): \(f.eventsMatched) of \(t.events) events matched")
            line("#           \(f.rule)")
        }
        if let p = r.phases {
            let names = p.segments.reduce(into: [String]()) { if !$0.contains($1.name) { $0.append($1.name) } }
            line("# phases:   \(p.segments.count) segments of \(names.count) phases from markers '\(clean(p.marker))NAME' .. '\(clean(p.marker))NAME done'" + (p.only.map { "; only phase \(clean($0)) credited" } ?? ""))
        }
        if t.timestampsBackwards > 0 { line("# warning:  \(t.timestampsBackwards) events with a timestamp lower than the one before (kept in file order)") }
        if let warning = stateCapWarning(t) {
            line(warning)
            if let f = t.stateCapFirst {
                line("#           first at line \(f.line): \(f.limit) live \(f.noun) in \(f.model) (\(f.fixed ? "a fixed limit" : "the cap"))")
            }
        }
        if t.commNamesRefused > 0 || t.symbolsRefused > 0 {
            line("# warning:  string table full: \(t.commNamesRefused) new comm names and \(t.symbolsRefused) new symbols shown as <overflow>")
        }
        for m in t.malformedExamples { line("# malformed: line \(m.line) (byte \(m.offset)): \(m.reason): \(m.text)") }
        for m in r.models { renderModel(m, spanNs: t.spanNs, into: &out) }
        if !t.unmappedByName.isEmpty {
            line()
            line("# Unmapped events (no probe-map rule; see protreplay events)")
            for (n, c) in t.unmappedByName.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }).prefix(12) {
                line("  " + pad(n, 40) + lpad(String(c), 10))
            }
        }
        return out
    }

    /// The header line for state the live-state cap refused, nil when none was.
    static func stateCapWarning(_ t: ReportDocument.TraceSection) -> String? {
        guard t.stateCapRefusals > 0 else { return nil }
        let maps = t.stateCapRefusalsByMap.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return "# warning:  \(t.stateCapRefusals) new state entries not modelled (--max-live-entries \(t.maxLiveEntries ?? 0)): \(maps)"
    }

    /// A merged report (`protreplay merge --format text`): its header, then each model.
    static func renderMerged(_ r: ReportDocument) -> String {
        var out = ""
        let t = r.trace
        out += "# protreplay report\n"
        out += "# input:    \(clean(r.input.path)) (\(r.input.format), \(r.input.bytes) bytes)\n"
        if let m = r.merged { out += "# merged:   \(m.reports) reports\n" }
        if let f = r.filter { out += "# filter:   \(clean(f.description)): \(f.eventsMatched) of \(t.events) events matched\n" }
        out += "# events:   \(t.events)  used \(t.eventsUsed)  ignored \(t.eventsIgnored)  unmapped \(t.unmapped)  malformed \(t.malformed)  lost \(t.lostEvents)  stack traces \(t.stackTraces)\n"
        out += "# cpus:     \(t.cpus)  span \(duration(t.spanNs))\n"
        if let warning = stateCapWarning(t) { out += warning + "\n" }
        for m in r.models { renderModel(m, spanNs: t.spanNs, into: &out) }
        return out
    }

    static func renderModel(_ m: ModelSummary, spanNs: UInt64, into out: inout String) {
        func line(_ s: String = "") { out += s + "\n" }
        line()
        let opts = m.options.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        line("# model:    \(m.model)\(m.coverage.map { " (\($0.basis.words))" } ?? "")\(opts.isEmpty ? "" : "  " + opts)")
        if let c = m.coverage { line("# basis:    \(c.basis.words): \(c.basisReason)") }
        line()
        line(pad("# Exposure windows", 34) + lpad("windows", 9) + lpad("sum", 14) + lpad("union", 12) + lpad("max", 14) + lpad("p50", 14) + lpad("p99", 14) + lpad("censored", 10) + lpad("uncertain", 10))
        var layers = [("granted", m.granted), ("effective", m.effective)]
        if m.intended.all.windows > 0 { layers.append(("intended", m.intended)) }
        for (name, layer) in layers {
            line(row("  " + name, layer.all))
            for scope in Scope.allCases {
                if let s = layer.byScope[scope.rawValue], s.windows > 0 { line(row("    scope " + scope.rawValue, s)) }
            }
            for api in layer.byAPI.keys.sorted() { line(row("    api " + api, layer.byAPI[api]!)) }
        }
        line("  sum: window durations added up (page-time; can exceed the span). union: time with at least one window open (span \(duration(spanNs))).")
        if layers.contains(where: { $0.1.all.isLowerBound }) {
            line("  ≥: a lower bound: censored windows (cut off at the start or end of the trace) are in it.")
        }
        for (name, layer) in layers where layer.all.censored > 0 || layer.all.uncertain > 0 {
            var parts = ["\(duration(layer.all.closedNs)) in closed windows"]
            if layer.all.censored > 0 { parts.append("≥ \(duration(layer.all.censoredNs)) in \(layer.all.censored) censored") }
            if layer.all.uncertain > 0 { parts.append("\(duration(layer.all.uncertainNs)) in \(layer.all.uncertain) uncertain (lost events, or an end the capture has no probe for)") }
            line("  \(name): " + parts.joined(separator: ", "))
        }
        let ov = m.overexposureNs, closed = m.overexposureClosedNs, cut = m.overexposureCensoredNs
        if m.granted.all.censored == 0 && m.effective.all.censored == 0 {
            line("  overexposure (effective - granted): \(signed(ov))")
        } else {
            line("  overexposure (effective - granted): \(signed(closed)) from closed windows; \(signed(cut)) more from censored windows (cut off by the trace, not a measurement)")
        }
        if !m.effective.byCloseCause.isEmpty {
            line("  effective windows closed by: " + m.effective.byCloseCause.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if let c = m.coverage { coverage(c, into: &out) }
        phases(m.byPhase, into: &out)
        attributions("# Top call sites (granted)", m.granted.topSites, of: m.granted.all.totalNs, into: &out)
        attributions("# Top tasks (granted)", m.granted.topTasks, of: m.granted.all.totalNs, into: &out)
        attributions("# Top call sites (effective)", m.effective.topSites, of: m.effective.all.totalNs, into: &out)
        attributions("# Top tasks (effective)", m.effective.topTasks, of: m.effective.all.totalNs, into: &out)
        line()
        line("# Unprotected accesses: \(m.accesses.total)\(m.accesses.uncertain > 0 ? " (\(m.accesses.uncertain) uncertain)" : "")")
        for c in m.accessClasses { line("  " + pad(c, 30) + lpad(String(m.accesses.byClass[c] ?? 0), 10)) }
        if m.accesses.total > 0 {
            line("  by outcome: " + m.accesses.byOutcome.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        line()
        line("# Anomalies: \(m.anomalies.total)")
        for k in m.anomalyKinds where (m.anomalies.byKind[k] ?? 0) > 0 { line("  " + pad(k, 30) + lpad(String(m.anomalies.byKind[k]!), 10)) }
        for e in m.anomalies.examples.prefix(5) { line("    line \(e.line) [\(String(format3(e.cpu)))] \(seconds(e.timestampNs)): \(e.kind): \(e.detail)") }
        if !m.counters.isEmpty {
            line()
            line("# Counters: " + m.counters.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
    }

    /// `--by-phase`: one row per phase, with its share of the layer's summed window time.
    static func phases(_ ps: [PhaseTotals], into out: inout String) {
        guard !ps.isEmpty else { return }
        let gAll = ps.reduce(0) { $0 + $1.grantedNs }, eAll = ps.reduce(0) { $0 + $1.effectiveNs }
        out += "\n" + pad("# Phases", 26) + lpad("segments", 9) + lpad("span", 13) + lpad("granted", 9) + lpad("sum", 13) + lpad("share", 8)
            + lpad("effective", 10) + lpad("sum", 13) + lpad("share", 8) + lpad("accesses", 10) + "\n"
        for p in ps {
            out += "  " + pad(p.name, 24) + lpad(String(p.segments), 9) + lpad(duration(p.spanNs), 13) + lpad(String(p.grantedWindows), 9)
                + lpad(duration(p.grantedNs), 13) + lpad(percent(p.grantedNs, of: gAll), 8) + lpad(String(p.effectiveWindows), 10)
                + lpad(duration(p.effectiveNs), 13) + lpad(percent(p.effectiveNs, of: eAll), 8) + lpad(String(p.accesses), 10) + "\n"
        }
        out += "  a window is counted in every phase it overlaps, with the part inside it; share: of the time inside phases\n"
    }

    static func signed(_ v: Int64) -> String { (v < 0 ? "-" : "+") + duration(UInt64(v.magnitude)) }

    /// What the trace lets the model see: each need it has (with event counts), each it lacks and what
    /// that leaves unobservable.
    static func coverage(_ c: ModelCoverage, into out: inout String) {
        out += "\n# Coverage: \(c.needs.count - c.missing.count) of \(c.needs.count) needed events in the trace\n"
        for n in c.needs where n.present {
            let seen = n.seen.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            out += "  have     " + clean(seen) + "\n"
        }
        for n in c.missing {
            out += "  MISSING  " + n.probes.joined(separator: " | ") + (n.essential ? "  (essential)" : "") + "\n"
            out += "           -> " + n.withoutIt + "\n"
        }
    }

    /// A top table with perf's Overhead column first: each row's share of the layer's summed window time.
    static func attributions(_ title: String, _ a: [Attribution], of total: UInt64, into out: inout String) {
        guard !a.isEmpty else { return }
        out += "\n" + pad(title, 46) + lpad("share", 8) + lpad("windows", 9) + lpad("total", 12) + "\n"
        for x in a {
            out += "  " + pad(x.name, 44) + lpad(percent(x.totalNs, of: total), 8) + lpad(String(x.windows), 9) + lpad(duration(x.totalNs), 12) + "\n"
        }
    }

    /// `12.34%` of `total` (integer arithmetic; `-` when the total is 0).
    public static func percent(_ part: UInt64, of total: UInt64) -> String {
        guard total > 0 else { return "-" }
        let hundredths = part <= UInt64.max / 10_000 ? part * 10_000 / total : UInt64((Double(part) / Double(total) * 10_000).rounded(.down))
        let f = String(hundredths % 100)
        return "\(hundredths / 100).\(f.count == 1 ? "0" + f : f)%"
    }

    static func row(_ label: String, _ s: WindowStats) -> String {
        func b(_ ns: UInt64) -> String { (s.isLowerBound ? "≥ " : "") + duration(ns) }
        let union = s.unionNs.map { (s.unionExact ? "" : "≥ ") + duration($0) } ?? "-"
        return pad(label, 34) + lpad(String(s.windows), 9) + lpad(b(s.totalNs), 14) + lpad(union, 12) + lpad(b(s.maxNs), 14) +
            lpad(b(s.p50Ns), 14) + lpad(b(s.p99Ns), 14) + lpad(String(s.censored), 10) + lpad(String(s.uncertain), 10)
    }

    static func format3(_ cpu: Int32) -> String {
        let s = String(cpu)
        return String(repeating: "0", count: max(0, 3 - s.count)) + s
    }

    /// Control characters from the trace are shown as `?` so a comm name cannot move the cursor.
    static func clean(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
    }

    static func pad(_ s: String, _ w: Int) -> String {
        let c = clean(s)
        return c.count >= w ? c + " " : c + String(repeating: " ", count: w - c.count)
    }

    static func lpad(_ s: String, _ w: Int) -> String {
        s.count >= w ? " " + s : String(repeating: " ", count: w - s.count) + s
    }

    /// 1234 -> "1.234 us"; integer arithmetic only.
    public static func duration(_ ns: UInt64) -> String {
        func fixed(_ v: UInt64, _ unit: UInt64, _ name: String) -> String {
            let whole = v / unit
            let frac = (v % unit) * 1000 / unit
            let f = String(frac)
            return "\(whole).\(String(repeating: "0", count: 3 - f.count))\(f) \(name)"
        }
        if ns < 1_000 { return "\(ns) ns" }
        if ns < 1_000_000 { return fixed(ns, 1_000, "us") }
        if ns < 1_000_000_000 { return fixed(ns, 1_000_000, "ms") }
        return fixed(ns, 1_000_000_000, "s")
    }

    static func seconds(_ ns: UInt64) -> String {
        let f = String(ns % 1_000_000_000 / 1_000)
        return "\(ns / 1_000_000_000).\(String(repeating: "0", count: 6 - f.count))\(f)"
    }

    static func bytes(_ n: Int) -> String {
        if n < 1 << 20 { return "\(n / 1024) KiB" }
        return "\(n >> 20).\((n % (1 << 20)) * 10 / (1 << 20)) MiB"
    }
}
