#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Splits a chunk of text into lines with `memchr`, for the text readers.
enum Lines {
    /// Calls `body(bytes, start, end)` for each line of `chunk`; `end` excludes the newline and a
    /// trailing carriage return. The last line may lack its newline.
    @inline(__always)
    static func forEach(in chunk: UnsafeRawBufferPointer, _ body: (UnsafePointer<UInt8>, Int, Int) -> Void) {
        guard let base = chunk.baseAddress else { return }
        let p = base.assumingMemoryBound(to: UInt8.self)
        let end = chunk.count
        var s = 0
        while s < end {
            var e: Int
            if let nl = memchr(p + s, 0x0A, end - s) { e = UnsafeRawPointer(nl) - base } else { e = end }
            let next = e + 1
            if e > s && p[e - 1] == 0x0D { e -= 1 }
            body(p, s, e)
            s = next
        }
    }

    /// Whether an ftrace-shaped line (ftrace text, `trace-cmd report`) belongs to a stack trace: a
    /// ` => frame` line, or the entry that opens one (`<stack trace>`, `<user stack trace>`,
    /// trace-cmd's `kernel_stack:` / `user_stack:`).
    static func isStackTraceLine(_ line: UnsafeRawBufferPointer) -> Bool {
        guard let base = line.baseAddress else { return false }
        var i = 0
        while i < line.count && (line[i] == 0x20 || line[i] == 0x09) { i += 1 }
        if i + 1 < line.count && line[i] == UInt8(ascii: "=") && line[i + 1] == UInt8(ascii: ">") { return true }
        let n = min(line.count, 512)
        for needle in stackNeedles {
            var at = 0
            while at + needle.count <= n, let hit = memchr(base + at, Int32(needle[0]), n - needle.count + 1 - at) {
                let h = UnsafeRawPointer(hit) - base
                if memcmp(base + h, needle, needle.count) == 0 { return true }
                at = h + 1
            }
        }
        return false
    }

    /// Whether a line of ftrace text or `trace-cmd report` can be a record rather than the continuation
    /// of a multi-line message: a comment, a `CPU:N [LOST` marker, a stack-trace line, a trace-cmd
    /// header (`cpus=`, `version = `), or an event line (a `[CPU]` column and later a `SECS.FRAC:` word, or
    /// the `latency-format` option's `16963us#:`).
    static func looksLikeRecord(_ line: UnsafeRawBufferPointer) -> Bool {
        guard let f = line.first else { return false }
        if f == UInt8(ascii: "#") || line.starts(with: "CPU:".utf8) || line.starts(with: "cpus=".utf8) || line.starts(with: "version = ".utf8) { return true }
        if isStackTraceLine(line) { return true }
        // "[" digits "]" then a word digits "." digits ":".
        var i = 0
        var sawCPU = false
        while i < line.count {
            if !sawCPU && line[i] == UInt8(ascii: "[") {
                var k = i + 1
                while k < line.count && line[k] >= 0x30 && line[k] <= 0x39 { k += 1 }
                if k > i + 1 && k < line.count && line[k] == UInt8(ascii: "]") { sawCPU = true; i = k + 1; continue }
            } else if sawCPU && line[i] == UInt8(ascii: ".") && i > 0 && line[i - 1] >= 0x30 && line[i - 1] <= 0x39 {
                var k = i + 1
                while k < line.count && line[k] >= 0x30 && line[k] <= 0x39 { k += 1 }
                if k > i + 1 && k < line.count && line[k] == UInt8(ascii: ":") { return true }
            }
            i += 1
        }
        // latency-format: "    bash-26999     0d..2. 16963us#: sched_switch: ..." (digits, "us" or "ns", a mark, ':').
        i = 1
        while i + 3 < line.count {
            if (line[i] == UInt8(ascii: "u") || line[i] == UInt8(ascii: "n")) && line[i + 1] == UInt8(ascii: "s")
                && line[i - 1] >= 0x30 && line[i - 1] <= 0x39 && line[i + 3] == UInt8(ascii: ":") && (i + 4 == line.count || line[i + 4] == 0x20) {
                return true
            }
            i += 1
        }
        return false
    }

    private static let stackNeedles: [[UInt8]] = ["stack trace>", "kernel_stack:", "user_stack:"].map { Array($0.utf8) }
}
