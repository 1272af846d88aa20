import ArgumentParser
import Reports
import ProtReplayKit

/// `protreplay windows TRACE`: one line per exposure window, with the trace lines that opened and closed it.
struct Windows: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every exposure window: open and close times and trace lines, frame, alias, task, CPU, api, scope, close cause, flags.",
        discussion: """
        Examples:
          protreplay windows trace.txt --model highmem --sort duration --limit 10
          protreplay windows trace.txt --pid 1234 --time 7.112,7.120 --format csv -o windows.csv
        """)

    @Argument(help: "Trace file, or - for stdin.")
    var trace: String

    @Option(name: .long, help: "Row order: open (trace order), close, or duration (longest first).")
    var sort: WindowTable.Order = .open

    @Option(name: .long, help: "Print at most N windows.")
    var limit: Int?

    @Option(name: .long, help: "Output format: text, csv or json.")
    var format: ListFormat = .text

    @Option(name: .shortAndLong, help: "Write to FILE instead of stdout.")
    var output: String?

    @Flag(name: .long, help: "No progress line on stderr.")
    var quiet = false

    @OptionGroup var traceOptions: TraceOptions
    @OptionGroup var selection: ModelSelection

    enum ListFormat: String, CaseIterable, ExpressibleByArgument { case text, csv, json }

    func validate() throws {
        if let l = limit, l < 0 { throw ValidationError("--limit must be 0 or more") }
        try Output.checkWritable(output)
    }

    func run() throws {
        try Output.guarded {
            let pipeline = try Pipeline(path: trace, settings: try traceOptions.settings(), selection: selection.configuration)
            let listing = WindowListing(pipeline)
            let progress = pipeline.showProgress(quiet: quiet, label: "protreplay: reading \(trace)")
            try pipeline.run()
            progress?.finish()
            let rows = WindowTable.arrange(listing.rows, by: sort, limit: limit)
            let filter = pipeline.filter?.description
            switch format {
            case .text: try Output.write(WindowTable.text(rows, total: listing.rows.count, filter: filter), to: output)
            case .csv: try Output.write(WindowTable.csv(rows), to: output)
            case .json: try Output.write(WindowTable.json(rows, input: trace, total: listing.rows.count, filter: filter), to: output)
            }
        }
    }
}

extension WindowTable.Order: ExpressibleByArgument {}
