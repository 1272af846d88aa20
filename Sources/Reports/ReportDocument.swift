import Foundation
import TraceIngest
import EventModel
import Replay
import Analysis

/// A report: `protreplay.report/1` (docs/report-schema.md) as one `Codable` type. `protreplay report`
/// makes one from a replay; `compare`, `merge` and `--baseline` read saved ones back losslessly; text,
/// HTML, CSV, comparisons and merges all render from it.
///
/// The JSON carries the first model's keys at the top level and every model in `models`.
public struct ReportDocument: Sendable {
    public static let schema = "protreplay.report/1"

    public var input: InputSection
    public var trace: TraceSection
    public var profile: ProfileSection
    public var models: [ModelSummary]
    /// Set on merged reports.
    public var merged: MergedSection?
    /// Set when `--pid`/`--comm`/`--cpu`/`--time` narrowed what the report credits.
    public var filter: FilterSection?
    /// `--by-phase`/`--phase`: the phase segments the trace's markers gave.
    public var phases: PhaseSection?

    /// `phases.*`: the marker prefix, the phase selected (`--phase`), and every segment in trace order.
    public struct PhaseSection: Codable, Sendable, Equatable {
        public var marker: String
        public var only: String?
        public var segments: [Segment]
        public struct Segment: Codable, Sendable, Equatable {
            /// Marker text (untrusted input: escaped in text and HTML).
            public var name: String
            public var startNs: UInt64, endNs: UInt64
            /// Lines of the opening and closing markers (0: ended by the next phase or the trace end).
            public var startLine: Int, endLine: Int
            public init(name: String, startNs: UInt64, endNs: UInt64, startLine: Int, endLine: Int) {
                self.name = name; self.startNs = startNs; self.endNs = endNs; self.startLine = startLine; self.endLine = endLine
            }
            enum CodingKeys: String, CodingKey {
                case name, startNs = "start_ns", endNs = "end_ns", startLine = "start_line", endLine = "end_line"
            }
        }
        public init(marker: String, only: String?, segments: [Segment]) { self.marker = marker; self.only = only; self.segments = segments }
    }

    /// The protreplay that wrote the report (`tool.name`, `tool.version`); absent in reports of older versions.
    public var tool: ToolSection?

    public struct ToolSection: Codable, Sendable, Equatable {
        public var name: String
        public var version: String
        /// The commit the binary was built from (`git describe --always --dirty`), when known.
        public var commit: String?
        public init(name: String, version: String, commit: String? = nil) { self.name = name; self.version = version; self.commit = commit }
    }

    /// `filter.*`: what was filtered, how many events matched, and the rule observations were credited by.
    public struct FilterSection: Codable, Sendable, Equatable {
        /// `pid 1234; cpu 0,2-3; time 100.500000-101.000000 s`.
        public var description: String
        /// Events (ring entries, as `trace.events`) whose pid, comm, CPU and time matched.
        public var eventsMatched: Int
        public var rule: String
        public static let ruleText = "every event is replayed; credited: windows whose holder task and CPU match, clipped to the time range; accesses and anomalies whose task, CPU and time match (no anomaly with --comm: anomalies name no task); model counters count the whole trace"

        public init(description: String, eventsMatched: Int) {
            self.description = description; self.eventsMatched = eventsMatched; rule = FilterSection.ruleText
        }
        enum CodingKeys: String, CodingKey { case description, eventsMatched = "events_matched", rule }
    }

    public init(input: InputSection, trace: TraceSection, profile: ProfileSection, models: [ModelSummary], merged: MergedSection? = nil) {
        self.input = input; self.trace = trace; self.profile = profile; self.models = models; self.merged = merged
    }

    public struct InputSection: Codable, Sendable, Equatable {
        public var path: String
        /// `ftrace-text`, `trace.dat`, `perf.data`, `perf-script`, `trace-cmd-report`, or `mixed` (merged).
        public var format: String
        public var compression: String
        public var bytes: Int
        public init(path: String, format: String, compression: String, bytes: Int) {
            self.path = path; self.format = format; self.compression = compression; self.bytes = bytes
        }
    }

    /// What was read (`trace.*`).
    public struct TraceSection: Codable, Sendable {
        public var events = 0, eventsUsed = 0, eventsIgnored = 0, malformedEvents = 0, unmapped = 0, malformed = 0
        public var unmappedByName: [String: Int] = [:]
        public var malformedExamples: [MalformedLine] = []
        public var lostEvents: UInt64 = 0
        public var lostMarkers = 0, lostMarkersWithoutCount = 0, stackTraces = 0, bufferStarts = 0, cpus = 0
        public var firstNs: UInt64 = 0, lastNs: UInt64 = 0, spanNs: UInt64 = 0
        public var timestampsBackwards = 0, cpuOutOfRange = 0
        /// The cap on live replay state in force (absent in merged reports of reports without it).
        public var maxLiveEntries: Int?
        public var stateCapRefusals = 0
        public var stateCapRefusalsByMap: [String: Int] = [:]
        public var stateCapFirst: LiveStateLimit.Hit?
        public var commNamesRefused = 0, symbolsRefused = 0

