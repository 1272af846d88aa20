import ArgumentParser
import Reports
import ProtReplayKit

/// `protreplay report TRACE`: replay a trace through a model and print what it exposed.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a trace and report exposure windows, unprotected accesses and anomalies.",
        discussion: """
        Filters (--pid, --comm, --cpu, --time) never change the replay: every event is replayed. The report
        credits windows whose holder task and CPU match, clipped to the time range; accesses and anomalies
        whose task, CPU and time match (no anomaly with --comm: anomalies name no task). The header says what
        was filtered and how many events matched.

        Examples:
          protreplay report SampleTraces/real/6.1.0-50-686-pae-i386-workload/trace.lz4 --model highmem --comm wl-sendfile
          protreplay report SampleTraces/real/6.1.0-50-686-pae-i386-workload/trace.lz4 --by-phase
        """)

    @Argument(help: "Trace: ftrace text, trace.dat, perf.data, perf script or trace-cmd report text (detected by content, each optionally LZ4-framed), or - for stdin.")
    var trace: String

    @Option(name: .long, help: "Output format: text, json, html (one self-contained page; use with -o), or perfetto (a Perfetto trace of every window, access and anomaly for ui.perfetto.dev; needs -o FILE.pftrace).")
    var format: ReportFormat = .text

    @Option(name: .shortAndLong, help: "Write the report to FILE instead of stdout.")
    var output: String?

    @Option(name: .long, help: "Write one CSV row per exposure window to FILE.")
    var windows: String?

    @Option(name: .long, help: "Write one CSV row per unprotected access to FILE.")
    var accesses: String?

    @Option(name: .customLong("fail-if"), help: ArgumentHelp(
        "CI gate: exit with status 3 and a one-line reason when CONDITION holds, e.g. 'unprotected_accesses.total>0' or 'exposure.effective.total_ns>+10%' (relative needs --baseline). Repeatable; grammar in docs/fleet.md.",
        valueName: "condition"))
    var failIf: [String] = []

    @Option(name: .long, help: "Saved JSON report that relative --fail-if thresholds compare against.")
    var baseline: String?

    @Flag(name: .long, help: "No progress line on stderr (it is shown only when stderr is a terminal).")
    var quiet = false

    @Flag(name: .long, help: "Stop with an error at the first malformed line (default: count, report the first few, go on).")
    var strict = false

    @OptionGroup var traceOptions: TraceOptions
    @OptionGroup var selection: ModelSelection

    func validate() throws {
        try Gate.validate(failIf, relativeAllowed: baseline != nil)
        try Output.checkWritable(output, windows, accesses)
        try Output.checkHTMLDestination(format == .html, output: output)
        if format == .perfetto && output == nil { throw ValidationError("--format perfetto writes a binary trace: give -o FILE.pftrace") }
    }

    func run() throws {
        let report: ReportDocument = try Output.guarded {
            let report = try makeReport()
            switch format {
            case .json: try Output.write(report.json, to: output)
            case .html: try Output.write(HTMLReport.render(report), to: output)
            case .text: try Output.write(TextReport.render(report), to: output)
            case .perfetto: break  // written to -o during the replay (makeReport)
            }
            return report
        }
        try Gate.check(failIf, current: report.jsonObject, baselinePath: baseline)
    }

    /// Reads the trace and folds it into a report (also used by the golden scenario tests).
    func makeReport() throws -> ReportDocument {
        let pipeline = try Pipeline(path: trace, settings: try traceOptions.settings(), strict: strict, selection: selection.configuration)
        let csv = try ReportCSV(pipeline, windows: windows, accesses: accesses)
        let perfetto = try (format == .perfetto ? output : nil).map { try ReportPerfetto(pipeline, path: $0) }
        pipeline.builder.collectTimeline = format == .html
        let progress = pipeline.showProgress(quiet: quiet, label: "protreplay: reading \(trace)")
        defer { progress?.finish() }
        try pipeline.run()
        csv.flush()
        try perfetto?.finish()
        return pipeline.report()
    }
}
