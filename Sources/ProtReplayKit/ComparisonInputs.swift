import Models
import Reports
#if canImport(Glibc)
import Glibc
#endif

/// The columns of `protreplay compare`: traces (replayed), saved JSON reports, or one trace under
/// several model configurations (what-if, replayed in one pass).
public enum ComparisonInputs {
    /// Runs a pipeline to the end; the command line wraps it with a progress line.
    public typealias Runner = (_ pipeline: Pipeline, _ path: String) throws -> Void

    /// `name=path` or `path` (an existing file whose name holds `=` is a path).
    public static func split(_ arg: String) -> (label: String?, path: String) {
        if access(arg, F_OK) == 0 { return (nil, arg) }
        if let eq = arg.firstIndex(of: "="), eq != arg.startIndex {
            return (String(arg[..<eq]), String(arg[arg.index(after: eq)...]))
        }
        return (nil, arg)
    }

    /// Default labels: the file name, or parent/name when file names repeat.
    public static func defaultLabels(_ paths: [String]) -> [String] {
        func comps(_ p: String) -> [String] { p.split(separator: "/").map(String.init) }
        let names = paths.map { comps($0).last ?? $0 }
        return paths.enumerated().map { i, p in
            let c = comps(p)
            if names.filter({ $0 == names[i] }).count > 1, c.count >= 2 { return c[c.count - 2] + "/" + c[c.count - 1] }
            return names[i]
        }
    }

    /// One trace under each `--config` (parsed on top of `base`), replayed in one pass.
    public static func whatIf(_ input: String, configs: [String], base: ModelConfiguration, settings: TraceSettings,
                              run: Runner) throws -> [CompareInput] {
        let (label, path) = split(input)
        let configurations = try configs.map { c -> ModelConfiguration in
            do { return try ModelConfiguration.parse(config: c, base: base) } catch { throw ConfigurationError("\(error)") }
        }
        let pipeline = try Pipeline(path: path, settings: settings, selection: nil, configurations: configurations)
        try run(pipeline, path)
        return configs.indices.map { i in
            CompareInput(label: (label.map { $0 + ": " } ?? "") + configs[i], path: path, kind: "config", config: configs[i],
                         report: pipeline.report(configuration: i))
        }
    }

    /// Traces and saved reports side by side; traces are replayed with `selection`.
    public static func sideBySide(_ inputs: [String], selection: ModelConfiguration, settings: TraceSettings,
                                  run: Runner) throws -> [CompareInput] {
        let split = inputs.map(split)
        let defaults = defaultLabels(split.map(\.path))
        return try split.enumerated().map { i, x in
            let label = x.label ?? defaults[i]
            if ReportFiles.looksLikeJSON(x.path) {
                return CompareInput(label: label, path: x.path, kind: "report", report: try ReportFiles.savedReport(x.path))
            }
            let pipeline = try Pipeline(path: x.path, settings: settings, selection: selection)
            try run(pipeline, x.path)
            return CompareInput(label: label, path: x.path, kind: "trace", report: pipeline.report())
        }
    }
}
