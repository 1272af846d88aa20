import TraceIngest
import EventModel
import Replay
import Analysis

/// The machine contract: `protreplay.report/1`, documented in `docs/report-schema.md`.
public enum JSONReport {
    public static let schema = "protreplay.report/1"

    public static func render(_ r: TraceReport) -> String { document(r).rendered() }

    public static func document(_ r: TraceReport) -> JSONValue { SavedReport(r).document }

    static func input(_ r: TraceReport) -> JSONValue {
        .object([
            "path": .string(r.input.path), "format": .string(r.input.format),
            "compression": .string(r.input.compression), "bytes": .int(r.input.bytes),
        ])
    }

    static func trace(_ r: TraceReport) -> JSONValue {
        let i = r.ingest
        var unmapped: [String: JSONValue] = [:]
        for (n, c) in r.unmappedByName { unmapped[n] = .int(c) }
        let first = r.replay.firstTimestamp ?? 0
        let last = r.replay.firstTimestamp == nil ? 0 : r.replay.lastTimestamp
        let live = r.replay.liveState
        return .object([
            "events": .int(i.events),
            "events_used": .int(r.replay.eventsUsed),
            "events_ignored": .int(r.eventsIgnored),
            "malformed_events": .int(i.malformedEvents),
            "unmapped": .int(i.unmapped),
            "unmapped_by_name": .object(unmapped),
            "malformed": .int(i.malformed),
            "malformed_examples": .array(i.malformedExamples.map {
                .object(["line": .int($0.line), "offset": .int($0.offset), "reason": .string($0.reason), "text": .string($0.text)])
            }),
            "lost_events": .uint(i.lostEvents),
            "lost_markers": .int(i.lostMarkers),
            "lost_markers_without_count": .int(i.lostMarkersWithoutCount),
            "stack_traces": .int(i.stackTraces),
            "buffer_starts": .int(i.bufferStarts),
            "cpus": .int(r.replay.cpusSeen),
            "first_ns": .uint(first),
            "last_ns": .uint(last),
            "span_ns": .uint(last >= first ? last - first : 0),
            "timestamps_backwards": .int(r.replay.timestampsBackwards),
            "cpu_out_of_range": .int(r.replay.cpuOutOfRange),
            "max_live_entries": .int(live.cap),
            "state_cap_refusals": .int(live.refusals),
            "state_cap_refusals_by_map": .object(live.refusalsByMap.mapValues { .int($0) }),
            "state_cap_first": live.first.map(stateCapHit) ?? .null,
            "comm_names_refused": .int(r.stringsRefused.comms),
            "symbols_refused": .int(r.stringsRefused.symbols),
        ])
    }

    static func stateCapHit(_ h: LiveStateLimit.Hit) -> JSONValue {
        .object(["model": .string(h.model), "map": .string(h.map), "line": .int(h.line), "limit": .int(h.limit), "fixed": .bool(h.fixed)])
    }

    static func profile(_ r: TraceReport) -> JSONValue {
        var p: [String: JSONValue] = ["arch": .string(r.profile.arch.rawValue)]
        if let layout = r.pageLayout {
            p["mem_map_base"] = .string(hexString(layout.base))
            p["struct_page_size"] = .uint(layout.size)
            p["page_layout_source"] = .string(layout.source)
        }
        if let b = r.profile.pageOffsetBase { p["page_offset_base"] = .string(hexString(b)) }
        p["calibration"] = .object(["pairs": .int(r.calibration.pairs), "mismatches": .int(r.calibration.mismatches)])
        return .object(p)
    }

