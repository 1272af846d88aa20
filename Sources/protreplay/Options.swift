import ArgumentParser
import TraceIngest
import Replay
import EventModel
import ProtReplayKit

/// How to read the trace and what to assume about its kernel (the command line's `TraceSettings`).
struct TraceOptions: ParsableArguments {
    @Option(name: .long, help: "Probe-map JSON that adds to or overrides the built-in rules (docs/probe-map.md).")
    var probeMap: String?

    @Option(name: .long, help: ArgumentHelp("Kernel symbols (/proc/kallsyms of the traced kernel) to name the bare addresses trace-cmd report prints without symbols.", valueName: "file"))
    var kallsyms: String?

    @Option(name: .long, help: "Architecture of the traced kernel: x86_64, i386, s390x (default: inferred from the trace).")
    var arch: String?

    @Option(name: .long, help: "struct page * of pfn 0 (vmemmap_base on x86_64, mem_map on i386), hex. Default: from the trace.")
    var memMapBase: String?

    @Option(name: .long, help: "sizeof(struct page) in bytes. Default: from the trace (64 on x86_64).")
    var structPageSize: UInt64?

    @Option(name: .long, help: "Direct-map base (page_offset_base on x86_64), hex.")
    var pageOffsetBase: String?

    @Option(name: .long, help: ArgumentHelp(
        "Read the input as this format instead of detecting it from content: trace.dat, perf.data, ftrace-text, trace-cmd-report, perf-script.",
        valueName: "format"))
    var formatIn: String?

    @Option(name: .long, help: ArgumentHelp(
        "How trace.dat ring-buffer records are read: direct (decoded by protreplay from the mapped file; default) or libtracecmd (libtracecmd's own iteration, the reference).",
        valueName: "reader"))
    var reader: String = TraceDatReaderKind.direct.rawValue

    @Option(name: .long, help: ArgumentHelp(
        "Most entries each map of live replay state may hold (tasks, frames, pkmap slots, calls in flight, ...; docs/reliability.md). At the cap new keys are counted in state_cap_refusals and not modelled, with one warning on stderr.",
        valueName: "n"))
    var maxLiveEntries: Int = LiveStateLimit.defaultCap

    @Option(name: .long, help: ArgumentHelp("Credit only windows held by, and accesses and anomalies of, these task ids: 1234,2000-2010.", valueName: "pids"))
    var pid: String?

    @Option(name: .long, help: ArgumentHelp("Credit only windows held by, and accesses of, tasks with these names (exact, comma-separated).", valueName: "names"))
    var comm: String?

    @Option(name: .long, help: ArgumentHelp("Credit only windows, accesses and anomalies on these CPUs: 0,2-3.", valueName: "cpus"))
    var cpu: String?

    @Option(name: .long, help: ArgumentHelp(
        "Trace time range in seconds as trace-cmd report prints them, START,END (either may be empty). Windows are clipped to it; accesses and anomalies inside it are credited. Every event is still replayed; the report header says what was filtered and how many events matched.",
        valueName: "start,end"))
    var time: String?

    @Flag(name: .customLong("by-phase"), help: "Split the report by workload phase: trace_marker lines 'wl phase NAME' .. 'wl phase NAME done' (a table of windows, time and accesses per phase).")
    var byPhase = false

    @Option(name: .long, help: ArgumentHelp("Credit only what falls inside this phase's marker segments (windows clipped to each).", valueName: "name"))
    var phase: String?

    @Option(name: .customLong("phase-marker"), help: ArgumentHelp("Marker text that starts a phase name (default: 'wl phase ').", valueName: "prefix"))
    var phaseMarker: String?

    func validate() throws {
        if let p = phaseMarker, p.isEmpty { throw ValidationError("--phase-marker must not be empty") }
        if let p = phase, p.isEmpty { throw ValidationError("--phase must name a phase") }
        guard maxLiveEntries >= 1 else { throw ValidationError("--max-live-entries must be at least 1") }
        _ = try filter()
    }

    /// `--pid`/`--comm`/`--cpu`/`--time` (nil: none given).
    func filter() throws -> EventFilter? {
        do {
            let f = try EventFilter(pid: pid, comm: comm, cpu: cpu, time: time)
            return f.isEmpty ? nil : f
        } catch let e as EventFilter.Invalid { throw ValidationError(e.description) }
    }

    /// The settings these options give.
    func settings() throws -> TraceSettings {
        var s = TraceSettings()
        if let f = formatIn {
            guard let format = TraceFormat(optionName: f) else { throw ValidationError("--format-in must be one of \(TraceFormat.optionNames)") }
            s.inputFormat = format
        }
        s.probeMap = probeMap
        s.kallsyms = kallsyms
        s.arch = arch
        s.memMapBase = memMapBase
        s.structPageSize = structPageSize
        s.pageOffsetBase = pageOffsetBase
        s.maxLiveEntries = maxLiveEntries
        s.filter = try filter()
        s.byPhase = byPhase
        s.onlyPhase = phase
        if let p = phaseMarker { s.phaseMarker = p }
        guard let kind = TraceDatReaderKind(rawValue: reader) else {
            throw ValidationError("--reader must be one of " + TraceDatReaderKind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        s.traceDatReader = kind
        return s
    }
}

/// `--format` of `report`, `compare` and `merge`.
enum ReportFormat: String, CaseIterable, ExpressibleByArgument {
    case text, json, html
    /// A Perfetto trace of every window, access and anomaly (`report` only, with `-o`).
    case perfetto
}
