import Reports

/// `report --format perfetto -o FILE.pftrace`: every window, unprotected access and anomaly written to a
/// Perfetto trace as the replay observes them (`PerfettoTraceWriter`).
public final class ReportPerfetto {
    private let writer: PerfettoTraceWriter

    /// Creates the file and hooks the writer onto `pipeline` before it runs, beside any observer already
    /// hooked (the `--windows`/`--accesses` CSV writers).
    public init(_ pipeline: Pipeline, path: String) throws {
        let w = try PerfettoTraceWriter(path: path, comms: pipeline.comms, symbols: pipeline.symbols)
        writer = w
        let builder = pipeline.builder
        let windows = builder.windowObserver, accesses = builder.accessObserver, anomalies = builder.anomalyObserver
        builder.windowObserver = { windows?($0); w.write($0) }
        builder.accessObserver = { accesses?($0); w.write($0) }
        builder.anomalyObserver = { anomalies?($0); w.write($0) }
    }

    /// Slices (windows) and instant events (accesses and anomalies) written.
    public var slices: Int { writer.slices }
    public var instants: Int { writer.instants }

    /// Writes the rest of the file; call after `Pipeline.run()`.
    /// - Throws: `PerfettoTraceWriter.WriteFailure` if a write failed.
    public func finish() throws { try writer.finish() }
}
