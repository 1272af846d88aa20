import Reports

/// `--windows FILE` and `--accesses FILE`: one CSV row per window and per unprotected access, written
/// as the replay observes them.
public final class ReportCSV {
    private let windows: WindowCSVWriter?
    private let accesses: AccessCSVWriter?

    /// Opens the files (nil: not asked for) and hooks them onto `pipeline` before it runs.
    public init(_ pipeline: Pipeline, windows windowsPath: String?, accesses accessesPath: String?) throws {
        windows = try windowsPath.map { try WindowCSVWriter(path: $0, comms: pipeline.comms, symbols: pipeline.symbols) }
        accesses = try accessesPath.map { try AccessCSVWriter(path: $0, comms: pipeline.comms, symbols: pipeline.symbols) }
        if let w = windows { pipeline.builder.windowObserver = { w.write($0) } }
        if let a = accesses { pipeline.builder.accessObserver = { a.write($0) } }
    }

    public func flush() {
        windows?.flush()
        accesses?.flush()
    }
}
