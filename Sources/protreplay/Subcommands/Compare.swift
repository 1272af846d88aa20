import ArgumentParser
import Models
import Reports
import ProtReplayKit

/// `protreplay compare A B [C ...]`: traces or saved JSON reports side by side, or one trace under
/// several model configurations (`--config`), replayed in one pass.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare traces or saved JSON reports side by side, or one trace under several model configurations.",
        discussion: """
        Each INPUT is a trace or a saved JSON report (protreplay report --format json), optionally labelled
        NAME=PATH. The first input is the baseline: every other column gets a delta and a ratio against it.

        What-if: one trace and several --config, each a comma-separated list of model options
        (model=pks,mode=strict,kmap-global=flag-fault,context-end=return-to-user,protect=...,after-revoke-ns=N,foll-pin=HEX)
        or a shorthand: strict|relaxed|silent|off (pks --mode), unsupported|global-unprotect|flag-fault
        (pks --kmap-global), highmem|pks|s390pv|directmap|auto (--model). A configuration that sets a pks
        option runs pks unless it names a model. All configurations replay in one pass over the input.

        Examples:
          protreplay compare before=a.lz4 after=b.lz4
          protreplay compare base.json new.json --format html -o compare.html
          protreplay compare trace.lz4 --config "model=highmem" --config "model=pks,kmap-global=flag-fault"
          protreplay compare base.json new.lz4 --fail-if 'exposure.effective.total_ns>+10%'
        """)

    @Argument(help: "Traces or saved JSON reports, each optionally NAME=PATH.")
    var inputs: [String]

    @Option(name: .customLong("config"), help: ArgumentHelp("A model configuration for a what-if replay of one trace (repeatable).", valueName: "options"))
    var configs: [String] = []

    @Option(name: .long, help: "Output format: text, json (protreplay.compare/1) or html.")
    var format: ReportFormat = .text

    @Option(name: .shortAndLong, help: "Write the comparison to FILE instead of stdout.")
    var output: String?

    @Flag(name: .long, help: "Text: show only the metrics that differ.")
    var changedOnly = false

    @Option(name: .customLong("fail-if"), help: ArgumentHelp(
        "CI gate against the first input, e.g. 'exposure.effective.total_ns>+10%': exit 3 with one line per tripped condition (repeatable).",
        valueName: "condition"))
    var failIf: [String] = []

    @Flag(name: .long, help: "No progress line on stderr.")
    var quiet = false

    @OptionGroup var traceOptions: TraceOptions
    @OptionGroup var selection: ModelSelection

    func validate() throws {
        if configs.isEmpty && inputs.count < 2 { throw ValidationError("compare needs two inputs or more, or one trace and --config") }
        if !configs.isEmpty && inputs.count != 1 { throw ValidationError("--config replays one trace: give exactly one input") }
        try Gate.validate(failIf)
        try Output.checkWritable(output)
        try Output.checkHTMLDestination(format == .html, output: output)
        if format == .perfetto { throw ValidationError("--format perfetto is for `protreplay report` (it needs every window)") }
        for c in configs {
            do { _ = try ModelConfiguration.parse(config: c, base: selection.configuration) } catch { throw ValidationError("\(error)") }
        }
    }

    func run() throws {
        let columns = try Output.guarded { try makeInputs() }
        let c = CompareReport.comparison(columns)
        try Output.guarded {
            switch format {
            case .json: try Output.write(CompareReport.json(columns, c), to: output)
            case .html: try Output.write(CompareReport.html(columns, c), to: output)
            case .text: try Output.write(CompareReport.text(columns, c, changedOnly: changedOnly), to: output)
            case .perfetto: break  // refused in validate()
            }
        }
        try Gate.check(failIf, pairs: columns.dropFirst().map { ($0.label, $0.report.jsonObject) }, baseline: columns[0].report.jsonObject)
    }

    /// Reads every input (replaying traces) into the columns of the comparison.
    func makeInputs() throws -> [CompareInput] {
        let settings = try traceOptions.settings()
        let run: ComparisonInputs.Runner = { pipeline, path in
            let progress = pipeline.showProgress(quiet: quiet, label: "protreplay: reading \(path)")
            defer { progress?.finish() }
            try pipeline.run()
        }
        if !configs.isEmpty {
            return try ComparisonInputs.whatIf(inputs[0], configs: configs, base: selection.configuration, settings: settings, run: run)
        }
        return try ComparisonInputs.sideBySide(inputs, selection: selection.configuration, settings: settings, run: run)
    }
}
