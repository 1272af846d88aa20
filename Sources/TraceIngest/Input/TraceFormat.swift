/// Input formats, told apart by content (never by file name).
public enum TraceFormat: String, Sendable, CaseIterable {
    /// `/sys/kernel/tracing/trace` or `trace_pipe` text.
    case ftraceText = "ftrace-text"
    /// trace-cmd's binary `trace.dat` (read in a later stage of the project).
    case traceDat = "trace.dat"
    /// perf's binary `perf.data`.
    case perfData = "perf.data"

    public static let supportedList = "ftrace text (trace, trace_pipe), optionally LZ4-framed"

    /// Sniffs the format from the first bytes of the (decompressed) input.
    public static func sniff(_ head: UnsafeRawBufferPointer) -> TraceFormat? {
        if head.count >= 10, head[0] == 0x17, head[1] == 0x08, head[2] == 0x44,
           head[3] == UInt8(ascii: "t"), head[4] == UInt8(ascii: "r"), head[5] == UInt8(ascii: "a") {
            return .traceDat
        }
        if head.count >= 8, head.starts(with: Array("PERFILE2".utf8)) { return .perfData }
        // Text: the first bytes must be printable text (a header comment, an event line or a LOST marker).
        var printable = 0
        let n = min(head.count, 512)
        for i in 0..<n {
            let c = head[i]
            if c == 0x0A || c == 0x09 || c == 0x0D || (c >= 0x20 && c < 0x7F) || c >= 0x80 { printable += 1 }
        }
        if n > 0 && printable * 100 >= n * 95 { return .ftraceText }
        return nil
    }
}
