/// The printk-formats section (`0xffffffff81e3b1d8 : "fmt\n"` per line) as libtraceevent can parse it.
///
/// `tep_parse_printk_formats` trusts each line: a line without a quoted format, or one shorter than
/// three characters, makes it read and write before its buffer (found by `scripts/fuzz perf-data`).
/// Only lines of the exact shape `HEX : "FORMAT"` (FORMAT at least two characters) are passed on.
enum PrintkFormats {
    /// The well-formed lines of `section`, NUL-terminated, and how many lines were dropped.
    static func sanitized(_ section: UnsafeRawBufferPointer) -> (text: [CChar], dropped: Int) {
        var out: [CChar] = []
        out.reserveCapacity(section.count + 1)
        var dropped = 0
        var start = 0
        while start < section.count {
            var end = start
            while end < section.count && section[end] != 0x0A { end += 1 }
            let line = UnsafeRawBufferPointer(rebasing: section[start..<end])
            if !line.isEmpty {
                if isWellFormed(line) {
                    out.append(contentsOf: line.map { CChar(bitPattern: $0) })
                    out.append(0x0A)
                } else {
                    dropped += 1
                }
            }
            start = end + 1
        }
        out.append(0)
        return (out, dropped)
    }

    static func isWellFormed(_ line: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        if line.count > 2 && line[0] == UInt8(ascii: "0") && (line[1] | 0x20) == UInt8(ascii: "x") { i = 2 }
        let digits = i
        while i < line.count, isHex(line[i]) { i += 1 }
        guard i > digits, i + 3 < line.count, line[i] == 0x20, line[i + 1] == UInt8(ascii: ":"), line[i + 2] == 0x20 else { return false }
        let fmt = UnsafeRawBufferPointer(rebasing: line[(i + 3)...])
        guard fmt.count >= 4, fmt.first == UInt8(ascii: "\""), fmt.last == UInt8(ascii: "\"") else { return false }
        return !fmt.contains(0)
    }

    private static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x66)
    }
}
