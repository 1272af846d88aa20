#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads ftrace text as the kernel prints it in `/sys/kernel/tracing/trace` and `trace_pipe`.
///
/// Accepts every line shape of `docs/formats.md`: the header (or none), 4 or 5 flag characters or
/// no flag column, the `(  TGID)` column, kprobe/kretprobe payloads, syscall lines, markers,
/// function-tracer lines, `<stack trace>` entries with their ` => frame` lines,
/// `CPU:N [LOST M EVENTS]` and `##### CPU N buffer started ####`.
///
///              cat-321     [000] d....     7.095703: page_fault_kernel: address=0x16603690 ip=__put_user_nocheck_4 error_code=0x3
///          sys_pkey_mprotect(start: 7f9f2d3b5000, len: 10000, prot: 3, pkey: 1)      (syscall enter, named sys_enter_pkey_mprotect)
///          sys_memfd_secret -> 0x4                                                   (syscall exit, named sys_exit_memfd_secret)
///
/// A message (`tracing_mark_write`, `print`, `bprint`, `bputs`) whose text holds newlines goes on over
/// the following lines; those lines belong to it (they are neither events nor malformed):
///
///           printf-13747   [001] ...1.   384.748085: tracing_mark_write: one write:
///     second line
///     third line
public final class FtraceTextReader: TextTraceReader {
    public let names: StringTable
    /// Lines read so far (the last line number handed out).
    public private(set) var lineNumber = 0
    /// `# entries-in-buffer/entries-written: 10118/10118   #P:2`, when the header has it.
    public private(set) var headerEntriesInBuffer: Int?
    public private(set) var headerEntriesWritten: Int?
    public private(set) var headerCPUs: Int?
    public private(set) var tracer: String?

    private var scratch = [UInt8](repeating: 0, count: 512)
    private var event = RawEvent()
    public let functionEventName: StringTable.ID
    /// A `latency-format` line is being parsed again in the usual shape.
    private var rereading = false

    /// A line of the `latency-format` option in the usual shape, or nil (kernel/trace/trace_output.c
    /// `lat_print_generic` + `lat_print_timestamp`: CPU and flags in one word, microseconds since the
    /// first entry, then a delay mark):
    ///
    ///         bash-26999     0d..2. 16963us#: sched_switch: prev_comm=bash ...
    ///       printf-27018     1d..2. 72536us : sched_switch: ...
    ///     -> bash-26999 [000] d..2. 0.016963: sched_switch: prev_comm=bash ...
    private func latencyFormatLine(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> [UInt8]? {
        // comm-pid (the comm may hold blanks: take the last "-digits" word before the CPU+flags word).
        var words: [Range<Int>] = []
        var i = s
        while i < e && words.count < 6 {
            while i < e && p[i] == 0x20 { i += 1 }
            let w = i
            while i < e && p[i] != 0x20 { i += 1 }
            if i > w { words.append(w..<i) }
        }
        func digit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        for k in 1..<max(1, words.count - 1) {
            let cf = words[k], ts = words[k + 1]
            var d = cf.lowerBound
            while d < cf.upperBound && digit(p[d]) { d += 1 }
            let flags = cf.upperBound - d
            guard d > cf.lowerBound, d - cf.lowerBound <= 5, flags == 4 || flags == 5 else { continue }
            // "16963us#:" or "72536us" then ":" (a blank delay mark).
            var u = ts.lowerBound
            while u < ts.upperBound && digit(p[u]) { u += 1 }
            guard u > ts.lowerBound, u + 1 < ts.upperBound, p[u] == UInt8(ascii: "u") || p[u] == UInt8(ascii: "n"), p[u + 1] == UInt8(ascii: "s") else { continue }
            var rest = ts.upperBound
            if p[ts.upperBound - 1] != UInt8(ascii: ":") {
                guard k + 2 < words.count, words[k + 2].count == 1, p[words[k + 2].lowerBound] == UInt8(ascii: ":") else { continue }
                rest = words[k + 2].upperBound
            }
            guard u - ts.lowerBound <= 18 else { return nil }
            var value: UInt64 = 0
            for j in ts.lowerBound..<u { value = value &* 10 &+ UInt64(p[j] - 0x30) }
            let ns = p[u] == UInt8(ascii: "u") ? value &* 1000 : value
            var out = Array(UnsafeBufferPointer(start: p + s, count: cf.lowerBound - s))
            out += Array(" [".utf8) + Array(UnsafeBufferPointer(start: p + cf.lowerBound, count: d - cf.lowerBound)) + Array("] ".utf8)
            out += Array(UnsafeBufferPointer(start: p + d, count: flags))
            let frac = String(ns % 1_000_000_000)
            out += Array(" \(ns / 1_000_000_000).\(String(repeating: "0", count: 9 - frac.count) + frac):".utf8)
            out += Array(UnsafeBufferPointer(start: p + rest, count: e - rest))
            return out
        }
        return nil
    }

    /// Events whose text may run over several lines.
    private let messageNames: [StringTable.ID]
    /// The last record was a message: a line that is no record continues it.
    private var messageOpen = false

    public init(names: StringTable) {
        self.names = names
        functionEventName = names.intern("function")
        messageNames = ["tracing_mark_write", "print", "bprint", "bputs"].map { names.intern($0) }
    }

    public func read(_ chunk: UnsafeRawBufferPointer, offset: Int, into sink: RawEventSink) {
        Lines.forEach(in: chunk) { p, s, e in
            lineNumber += 1
            parseLine(p, s, e, offset: offset + s, sink: sink)
        }
    }

    public func beginPiece() { lineNumber = 0; messageOpen = false }

    /// Not a stack-trace line, and not a line that may continue a multi-line message.
    public func startsRecord(_ line: UnsafeRawBufferPointer) -> Bool {
        !Lines.isStackTraceLine(line) && Lines.looksLikeRecord(line)
    }

    @inline(__always)
    private func slice(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: p + s, count: max(0, e - s))
    }