        public init() {}

        enum CodingKeys: String, CodingKey {
            case events, unmapped, malformed, cpus
            case eventsUsed = "events_used", eventsIgnored = "events_ignored", malformedEvents = "malformed_events"
            case unmappedByName = "unmapped_by_name", malformedExamples = "malformed_examples", lostEvents = "lost_events"
            case lostMarkers = "lost_markers", lostMarkersWithoutCount = "lost_markers_without_count", stackTraces = "stack_traces"
            case bufferStarts = "buffer_starts", firstNs = "first_ns", lastNs = "last_ns", spanNs = "span_ns"
            case timestampsBackwards = "timestamps_backwards", cpuOutOfRange = "cpu_out_of_range", maxLiveEntries = "max_live_entries"
            case stateCapRefusals = "state_cap_refusals", stateCapRefusalsByMap = "state_cap_refusals_by_map"
            case stateCapFirst = "state_cap_first", commNamesRefused = "comm_names_refused", symbolsRefused = "symbols_refused"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(events, forKey: .events); try c.encode(eventsUsed, forKey: .eventsUsed)
            try c.encode(eventsIgnored, forKey: .eventsIgnored); try c.encode(malformedEvents, forKey: .malformedEvents)
            try c.encode(unmapped, forKey: .unmapped); try c.encode(unmappedByName, forKey: .unmappedByName)
            try c.encode(malformed, forKey: .malformed); try c.encode(malformedExamples, forKey: .malformedExamples)
            try c.encode(lostEvents, forKey: .lostEvents); try c.encode(lostMarkers, forKey: .lostMarkers)
            try c.encode(lostMarkersWithoutCount, forKey: .lostMarkersWithoutCount); try c.encode(stackTraces, forKey: .stackTraces)
            try c.encode(bufferStarts, forKey: .bufferStarts); try c.encode(cpus, forKey: .cpus)
            try c.encode(firstNs, forKey: .firstNs); try c.encode(lastNs, forKey: .lastNs); try c.encode(spanNs, forKey: .spanNs)
            try c.encode(timestampsBackwards, forKey: .timestampsBackwards); try c.encode(cpuOutOfRange, forKey: .cpuOutOfRange)
            try c.encodeIfPresent(maxLiveEntries, forKey: .maxLiveEntries)
            try c.encode(stateCapRefusals, forKey: .stateCapRefusals); try c.encode(stateCapRefusalsByMap, forKey: .stateCapRefusalsByMap)
            try c.encode(stateCapFirst, forKey: .stateCapFirst)   // null when there was none
            try c.encode(commNamesRefused, forKey: .commNamesRefused); try c.encode(symbolsRefused, forKey: .symbolsRefused)
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func int(_ k: CodingKeys) throws -> Int { try c.decodeIfPresent(Int.self, forKey: k) ?? 0 }
            func u64(_ k: CodingKeys) throws -> UInt64 { try c.decodeIfPresent(UInt64.self, forKey: k) ?? 0 }
            events = try int(.events); eventsUsed = try int(.eventsUsed); eventsIgnored = try int(.eventsIgnored)
            malformedEvents = try int(.malformedEvents); unmapped = try int(.unmapped); malformed = try int(.malformed)
            unmappedByName = try c.decodeIfPresent([String: Int].self, forKey: .unmappedByName) ?? [:]
            malformedExamples = try c.decodeIfPresent([MalformedLine].self, forKey: .malformedExamples) ?? []
            lostEvents = try u64(.lostEvents); lostMarkers = try int(.lostMarkers); lostMarkersWithoutCount = try int(.lostMarkersWithoutCount)
            stackTraces = try int(.stackTraces); bufferStarts = try int(.bufferStarts); cpus = try int(.cpus)
            firstNs = try u64(.firstNs); lastNs = try u64(.lastNs); spanNs = try u64(.spanNs)
            timestampsBackwards = try int(.timestampsBackwards); cpuOutOfRange = try int(.cpuOutOfRange)
            maxLiveEntries = try c.decodeIfPresent(Int.self, forKey: .maxLiveEntries)
            stateCapRefusals = try int(.stateCapRefusals)
            stateCapRefusalsByMap = try c.decodeIfPresent([String: Int].self, forKey: .stateCapRefusalsByMap) ?? [:]
            stateCapFirst = try c.decodeIfPresent(LiveStateLimit.Hit.self, forKey: .stateCapFirst)
            commNamesRefused = try int(.commNamesRefused); symbolsRefused = try int(.symbolsRefused)
        }

