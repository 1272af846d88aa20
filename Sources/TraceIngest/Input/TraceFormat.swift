/// Input formats, told apart by content (never by file name).
public enum TraceFormat: String, Sendable, CaseIterable {
    /// `/sys/kernel/tracing/trace` or `trace_pipe` text.
    case ftraceText = "ftrace-text"
    /// `trace-cmd report` text (plugin-formatted or `-R` raw).
    case traceCmdReport = "trace-cmd-report"
    /// `perf script` text (default fields, `--ns`, `-F` subsets, `-g` call chains).
    case perfScript = "perf-script"
    /// trace-cmd's binary `trace.dat` (versions 6 and 7), read through libtracecmd.
    case traceDat = "trace.dat"
    /// perf's binary `perf.data` (tracepoint samples), read directly.
    case perfData = "perf.data"

    public static let supportedList =
        "trace.dat (trace-cmd, v6/v7), perf.data (perf record, file or pipe mode), ftrace text (trace, trace_pipe), " +
        "trace-cmd report text, perf script text; each optionally compressed (lz4, gzip, xz, zstd)"

    /// The names `--format-in` accepts.
    public static let optionNames = allCases.map(\.rawValue).joined(separator: ", ")

    /// Parses a `--format-in` value (`trace.dat`, `tracedat`, `perf.data`, `ftrace`, `report`, ...).
    public init?(optionName: String) {
        switch optionName.lowercased() {
        case "ftrace-text", "ftrace", "text", "trace": self = .ftraceText
        case "trace-cmd-report", "trace-cmd", "report": self = .traceCmdReport
        case "perf-script", "script": self = .perfScript
        case "trace.dat", "tracedat", "dat", "trace-dat": self = .traceDat
        case "perf.data", "perfdata", "perf-data", "perf": self = .perfData
        default: return nil
        }
    }

