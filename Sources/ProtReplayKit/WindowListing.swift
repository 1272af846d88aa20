import Reports

/// `protreplay windows`: every exposure window the pipeline credits (after `--pid`/`--comm`/`--cpu`/
/// `--time`), collected as rows. Holds one row per window in memory.
public final class WindowListing {
    public private(set) var rows: [WindowRow] = []

    /// Hooks onto `pipeline` before it runs.
    public init(_ pipeline: Pipeline) {
        let comms = pipeline.comms, symbols = pipeline.symbols
        pipeline.builder.windowObserver = { [unowned self] w in self.rows.append(WindowRow(w, comms: comms, symbols: symbols)) }
    }
}
