/// Drives the reader for an input's format into a `RawEventSink`: the one place that knows which
/// reader reads which format.
///
///     let input = try TraceInput(path: path, forcedFormat: formatIn)
///     try TraceReader(names: names).read(input, into: sink) { /* strict-mode check */ }
public final class TraceReader {
    public let names: StringTable
    /// How trace.dat records are read (`--reader`).
    public var traceDatReader: TraceDatReaderKind

    public init(names: StringTable, traceDatReader: TraceDatReaderKind = .direct) {
        self.names = names
        self.traceDatReader = traceDatReader
    }

    /// Reads all of `input` into `sink`.
    /// - Parameter check: called after every chunk of text or every few thousand binary records;
    ///   throw from it to stop the read (strict mode).
    /// - Throws: `InputError` for input that cannot be read, or what `check` throws.
    public func read(_ input: TraceInput, into sink: RawEventSink, check: () throws -> Void) throws {
        switch input.format {
        case .ftraceText, .traceCmdReport, .perfScript:
            try readText(input.format.makeTextReader(names: names)!, input, sink, check)
        case .traceDat:
            try TraceDatReader(names: names, kind: traceDatReader).read(input, into: sink, check: check)
        case .perfData:
            try PerfDataReader(names: names).read(input, into: sink, check: check)
        }
        try check()
    }

    private func readText(_ reader: TextTraceReader, _ input: TraceInput, _ sink: RawEventSink, _ check: () throws -> Void) throws {
        try input.forEachChunk { chunk, offset in
            reader.read(chunk, offset: offset, into: sink)
            try check()
        }
    }
}