    private func parseLine(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, offset: Int, sink: RawEventSink) {
        if messageOpen {
            // The message's text goes on over this line unless it is a record of its own (an empty line too
            // is part of the text: `printf 'a\n\nb'`).
            if !Lines.looksLikeRecord(UnsafeRawBufferPointer(start: p + s, count: e - s)) { return }
            messageOpen = false
        }
        if s >= e { return }
        let c0 = p[s]
        if c0 == UInt8(ascii: "#") { parseComment(p, s, e, offset: offset, sink: sink); return }
        if c0 == UInt8(ascii: "C") && e - s > 4 && p[s + 1] == UInt8(ascii: "P") && p[s + 2] == UInt8(ascii: "U") && p[s + 3] == UInt8(ascii: ":") {
            parseLost(p, s, e, offset: offset, sink: sink); return
        }
        // Skip leading blanks.
        var i = s
        while i < e && (p[i] == 0x20 || p[i] == 0x09) { i += 1 }
        if i == e { return }
        // " => frame" lines of a stack trace.
        if p[i] == UInt8(ascii: "=") && i + 1 < e && p[i + 1] == UInt8(ascii: ">") {
            var f = i + 2
            while f < e && p[f] == 0x20 { f += 1 }
            event.kind = .stackFrame
            event.line = lineNumber
            event.offset = offset
            event.payload = slice(p, f, e)
            sink.consume(&event)
            return
        }
        parseEventLine(p, commStart: i, e, lineStart: s, offset: offset, sink: sink)
    }

    private func parseComment(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, offset: Int, sink: RawEventSink) {
        let line = slice(p, s, e)
        if line.starts(with: "##### CPU ".utf8) {
            var i = s + 10
            var cpu = 0
            var digits = 0
            while i < e && p[i] >= 0x30 && p[i] <= 0x39 { cpu = cpu * 10 + Int(p[i] - 0x30); i += 1; digits += 1 }
            if digits > 0 && digits < 6 {
                event = RawEvent()
                event.kind = .bufferStarted
                event.cpu = Int32(cpu)
                event.line = lineNumber
                event.offset = offset
                sink.consume(&event)
                return
            }
        }
        if line.starts(with: "# tracer: ".utf8) {
            tracer = String(decoding: line.dropFirst(10), as: UTF8.self)
        } else if let r = find(line, "entries-in-buffer/entries-written:") {
            var i = r
            func number() -> Int? {
                while i < line.count && line[i] == 0x20 { i += 1 }
                var v = 0, d = 0
                while i < line.count && line[i] >= 0x30 && line[i] <= 0x39 { v = v &* 10 &+ Int(line[i] - 0x30); i += 1; d += 1 }
                return d > 0 ? v : nil
            }
            headerEntriesInBuffer = number()
            if i < line.count && line[i] == UInt8(ascii: "/") { i += 1; headerEntriesWritten = number() }
            if let pr = find(line, "#P:") { i = pr; headerCPUs = number() }
        }
    }

    private func find(_ hay: UnsafeRawBufferPointer, _ needle: StaticString) -> Int? {
        let n = needle.utf8CodeUnitCount
        let np = needle.utf8Start
        guard hay.count >= n else { return nil }
        var i = 0
        while i + n <= hay.count {
            var j = 0
            while j < n && hay[i + j] == np[j] { j += 1 }
            if j == n { return i + n }
            i += 1
        }
        return nil
    }

