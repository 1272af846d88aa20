import ArgumentParser
import Reports
import ProtReplayKit

/// `protreplay merge *.json`: folds the JSON reports of many traces into one (fleet runs, docs/fleet.md).
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fold many saved JSON reports into one (windows, accesses, anomalies and duration distributions add up).",
        discussion: """
        Reports keep their duration distributions losslessly, so the merged p50/p99 are those of all the
        windows together. Models merge when their name and options agree. See docs/fleet.md.

        Example:
          protreplay merge reports/*.json -o fleet.json
        """)

    @Argument(help: "Saved JSON reports (protreplay report --format json), or merged ones.")
    var reports: [String]

    @Option(name: .long, help: "Output format: json (a protreplay.report/1 document with a `merged` key), text or html.")
    var format: ReportFormat = .json

    @Option(name: .shortAndLong, help: "Write the merged report to FILE instead of stdout.")
    var output: String?

    @Option(name: .customLong("fail-if"), help: ArgumentHelp("CI gate on the merged report (absolute thresholds), repeatable.", valueName: "condition"))
    var failIf: [String] = []

    @Option(name: .long, help: "Saved JSON report that relative --fail-if thresholds compare against.")
    var baseline: String?

    func validate() throws {
        guard !reports.isEmpty else { throw ValidationError("give at least one report") }
        try Gate.validate(failIf, relativeAllowed: baseline != nil)
        try Output.checkWritable(output)
        try Output.checkHTMLDestination(format == .html, output: output)
        if format == .perfetto { throw ValidationError("--format perfetto is for `protreplay report` (it needs every window)") }
    }

    func run() throws {
        let merged: ReportDocument = try Output.guarded {
            let merged = ReportDocument.merge(try reports.map(ReportFiles.savedReport), paths: reports)
            switch format {
            case .html: try Output.write(HTMLReport.render(merged, title: "protreplay merged report"), to: output)
            case .text: try Output.write(TextReport.render(merged), to: output)
            case .perfetto: break  // refused in validate()
            case .json: try Output.write(merged.json, to: output)
            }
            return merged
        }
        try Gate.check(failIf, current: merged.jsonObject, baselinePath: baseline)
    }
}