        /// The numbers `compare` puts side by side (`trace.events`, `trace.span_ns`, ...).
        public var metrics: [(key: String, value: Int64)] {
            [("events", events), ("events_used", eventsUsed), ("events_ignored", eventsIgnored), ("unmapped", unmapped),
             ("malformed", malformed), ("lost_events", Int(clamping: lostEvents)), ("stack_traces", stackTraces), ("cpus", cpus),
             ("span_ns", Int(clamping: spanNs)), ("timestamps_backwards", timestampsBackwards)].map { (key: "trace." + $0.0, value: Int64($0.1)) }
        }
    }

    /// The kernel profile in force (`profile.*`).
    public struct ProfileSection: Codable, Sendable, Equatable {
        public var arch: String
        /// `given` (`--arch`) or `inferred` (from the probed functions: `kmap_high`/`__kmap_local_*` say
        /// i386, but exist on every 32-bit HIGHMEM kernel, arm32 included); absent when unknown.
        public var archSource: String?
        /// `struct page *` of pfn 0, as `0x…`.
        public var memMapBase: String?
        public var structPageSize: UInt64?
        /// `profile` (given, or from `@vmemmap_base`) or `calibrated`.
        public var pageLayoutSource: String?
        public var pageOffsetBase: String?
        public var calibration: Calibration?

        public struct Calibration: Codable, Sendable, Equatable {
            public var pairs: Int
            public var mismatches: Int
        }

        public init(arch: String) { self.arch = arch }

        enum CodingKeys: String, CodingKey {
            case arch, calibration
            case archSource = "arch_source"
            case memMapBase = "mem_map_base", structPageSize = "struct_page_size", pageLayoutSource = "page_layout_source"
            case pageOffsetBase = "page_offset_base"
        }
    }

    /// `merged`: how many reports were folded, and their paths.
    public struct MergedSection: Codable, Sendable, Equatable {
        public var reports: Int
        public var inputs: [String]
    }
}

extension LiveStateLimit.Hit: Codable {
    enum CodingKeys: String, CodingKey { case model, map, noun, line, limit, fixed }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model); try c.encode(map, forKey: .map); try c.encode(noun, forKey: .noun)
        try c.encode(line, forKey: .line); try c.encode(limit, forKey: .limit); try c.encode(fixed, forKey: .fixed)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let map = try c.decodeIfPresent(String.self, forKey: .map) ?? ""
        self.init(model: try c.decodeIfPresent(String.self, forKey: .model) ?? "", map: map,
                  noun: try c.decodeIfPresent(String.self, forKey: .noun) ?? String(map.map { $0 == "_" ? " " : $0 }),
                  line: try c.decodeIfPresent(Int.self, forKey: .line) ?? 0, limit: try c.decodeIfPresent(Int.self, forKey: .limit) ?? 0,
                  fixed: try c.decodeIfPresent(Bool.self, forKey: .fixed) ?? false)
    }
}

extension MalformedLine: Codable {
    enum CodingKeys: String, CodingKey { case line, offset, reason, text }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(line, forKey: .line); try c.encode(offset, forKey: .offset)
        try c.encode(reason, forKey: .reason); try c.encode(text, forKey: .text)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(line: try c.decodeIfPresent(Int.self, forKey: .line) ?? 0, offset: try c.decodeIfPresent(Int.self, forKey: .offset) ?? 0,
                  reason: try c.decodeIfPresent(String.self, forKey: .reason) ?? "", text: try c.decodeIfPresent(String.self, forKey: .text) ?? "")
    }
}

// MARK: JSON

extension ReportDocument: Codable {
    enum CodingKeys: String, CodingKey { case schema, input, trace, profile, models, merged, filter, tool, phases }

    public struct DecodeError: Error, CustomStringConvertible {
        public var description: String
    }