    /// `CPU:1 [LOST 1234 EVENTS]` or `CPU:1 [LOST EVENTS]` (count unknown).
    private func parseLost(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, offset: Int, sink: RawEventSink) {
        var i = s + 4
        var cpu = 0, d = 0
        while i < e && p[i] >= 0x30 && p[i] <= 0x39 && d < 6 { cpu = cpu * 10 + Int(p[i] - 0x30); i += 1; d += 1 }
        guard d > 0, let r = find(slice(p, i, e), "[LOST") else {
            sink.malformed(line: lineNumber, offset: offset, reason: "line starts with CPU: but is not a [LOST N EVENTS] marker", text: slice(p, s, e))
            return
        }
        i += r
        while i < e && p[i] == 0x20 { i += 1 }
        var count: UInt64 = 0
        while i < e && p[i] >= 0x30 && p[i] <= 0x39 { count = count &* 10 &+ UInt64(p[i] - 0x30); i += 1 }
        event = RawEvent()
        event.kind = .lostEvents
        event.cpu = Int32(cpu)
        event.lostCount = count
        event.line = lineNumber
        event.offset = offset
        sink.consume(&event)
    }

    /// `<comm>-<pid> [(<tgid>)] [<cpu>] [<flags>] <secs>.<usecs>: <name>: <payload>`
    private func parseEventLine(_ p: UnsafePointer<UInt8>, commStart: Int, _ e: Int, lineStart: Int, offset: Int, sink: RawEventSink) {
        // Find the CPU column "[NNN]" that follows "-PID" (the comm may itself contain '[' or '-').
        var search = commStart
        var cpuOpen = -1, cpuClose = -1
        var pid: Int32 = 0, tgid: Int32 = -1, commEnd = -1
        while search < e {
            guard let q = memchr(p + search, Int32(UInt8(ascii: "[")), e - search) else { break }
            let b = UnsafePointer<UInt8>(q.assumingMemoryBound(to: UInt8.self)) - p
            search = b + 1
            // A "[" that starts the line has no TASK-PID before it (and nothing to walk back over).
            guard b > commStart else { continue }
            var k = b + 1
            var cpu = 0
            while k < e && p[k] >= 0x30 && p[k] <= 0x39 && k - b < 8 { cpu = cpu * 10 + Int(p[k] - 0x30); k += 1 }
            guard k > b + 1, k < e, p[k] == UInt8(ascii: "]"), k + 1 == e || p[k + 1] == 0x20 else { continue }
            // Walk back: spaces, optional "(  TGID)" or "(-------)", spaces, digits, '-'.
            var j = b - 1
            while j > commStart && p[j] == 0x20 { j -= 1 }
            var t: Int32 = -1
            if j > commStart && p[j] == UInt8(ascii: ")") {
                var o = j - 1
                while o > commStart && p[o] != UInt8(ascii: "(") { o -= 1 }
                guard p[o] == UInt8(ascii: "(") else { continue }
                var v: Int32 = 0, seen = false
                for x in (o + 1)..<j where p[x] >= 0x30 && p[x] <= 0x39 { v = v &* 10 &+ Int32(p[x] - 0x30); seen = true }
                t = seen ? v : -1
                j = o - 1
                while j > commStart && p[j] == 0x20 { j -= 1 }
            }
            var mult: Int32 = 1, v: Int32 = 0
            let digitsEnd = j
            while j > commStart && p[j] >= 0x30 && p[j] <= 0x39 && digitsEnd - j < 10 { v = v &+ Int32(p[j] - 0x30) &* mult; mult = mult &* 10; j -= 1 }
            guard j < digitsEnd, j >= commStart, p[j] == UInt8(ascii: "-") else { continue }
            pid = v; tgid = t; commEnd = j
            cpuOpen = b; cpuClose = k
            event.cpu = Int32(cpu)
            break
        }
        guard cpuOpen >= 0 else {
            if !rereading, let fixed = latencyFormatLine(p, commStart, e) {
                // Parsed again in the usual shape; the record keeps this line's number and offset.
                rereading = true
                defer { rereading = false }
                fixed.withUnsafeBufferPointer { b in
                    parseEventLine(b.baseAddress!, commStart: 0, b.count, lineStart: 0, offset: offset, sink: sink)
                }
                return
            }
            sink.malformed(line: lineNumber, offset: offset, reason: "no TASK-PID [CPU] prefix", text: slice(p, lineStart, e))
            return
        }
        // Flags token (optional), then the timestamp token ending in ':'.
        var i = cpuClose + 1
        while i < e && p[i] == 0x20 { i += 1 }
        var tokEnd = i
        while tokEnd < e && p[tokEnd] != 0x20 { tokEnd += 1 }
        var flags = TraceFlags()
        if tokEnd > i && p[tokEnd - 1] != UInt8(ascii: ":") {
            guard let f = parseFlags(p, i, tokEnd) else {
                sink.malformed(line: lineNumber, offset: offset, reason: "unreadable flags column", text: slice(p, lineStart, e))
                return
            }
            flags = f
            i = tokEnd
            while i < e && p[i] == 0x20 { i += 1 }
            tokEnd = i
            while tokEnd < e && p[tokEnd] != 0x20 { tokEnd += 1 }
        }
        guard tokEnd > i + 1, p[tokEnd - 1] == UInt8(ascii: ":"), let ts = parseTimestamp(p, i, tokEnd - 1) else {
            sink.malformed(line: lineNumber, offset: offset, reason: "no timestamp (SECS.USECS:)", text: slice(p, lineStart, e))
            return
        }
        // Event name.
        var n = tokEnd
        while n < e && p[n] == 0x20 { n += 1 }
        guard n < e else {
            sink.malformed(line: lineNumber, offset: offset, reason: "no event after the timestamp", text: slice(p, lineStart, e))
            return
        }
        event.kind = .event
        event.line = lineNumber
        event.offset = offset
        event.timestamp = ts
        event.pid = pid
        event.tgid = tgid
        event.flags = flags
        event.comm = slice(p, commStart, commEnd)
        event.lostCount = 0
        event.userStack = false
        if p[n] == UInt8(ascii: "<") {
            let rest = slice(p, n, e)
            if rest.starts(with: "<stack trace>".utf8) || rest.starts(with: "<user stack trace>".utf8) {
                event.kind = .stackTrace
                event.userStack = p[n + 1] == UInt8(ascii: "u")
                event.name = 0
                event.payload = slice(p, e, e)
                sink.consume(&event)
                return
            }
        }
        var m = n
        while m < e {
            let c = p[m]
            if c == UInt8(ascii: ":") || c == UInt8(ascii: "(") || c == 0x20 { break }
            m += 1
        }
        if m < e && p[m] == UInt8(ascii: ":") && (m + 1 == e || p[m + 1] == 0x20) {
            // name: payload
            event.name = names.intern(slice(p, n, m))
            event.payload = slice(p, min(m + 2, e), e)
        } else if m < e && p[m] == UInt8(ascii: "(") && m - n > 4 && p[n] == UInt8(ascii: "s") && p[n + 1] == UInt8(ascii: "y") && p[n + 2] == UInt8(ascii: "s") && p[n + 3] == UInt8(ascii: "_") {
            // sys_pkey_mprotect(start: ..., ...) -> sys_enter_pkey_mprotect
            event.name = internSyscall(prefix: "sys_enter_", p, n + 4, m)
            event.payload = slice(p, m, e)
        } else if m + 3 < e && p[m] == 0x20 && p[m + 1] == UInt8(ascii: "-") && p[m + 2] == UInt8(ascii: ">") && m - n > 4 && p[n] == UInt8(ascii: "s") && p[n + 3] == UInt8(ascii: "_") {
            // sys_memfd_secret -> 0x4 -> sys_exit_memfd_secret
            event.name = internSyscall(prefix: "sys_exit_", p, n + 4, m)
            event.payload = slice(p, min(m + 4, e), e)
        } else if m == e || (p[m] == 0x20 && m + 2 < e && p[m + 1] == UInt8(ascii: "<") && p[m + 2] == UInt8(ascii: "-")) {
            // Function tracer: do_sys_open <-__x64_sys_openat
            event.name = functionEventName
            event.payload = slice(p, n, e)
        } else {
            sink.malformed(line: lineNumber, offset: offset, reason: "event name not followed by ':'", text: slice(p, lineStart, e))
            return
        }
        sink.consume(&event)
        messageOpen = messageNames.contains(event.name)
    }

