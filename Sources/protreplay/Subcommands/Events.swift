import ArgumentParser
import Models
import EventModel
import ProtReplayKit

/// `protreplay events TRACE`: every event name in the trace, how often, and what it maps to.
struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every event name in a trace, its count, what the probe map makes of it, and which models read it.")

    @Argument(help: "Trace file, or - for stdin.")
    var trace: String

    @OptionGroup var traceOptions: TraceOptions

    func run() throws {
        try Output.guarded {
            let pipeline = try Pipeline(path: trace, settings: try traceOptions.settings(), selection: nil)
            try pipeline.run()
            // With a filter: the events that matched, per name (names with none left out).
            let filtered = pipeline.filter != nil
            let rows = pipeline.source.nameSummaries().map { s -> EventNormalizer.NameSummary in
                var s = s
                if filtered { s.count = s.matched ?? 0 }
                return s
            }.filter { $0.count > 0 }.sorted { $0.count != $1.count ? $0.count > $1.count : $0.name < $1.name }
            var out = "# " + "event".padding(40) + "count".leftPadding(10) + "  " + "read by".padding(28) + "maps to\n"
            for r in rows {
                let fn = r.function.map { "  [\($0)\(r.isReturn ? "%return" : "")]" } ?? ""
                let readers = ModelRegistry.readers(of: r)
                out += "  " + r.name.padding(40) + String(r.count).leftPadding(10) + "  "
                    + (readers.isEmpty ? "-" : readers.joined(separator: ",")).padding(28) + r.mapsTo + fn + "\n"
            }
            let s = pipeline.source.stats
            out += "# \(s.events) events, \(s.stackTraces) stack traces, \(s.malformed) malformed lines, \(s.lostEvents) lost\n"
            if let f = pipeline.filter { out += "# filter: \(f.description): \(s.eventsMatched) of \(s.events) events matched\n" }
            print(out, terminator: "")
        }
    }
}

extension String {
    func padding(_ w: Int) -> String { count >= w ? self + " " : self + String(repeating: " ", count: w - count) }
    func leftPadding(_ w: Int) -> String { count >= w ? " " + self : String(repeating: " ", count: w - count) + self }
}