    public func encode(to encoder: Encoder) throws {
        // The first model's keys at the top level, then every model in `models`.
        if let first = models.first { try first.encode(to: encoder) }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ReportDocument.schema, forKey: .schema)
        try c.encode(input, forKey: .input)
        try c.encode(trace, forKey: .trace)
        try c.encode(profile, forKey: .profile)
        if !models.isEmpty { try c.encode(models, forKey: .models) }
        try c.encodeIfPresent(merged, forKey: .merged)
        try c.encodeIfPresent(filter, forKey: .filter)
        try c.encodeIfPresent(tool, forKey: .tool)
        try c.encodeIfPresent(phases, forKey: .phases)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard try c.decodeIfPresent(String.self, forKey: .schema) == ReportDocument.schema else {
            throw DecodeError(description: "not a \(ReportDocument.schema) report")
        }
        input = try c.decode(InputSection.self, forKey: .input)
        trace = try c.decodeIfPresent(TraceSection.self, forKey: .trace) ?? TraceSection()
        profile = try c.decodeIfPresent(ProfileSection.self, forKey: .profile) ?? ProfileSection(arch: "unknown")
        merged = try c.decodeIfPresent(MergedSection.self, forKey: .merged)
        filter = try c.decodeIfPresent(FilterSection.self, forKey: .filter)
        tool = try c.decodeIfPresent(ToolSection.self, forKey: .tool)
        phases = try c.decodeIfPresent(PhaseSection.self, forKey: .phases)
        if let ms = try c.decodeIfPresent([ModelSummary].self, forKey: .models) {
            models = ms
        } else {
            let top = try decoder.container(keyedBy: ModelSummary.CodingKeys.self)
            models = top.contains(.model) ? [try ModelSummary(from: decoder)] : []
        }
    }

    /// Sorted keys, exact integers, two-space indentation; the same report always prints the same bytes.
    public var json: String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! e.encode(self), as: UTF8.self) + "\n"
    }

    /// Reads a saved report; `source` names it in errors.
    public init(json: String, source: String) throws {
        do {
            self = try JSONDecoder().decode(ReportDocument.self, from: Data(json.utf8))
        } catch let e as DecodeError {
            throw DecodeError(description: "\(source): \(e.description)")
        } catch let e as SummaryDecodingError {
            throw DecodeError(description: "\(source): \(e.description)")
        } catch let DecodingError.dataCorrupted(ctx) {
            throw DecodeError(description: "\(source): not JSON: \(ctx.underlyingError.map { "\($0)" } ?? ctx.debugDescription)")
        } catch {
            throw DecodeError(description: "\(source): not a \(ReportDocument.schema) report: \(error)")
        }
    }

    /// The document as `JSONSerialization` objects, for reading values by key path (`--fail-if`).
    public var jsonObject: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
    }
}

// MARK: From a replay

extension ReportDocument {
    /// The report of one replay: what was read, the profile in force, one summary per model.
    public init(input: InputSection, ingest i: IngestStats, replay: ReplayEngine.Stats, profile p: KernelProfile,
                calibration: PageCalibration, unmappedByName: [(String, Int)], models: [ModelSummary],
                stringsRefused: (comms: Int, symbols: Int), archGiven: Bool = false) {
        var t = TraceSection()
        let first = replay.firstTimestamp ?? 0
        let last = replay.firstTimestamp == nil ? 0 : replay.lastTimestamp
        t.events = i.events
        t.eventsUsed = replay.eventsUsed
        t.eventsIgnored = i.events - replay.eventsUsed - i.unmapped - i.malformedEvents
        t.malformedEvents = i.malformedEvents
        t.unmapped = i.unmapped
        for (n, c) in unmappedByName { t.unmappedByName[n] = c }
        t.malformed = i.malformed
        t.malformedExamples = i.malformedExamples
        t.lostEvents = i.lostEvents
        t.lostMarkers = i.lostMarkers
        t.lostMarkersWithoutCount = i.lostMarkersWithoutCount
        t.stackTraces = i.stackTraces
        t.bufferStarts = i.bufferStarts
        t.cpus = replay.cpusSeen
        t.firstNs = first
        t.lastNs = last
        t.spanNs = last >= first ? last - first : 0
        t.timestampsBackwards = replay.timestampsBackwards
        t.cpuOutOfRange = replay.cpuOutOfRange
        let live = replay.liveState
        t.maxLiveEntries = live.cap
        t.stateCapRefusals = live.refusals
        t.stateCapRefusalsByMap = live.refusalsByMap
        t.stateCapFirst = live.first
        t.commNamesRefused = stringsRefused.comms
        t.symbolsRefused = stringsRefused.symbols
        var prof = ProfileSection(arch: p.arch.rawValue)
        if p.arch != .unknown { prof.archSource = archGiven ? "given" : "inferred" }
        // The `struct page` layout in force: fixed or learned from `@vmemmap_base`, else calibrated.
        if let b = p.memMapBase, let s = p.structPageSize {
            prof.memMapBase = hexString(b); prof.structPageSize = s; prof.pageLayoutSource = "profile"
        } else if let b = calibration.base, let s = calibration.size {
            prof.memMapBase = hexString(b); prof.structPageSize = s; prof.pageLayoutSource = "calibrated"
        }
        if let b = p.pageOffsetBase { prof.pageOffsetBase = hexString(b) }
        prof.calibration = .init(pairs: calibration.pairs, mismatches: calibration.mismatches)
        self.init(input: input, trace: t, profile: prof, models: models)
    }
}

func hexString(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