    private func internSyscall(prefix: StaticString, _ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> StringTable.ID {
        let pl = prefix.utf8CodeUnitCount
        let total = pl + (e - s)
        if total > scratch.count { return names.intern(slice(p, s - 4, e)) }
        return scratch.withUnsafeMutableBytes { buf in
            buf.baseAddress!.copyMemory(from: prefix.utf8Start, byteCount: pl)
            (buf.baseAddress! + pl).copyMemory(from: p + s, byteCount: e - s)
            return names.intern(UnsafeRawBufferPointer(rebasing: buf[0..<total]))
        }
    }

    /// `d.h1.` (5 chars, newer kernels) or `d.h1` (4 chars, older), or the 7 of a PREEMPT_RT kernel with lazy
    /// preemption (6.1-rt), whose header reads irqs-off, need-resched, need-resched-lazy, hardirq/softirq,
    /// preempt-depth, preempt-lazy-depth, migrate-disable:
    ///
    ///       rcuc/1-27      [001] ...s.12    14.033903: softirq_entry: vec=7 [action=SCHED]
    private func parseFlags(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> TraceFlags? {
        var n = e - s
        let rt = n == 7
        if rt {
            // The two lazy columns (need-resched-lazy at +2, preempt-lazy-depth at +5) are checked and set aside;
            // the other five read as the 5-column form. A need-resched-lazy mark counts as need-resched.
            guard p[s + 2] == UInt8(ascii: ".") || p[s + 2] == UInt8(ascii: "L") || p[s + 2] == UInt8(ascii: "l"),
                  hexDigit(p[s + 5]) != nil else { return nil }
            n = 5
        }
        guard n == 4 || n == 5 else { return nil }
        /// Column k of the 4/5-column form (irqs-off, need-resched, hardirq/softirq, preempt, migrate).
        @inline(__always) func col(_ k: Int) -> UInt8 { p[s + (rt && k >= 2 ? (k == 4 ? 6 : k + 1) : k)] }
        var f = TraceFlags(bits: 0)
        switch col(0) {
        case UInt8(ascii: "d"): f.bits |= TraceFlags.irqsOff
        case UInt8(ascii: "D"): f.bits |= TraceFlags.irqsOff | TraceFlags.bhOff
        case UInt8(ascii: "b"): f.bits |= TraceFlags.bhOff
        case UInt8(ascii: "X"), UInt8(ascii: "."): break
        default: return nil
        }
        switch col(1) {
        case UInt8(ascii: "N"), UInt8(ascii: "n"), UInt8(ascii: "p"), UInt8(ascii: "L"), UInt8(ascii: "l"), UInt8(ascii: "b"), UInt8(ascii: "B"):
            f.bits |= TraceFlags.needResched
        case UInt8(ascii: "."): break
        default: return nil
        }
        if rt && p[s + 2] != UInt8(ascii: ".") { f.bits |= TraceFlags.needResched }
        switch col(2) {
        case UInt8(ascii: "Z"): f.bits |= TraceFlags.nmi | TraceFlags.hardirq
        case UInt8(ascii: "z"): f.bits |= TraceFlags.nmi
        case UInt8(ascii: "H"): f.bits |= TraceFlags.hardirq | TraceFlags.softirq
        case UInt8(ascii: "h"): f.bits |= TraceFlags.hardirq
        case UInt8(ascii: "s"): f.bits |= TraceFlags.softirq
        case UInt8(ascii: "."): break
        default: return nil
        }
        guard let pd = hexDigit(col(3)) else { return nil }
        f.preemptDepth = pd
        if n == 5 {
            guard let md = hexDigit(col(4)) else { return nil }
            f.migrateDepth = md
        }
        return f
    }

    @inline(__always)
    private func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "."): return 0
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    /// `7.095703` -> 7_095_703_000 ns; up to 9 fraction digits; a bare integer is taken as ns
    /// (counter clocks print raw counts). Nil on junk or overflow.
    @inline(__always)
    private func parseTimestamp(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> UInt64? {
        var i = s
        var secs: UInt64 = 0
        var digits = 0
        while i < e && p[i] >= 0x30 && p[i] <= 0x39 {
            if digits >= 19 { return nil }
            secs = secs &* 10 &+ UInt64(p[i] - 0x30); i += 1; digits += 1
        }
        guard digits > 0 else { return nil }
        if i == e { return secs }
        guard p[i] == UInt8(ascii: ".") else { return nil }
        i += 1
        var frac: UInt64 = 0
        var fd = 0
        while i < e && p[i] >= 0x30 && p[i] <= 0x39 && fd < 9 { frac = frac * 10 + UInt64(p[i] - 0x30); i += 1; fd += 1 }
        guard i == e, fd > 0 else { return nil }
        while fd < 9 { frac *= 10; fd += 1 }
        let (ns, o1) = secs.multipliedReportingOverflow(by: 1_000_000_000)
        let (t, o2) = ns.addingReportingOverflow(frac)
        if o1 || o2 { return nil }
        return t
    }
}
