import ArgumentParser
import TraceIngest
import Analysis
import Reports

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
    var format: String = "text"

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

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var selection: ModelSelection

    func validate() throws {
        guard ["text", "json", "html"].contains(format) else { throw ValidationError("--format must be text, json or html") }
        if configs.isEmpty && inputs.count < 2 { throw ValidationError("compare needs two inputs or more, or one trace and --config") }
        if !configs.isEmpty && inputs.count != 1 { throw ValidationError("--config replays one trace: give exactly one input") }
        for f in failIf {
            do { _ = try Threshold(f) } catch let e as Threshold.ParseError { throw ValidationError(e.description) }
        }
        for c in configs { _ = try Compare.selection(for: c, base: selection) }
    }

    /// `name=path` or `path`.
    static func split(_ arg: String) -> (label: String?, path: String) {
        if FileManager_exists(arg) { return (nil, arg) }
        if let eq = arg.firstIndex(of: "="), eq != arg.startIndex {
            return (String(arg[..<eq]), String(arg[arg.index(after: eq)...]))
        }
        return (nil, arg)
    }

    /// Default labels: the file name, or parent/name when file names repeat.
    static func defaultLabels(_ paths: [String]) -> [String] {
        func comps(_ p: String) -> [String] { p.split(separator: "/").map(String.init) }
        let names = paths.map { comps($0).last ?? $0 }
        return paths.enumerated().map { i, p in
            let c = comps(p)
            if names.filter({ $0 == names[i] }).count > 1, c.count >= 2 { return c[c.count - 2] + "/" + c[c.count - 1] }
            return names[i]
        }
    }

    static let pksKeys: Set<String> = ["mode", "kmap-global", "context-end", "after-revoke-ns"]
    static let keys: Set<String> = ["model", "mode", "kmap-global", "context-end", "protect", "after-revoke-ns", "foll-pin"]

    /// The model selection of one `--config`: the command line's, with the configuration's options on top.
    static func selection(for config: String, base: ModelSelection) throws -> ModelSelection {
        var opts: [String: String] = [:]
        for part in config.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            if let eq = part.firstIndex(of: "=") {
                let k = String(part[..<eq]).replacingOccurrences(of: "_", with: "-"), v = String(part[part.index(after: eq)...])
                guard keys.contains(k) else { throw ValidationError("--config '\(config)': unknown option '\(k)'; known: \(keys.sorted().joined(separator: ", "))") }
                opts[k] = v
            } else if ["strict", "relaxed", "silent", "off"].contains(part) {
                opts["mode"] = part
            } else if ["unsupported", "global-unprotect", "flag-fault"].contains(part) {
                opts["kmap-global"] = part
            } else if ModelSelection.all.contains(part) || part == "auto" {
                opts["model"] = part
            } else {
                throw ValidationError("--config '\(config)': '\(part)' is not KEY=VALUE or a known shorthand")
            }
        }
        if opts["model"] == nil, !pksKeys.isDisjoint(with: opts.keys), !base.names.contains("pks") { opts["model"] = "pks" }
        var args = ["--model", opts["model"] ?? base.model, "--mode", opts["mode"] ?? base.mode,
                    "--kmap-global", opts["kmap-global"] ?? base.kmapGlobal, "--context-end", opts["context-end"] ?? base.contextEnd,
                    "--after-revoke-ns", opts["after-revoke-ns"] ?? String(base.afterRevokeNs), "--foll-pin", opts["foll-pin"] ?? base.follPin]
        if let p = opts["protect"] ?? base.protect { args += ["--protect", p] }
        do {
            let s = try ModelSelection.parse(args)
            try s.validate()
            return s
        } catch let e as ValidationError {
            throw ValidationError("--config '\(config)': \(e.message)")
        } catch {
            throw ValidationError("--config '\(config)': \(ModelSelection.message(for: error))")
        }
    }

    func run() throws {
        let columns: [CompareInput]
        do {
            columns = try makeInputs()
        } catch let e as ValidationError {
            throw e
        } catch {
            Output.fail("\(error)")
            throw ExitCode(2)
        }
        let c = CompareReport.comparison(columns)
        let text: String
        switch format {
        case "json": text = CompareReport.json(columns, c).rendered()
        case "html": text = CompareReport.html(columns, c)
        default: text = CompareReport.text(columns, c, changedOnly: changedOnly)
        }
        do { try Output.write(text, to: output) } catch {
            Output.fail("\(error)")
            throw ExitCode(2)
        }
        if !failIf.isEmpty {
            let base = columns[0].report.document
            let pairs: [(String?, JSONValue)] = columns.dropFirst().map { ($0.label, $0.report.document) }
            try Gate.check(failIf, pairs: pairs, baseline: base)
        }
    }

    /// Reads every input (replaying traces) into the columns of the comparison.
    func makeInputs() throws -> [CompareInput] {
        if !configs.isEmpty {
            let (label, path) = Compare.split(inputs[0])
            let sels = try configs.map { try Compare.selection(for: $0, base: selection) }
            let pipeline = try Pipeline(path: path, options: modelOptions, strict: false, selection: nil, configurations: sels)
            let progress = pipeline.showProgress(quiet: quiet, label: "protreplay: reading \(path)")
            try pipeline.run()
            progress?.finish()
            return configs.indices.map { i in
                CompareInput(label: (label.map { $0 + ": " } ?? "") + configs[i], path: path, kind: "config", config: configs[i],
                             report: SavedReport(pipeline.report(configuration: i)))
            }
        }
        let split = inputs.map(Compare.split)
        let defaults = Compare.defaultLabels(split.map(\.path))
        return try split.enumerated().map { i, x in
            let label = x.label ?? defaults[i]
            if Compare.looksLikeJSON(x.path) {
                return CompareInput(label: label, path: x.path, kind: "report", report: try SavedReport(text: try Output.read(x.path), source: x.path))
            }
            let pipeline = try Pipeline(path: x.path, options: modelOptions, strict: false, selection: selection)
            let progress = pipeline.showProgress(quiet: quiet, label: "protreplay: reading \(x.path)")
            try pipeline.run()
            progress?.finish()
            return CompareInput(label: label, path: x.path, kind: "trace", report: SavedReport(pipeline.report()))
        }
    }

    /// A saved report starts with `{` (a trace, compressed or not, never does).
    static func looksLikeJSON(_ path: String) -> Bool {
        guard path != "-", let f = fopen(path, "rb") else { return false }
        defer { fclose(f) }
        while true {
            let c = fgetc(f)
            if c == EOF { return false }
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { continue }
            return c == 0x7B
        }
    }
}

func FileManager_exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

#if canImport(Glibc)
import Glibc
#endif
