import Reports

/// protreplay's version, printed by `--version` and written into every JSON and HTML report (`tool.*`).
public enum ToolVersion {
    public static let version = "0.16.0"
    /// The commit the binary was built from (`git describe --always --dirty`), set by the executable at
    /// start (its build plugin writes it); nil in builds without it (the fuzzers, the benchmarks).
    nonisolated(unsafe) public static var commit: String?
    /// `protreplay 0.16.0 (commit 1a2b3c4d5e6f)`.
    public static var description: String { "protreplay \(version)" + (commit.map { " (commit \($0))" } ?? "") }
    /// The `tool` section of a report.
    public static var section: ReportDocument.ToolSection { .init(name: "protreplay", version: version, commit: commit) }
}