    public static func model(_ m: ModelSummary) -> [String: JSONValue] {
        var byClass: [String: JSONValue] = [:]
        for c in m.accessClasses { byClass[c] = .int(0) }
        for (c, n) in m.accesses.byClass { byClass[c] = .int(n) }
        var byOutcome: [String: JSONValue] = [:]
        for o in AccessRecord.Outcome.allCases { byOutcome[o.rawValue] = .int(0) }
        for (o, n) in m.accesses.byOutcome { byOutcome[o] = .int(n) }
        var byKind: [String: JSONValue] = [:]
        for k in m.anomalyKinds { byKind[k] = .int(0) }
        for (k, n) in m.anomalies.byKind { byKind[k] = .int(n) }
        var counters: [String: JSONValue] = [:]
        for (k, v) in m.counters { counters[k] = .int(v) }
        var options: [String: JSONValue] = [:]
        for (k, v) in m.options { options[k] = .string(v) }
        var header: [String: JSONValue] = ["name": .string(m.model), "options": .object(options)]
        if let c = m.coverage {
            header["basis"] = .string(c.basis.rawValue)
            header["basis_reason"] = .string(c.basisReason)
        }
        var out: [String: JSONValue] = [
            "model": .object(header),
            "exposure": .object([
                "granted": layer(m.granted),
                "effective": layer(m.effective),
                "intended": layer(m.intended),
                "overexposure_ns": .int(m.overexposureNs),
                "overexposure_closed_ns": .int(m.overexposureClosedNs),
                "overexposure_censored_ns": .int(m.overexposureCensoredNs),
            ]),
            "unprotected_accesses": .object([
                "total": .int(m.accesses.total),
                "uncertain": .int(m.accesses.uncertain),
                "by_class": .object(byClass),
                "by_outcome": .object(byOutcome),
                "by_context": .object(m.accesses.byContext.mapValues { .int($0) }),
                "top_sites": attributions(m.accesses.topSites, withTime: false),
            ]),
            "anomalies": .object([
                "total": .int(m.anomalies.total),
                "by_kind": .object(byKind),
                "examples": .array(m.anomalies.examples.map {
                    .object(["line": .int($0.line), "ts_ns": .uint($0.timestampNs), "cpu": .int(Int($0.cpu)),
                             "pid": .int(Int($0.pid)), "kind": .string($0.kind), "detail": .string($0.detail)])
                }),
            ]),
            "counters": .object(counters),
        ]
        if let c = m.coverage { out["coverage"] = coverage(c) }
        return out
    }

    /// `models[i].coverage`: every event the model needs, what the trace had of it, what is missing.
    static func coverage(_ c: ModelCoverage) -> JSONValue {
        .object([
            "needs": .array(c.needs.map { n in
                .object([
                    "probes": .array(n.probes.map { .string($0) }),
                    "seen": .object(n.seen.mapValues { .int($0) }),
                    "present": .bool(n.present),
                    "essential": .bool(n.essential),
                    "gives": .string(n.gives),
                    "without_it": .string(n.withoutIt),
                ])
            }),
            "missing": .array(c.missing.map { .string($0.probes.joined(separator: " | ")) }),
            "unobservable": .array(c.missing.map { .string($0.withoutIt) }),
        ])
    }

    static func stats(_ s: WindowStats) -> [String: JSONValue] {
        var o: [String: JSONValue] = [
            "windows": .int(s.windows), "total_ns": .uint(s.totalNs), "max_ns": .uint(s.maxNs),
            "p50_ns": .uint(s.p50Ns), "p99_ns": .uint(s.p99Ns), "censored": .int(s.censored),
            "uncertain": .int(s.uncertain), "percentiles_exact": .bool(s.durations.isExact),
            "censored_ns": .uint(s.censoredNs), "closed_ns": .uint(s.closedNs), "uncertain_ns": .uint(s.uncertainNs),
            "lower_bound": .bool(s.isLowerBound),
            "distribution": distribution(s.durations),
        ]
        if let u = s.unionNs {
            o["union_ns"] = .uint(u)
            o["union_exact"] = .bool(s.unionExact)
        }
        return o
    }

    /// Lossless form of a duration distribution (`docs/report-schema.md`, "Mergeable reports").
    static func distribution(_ d: DurationDistribution) -> JSONValue {
        let e = d.entries
        return .object([
            "encoding": .string(d.isExact ? "exact" : "hdr3"),
            "values": .array(e.map { .uint($0.value) }),
            "counts": .array(e.map { .uint($0.count) }),
        ])
    }

    static func layer(_ l: LayerSummary) -> JSONValue {
        var o = stats(l.all)
        var scopes: [String: JSONValue] = [:]
        for s in Scope.allCases { scopes[s.rawValue] = .object(stats(l.byScope[s.rawValue] ?? WindowStats())) }
        o["by_scope"] = .object(scopes)
        o["by_api"] = .object(l.byAPI.mapValues { .object(stats($0)) })
        o["by_close_cause"] = .object(l.byCloseCause.mapValues { .int($0) })
        o["top_sites"] = attributions(l.topSites, withTime: true)
        o["top_tasks"] = attributions(l.topTasks, withTime: true)
        return .object(o)
    }

    static func attributions(_ a: [Attribution], withTime: Bool) -> JSONValue {
        .array(a.map {
            var o: [String: JSONValue] = ["name": .string($0.name), "count": .int($0.windows)]
            if withTime { o["total_ns"] = .uint($0.totalNs) }
            return .object(o)
        })
    }
}

func hexString(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
