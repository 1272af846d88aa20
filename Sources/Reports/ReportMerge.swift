import EventModel
import Analysis

extension ReportDocument {
    /// Folds several reports into one (`protreplay merge`). Models merge when name and options agree;
    /// others are kept side by side. The `trace` numbers add up (`first_ns`/`last_ns` take the earliest
    /// and latest, `span_ns` the sum of spans, `cpus` the largest).
    public static func merge(_ reports: [ReportDocument], paths: [String]) -> ReportDocument {
        var models: [ModelSummary] = []
        for r in reports {
            for m in r.models {
                if let i = models.firstIndex(where: { $0.sameConfiguration(as: m) }) { models[i].merge(m) } else {
                    var c = m
                    c.timeline = nil
                    models.append(c)
                }
            }
        }
        var t = TraceSection()
        for r in reports.map(\.trace) {
            t.events &+= r.events; t.eventsUsed &+= r.eventsUsed; t.eventsIgnored &+= r.eventsIgnored
            t.malformedEvents &+= r.malformedEvents; t.unmapped &+= r.unmapped; t.malformed &+= r.malformed
            t.lostEvents = IngestStats.saturatingSum(t.lostEvents, r.lostEvents); t.lostMarkers &+= r.lostMarkers; t.lostMarkersWithoutCount &+= r.lostMarkersWithoutCount
            t.stackTraces &+= r.stackTraces; t.bufferStarts &+= r.bufferStarts; t.spanNs &+= r.spanNs
            t.timestampsBackwards &+= r.timestampsBackwards; t.cpuOutOfRange &+= r.cpuOutOfRange
            t.stateCapRefusals &+= r.stateCapRefusals; t.commNamesRefused &+= r.commNamesRefused; t.symbolsRefused &+= r.symbolsRefused
            t.cpus = max(t.cpus, r.cpus)
            for (k, v) in r.stateCapRefusalsByMap { t.stateCapRefusalsByMap[k, default: 0] &+= v }
            for (k, v) in r.unmappedByName { t.unmappedByName[k, default: 0] &+= v }
            for e in r.malformedExamples where t.malformedExamples.count < 5 { t.malformedExamples.append(e) }
            if t.stateCapFirst == nil { t.stateCapFirst = r.stateCapFirst }
        }
        t.firstNs = reports.map(\.trace.firstNs).min() ?? 0
        t.lastNs = reports.map(\.trace.lastNs).max() ?? 0
        t.maxLiveEntries = reports.compactMap(\.trace.maxLiveEntries).min()
        let formats = Set(reports.map(\.input.format))
        let input = InputSection(path: paths.count == 1 ? paths[0] : "merged:\(paths.count)",
                                 format: formats.count == 1 ? formats.first! : "mixed", compression: "mixed",
                                 bytes: reports.reduce(0) { $0 &+ $1.input.bytes })
        let profiles = reports.map(\.profile)
        let profile = profiles.allSatisfy({ $0 == profiles.first }) ? (profiles.first ?? ProfileSection(arch: "unknown")) : ProfileSection(arch: "mixed")
        var inputs: [String] = []
        for (r, p) in zip(reports, paths) { inputs += r.merged?.inputs ?? [p] }
        var doc = ReportDocument(input: input, trace: t, profile: profile, models: models,
                                 merged: MergedSection(reports: inputs.count, inputs: inputs))
        // A filter carries over only when every report had the same one (else the merge says it is mixed).
        let filters = reports.map(\.filter)
        if let first = filters.first, let f = first {
            let same = filters.allSatisfy { $0?.description == f.description }
            doc.filter = .init(description: same ? f.description : "mixed: the reports were filtered differently",
                               eventsMatched: filters.reduce(0) { $0 &+ ($1?.eventsMatched ?? 0) })
        } else if filters.contains(where: { $0 != nil }) {
            doc.filter = .init(description: "mixed: some reports were filtered", eventsMatched: filters.reduce(0) { $0 &+ ($1?.eventsMatched ?? 0) })
        }
        return doc
    }
}