    /// True for the binary formats read from a whole file (not line by line).
    public var isBinary: Bool { self == .traceDat || self == .perfData }

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
        if n > 0 && printable * 100 >= n * 95 { return sniffText(head) }
        return nil
    }

    /// Which text format: looks at the first lines.
    ///
    ///     cpus=2                                                                      trace-cmd report header
    ///     init-1     [001]     7.093459: page_fault_user:      address=0x5e3c80 ...   trace-cmd report (no flags, padded name)
    ///     perf 16579 [000]  1336.236964:   sched:sched_switch: prev_comm=perf ...     perf script (space before the tid, sys:name)
    ///     init-1     [001] .....     5.006370: tracing_mark_write: capture start      ftrace text
    static func sniffText(_ head: UnsafeRawBufferPointer) -> TraceFormat {
        // A perf script call-chain frame anywhere in the head decides it: tab-indented, or three lines of
        // `ADDRESS SYMBOL (DSO)` (indentation lost in a copy).
        var start = 0
        var dsoFrames = 0
        while start < head.count {
            var end = start
            while end < head.count && head[end] != 0x0A { end += 1 }
            if end < head.count {
                let line = Array(head[start..<end])
                if isPerfCallchainLine(line) { return .perfScript }
                if isDsoFrameLine(line) { dsoFrames += 1; if dsoFrames >= 3 { return .perfScript } }
            }
            start = end + 1
        }
        var lines = 0
        start = 0
        while start < head.count && lines < 64 {
            var end = start
            while end < head.count && head[end] != 0x0A { end += 1 }
            if end == head.count && start > 0 { break }   // a partial last line says nothing reliable
            let line = Array(head[start..<end])
            start = end + 1
            lines += 1
            if line.isEmpty { continue }
            if line.starts(with: Array("cpus=".utf8)) || line.starts(with: Array("version = ".utf8)) { return .traceCmdReport }
            if line[0] == UInt8(ascii: "#") {
                if line.starts(with: Array("# tracer:".utf8)) || line.starts(with: Array("# entries-in-buffer".utf8)) { return .ftraceText }
                continue
            }
            if let f = classifyEventLine(line) { return f }
        }
        return .ftraceText
    }

    private static func classifyEventLine(_ l: [UInt8]) -> TraceFormat? {
        // Tokens split on blanks.
        var tokens: [ArraySlice<UInt8>] = []
        var i = 0
        while i < l.count {
            while i < l.count && (l[i] == 0x20 || l[i] == 0x09) { i += 1 }
            let s = i
            while i < l.count && l[i] != 0x20 && l[i] != 0x09 { i += 1 }
            if i > s { tokens.append(l[s..<i]) }
        }
        // The timestamp token: digits '.' digits ':'.
        guard let t = tokens.firstIndex(where: isTimestampToken) else { return nil }
        let after = t + 1 < tokens.count ? tokens[t + 1] : []
        // perf script names events "system:name:" (or "cycles:u:"); a counter's period comes first.
        if let c = after.firstIndex(of: UInt8(ascii: ":")), c < after.endIndex - 1, after.last == UInt8(ascii: ":") { return .perfScript }
        if t + 2 < tokens.count, !after.isEmpty, after.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), tokens[t + 2].last == UInt8(ascii: ":") { return .perfScript }
        // A pid preceded by a space ("perf 16579 [000]") is perf script; "comm-pid" is ftrace or trace-cmd.
        if t >= 1 {
            var k = t - 1
            if isCPUToken(tokens[k]) && k >= 1 { k -= 1 }
            else if k >= 1 && isCPUToken(tokens[k - 1]) && !isCPUToken(tokens[k]) {
                // flags column between cpu and timestamp: ftrace text
                return .ftraceText
            }
            let tok = tokens[k]
            if !tok.isEmpty && tok.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "/") }) && k >= 1 { return .perfScript }
        }
        // No flags column: trace-cmd report pads the event name ("name:" then 2+ blanks).
        if after.last == UInt8(ascii: ":") {
            // find the position of `after` in the line and look at the blanks after it
            if let r = find(l, Array(after)) {
                var j = r + after.count
                var blanks = 0
                while j < l.count && l[j] == 0x20 { blanks += 1; j += 1 }
                if blanks >= 2 { return .traceCmdReport }
            }
        }
        return .ftraceText
    }

    /// `\tffffffff8158ec83 filemap_map_pages+0x6a3 ([kernel.kallsyms])`: a perf script call-chain frame
    /// (ftrace and trace-cmd print frames as ` => symbol`).
    private static func isPerfCallchainLine(_ l: [UInt8]) -> Bool {
        guard l.first == 0x09 else { return false }
        var i = 1
        while i < l.count && l[i] == 0x20 { i += 1 }
        let h = i
        while i < l.count && ((l[i] >= 0x30 && l[i] <= 0x39) || (l[i] >= 0x61 && l[i] <= 0x66)) { i += 1 }
        return i > h && (i == l.count || l[i] == 0x20)
    }

    /// `    13a80b608e0a RegExp:[&<>] (/tmp/perf-7539.map)`: blanks, 1-16 hex digits, a blank, a symbol, `(dso)` at the end.
    private static func isDsoFrameLine(_ l: [UInt8]) -> Bool {
        guard l.last == UInt8(ascii: ")"), l.contains(UInt8(ascii: "(")) else { return false }
        var i = 0
        while i < l.count && l[i] == 0x20 { i += 1 }
        let h = i
        while i < l.count && ((l[i] >= 0x30 && l[i] <= 0x39) || (l[i] >= 0x61 && l[i] <= 0x66)) { i += 1 }
        guard i > h, i - h <= 16, i + 1 < l.count, l[i] == 0x20 else { return false }
        // Not a `comm-pid [cpu]` event line.
        return !l.contains(UInt8(ascii: "[")) || l.firstIndex(of: UInt8(ascii: "["))! > l.firstIndex(of: UInt8(ascii: "("))!
    }

    private static func isTimestampToken(_ t: ArraySlice<UInt8>) -> Bool {
        guard t.count >= 3, t.last == UInt8(ascii: ":") else { return false }
        var dot = false
        for c in t.dropLast() {
            if c == UInt8(ascii: ".") { if dot { return false }; dot = true; continue }
            if c < 0x30 || c > 0x39 { return false }
        }
        return dot
    }

    private static func isCPUToken(_ t: ArraySlice<UInt8>) -> Bool {
        t.count >= 3 && t.first == UInt8(ascii: "[") && t.last == UInt8(ascii: "]") && t.dropFirst().dropLast().allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    private static func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard needle.count <= hay.count, !needle.isEmpty else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<i + needle.count]) == needle { return i }
        return nil
    }
}
