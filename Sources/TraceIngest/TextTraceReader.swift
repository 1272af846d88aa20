/// A reader of a text format: whole lines in, records out.
public protocol TextTraceReader: AnyObject {
    /// Parses every line of `chunk` (which ends at a line boundary) and hands records to `sink`.
    /// - Parameter offset: byte offset of `chunk` in the input, for messages.
    func read(_ chunk: UnsafeRawBufferPointer, offset: Int, into sink: RawEventSink)
    /// Lines read since the start (or since `beginPiece()`).
    var lineNumber: Int { get }
    /// The next chunk is an independent piece of the input (`TextPiece`): forget what the last line
    /// left open and count lines from 0 again.
    func beginPiece()
    /// Whether `line` (without its newline) can begin a piece: it does not continue the record before it.
    func startsRecord(_ line: UnsafeRawBufferPointer) -> Bool
}

extension TraceFormat {
    /// A reader for a text format; nil for the binary ones.
    public func makeTextReader(names: StringTable) -> TextTraceReader? {
        switch self {
        case .ftraceText: return FtraceTextReader(names: names)
        case .traceCmdReport: return TraceCmdReportReader(names: names)
        case .perfScript: return PerfScriptReader(names: names)
        case .traceDat, .perfData: return nil
        }
    }
}
