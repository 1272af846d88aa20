#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads `perf script` text: the default fields, `--ns`, `-F` subsets (columns may be missing),
/// and `-g` call chains.
///
///                perf 16579 [000]  1336.236964:    sched:sched_switch: prev_comm=perf prev_pid=16579 ... ==> next_comm=...
///             wl-pkey 15367 [000]  1207.837015:    syscalls:sys_enter_pkey_alloc: flags: 0x00000000, init_val: 0x00000002
///                  sh 21897 [001]   814.299958840: kmem:mm_page_alloc: page=0x10e6d5 pfn=0x10e6d5 order=0 ...   (--ns)
///                  wl  7161   279.856571: exceptions:page_fault_kernel: address=0x491118 ...                     (-F comm,tid,time,event,trace)
///     \tffffffff817669a3 __iomap_dio_rw+0x3d3 ([kernel.kallsyms])                                                 (-g: one frame per line)
///
/// The event name is the tracepoint's name without its system (`sched_switch`); perf prints no
/// trace-flag column, so `flags.present` is false. The first call-chain line of a sample yields a
/// `.stackTrace` record, then every line a `.stackFrame` whose payload is the symbol without its
/// offset. A missing time column gives timestamp 0, a missing CPU column CPU 0.
public final class PerfScriptReader: TextTraceReader {
    public let names: StringTable
    public private(set) var lineNumber = 0
    private var event = RawEvent()
    private var lastWasEvent = false
    private var stackOpen = false
    private let writer = PayloadWriter()
    private var nameScratch = [UInt8](repeating: 0, count: 256)
    private let print: StringTable.ID
    private let markWrite: StringTable.ID

    public init(names: StringTable) {
        self.names = names
        print = names.intern("print")
        markWrite = names.intern("tracing_mark_write")
    }

    public func read(_ chunk: UnsafeRawBufferPointer, offset: Int, into sink: RawEventSink) {
        Lines.forEach(in: chunk) { p, s, e in
            lineNumber += 1
            parseLine(p, s, e, offset: offset + s, sink: sink)
        }
    }

    public func beginPiece() {
        lineNumber = 0
        lastWasEvent = false
        stackOpen = false
    }

    /// A sample line; not a blank line or an indented call-chain line (`\tffffffff817669a3 __iomap_dio_rw+0x3d3 (...)`).
    public func startsRecord(_ line: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < line.count && (line[i] == 0x20 || line[i] == 0x09) { i += 1 }
        if i == line.count { return false }
        guard i > 0 else { return true }
        var h = i
        while h < line.count && isHex(line[h]) { h += 1 }
        return !(h > i && h < line.count && line[h] == 0x20)
    }

    @inline(__always)
    private func slice(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: p + s, count: max(0, e - s))
    }

    @inline(__always) private func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
    }

    private func parseLine(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, offset: Int, sink: RawEventSink) {
        var i = s
        while i < e && (p[i] == 0x20 || p[i] == 0x09) { i += 1 }
        if i == e { lastWasEvent = false; stackOpen = false; return }     // blank: a sample's call chain ends
        if p[i] == UInt8(ascii: "#") { return }
        // A call-chain line: indented, hex address, blank, symbol.
        if i > s {
            var h = i
            while h < e && isHex(p[h]) { h += 1 }
            if h > i && h < e && p[h] == 0x20 && (lastWasEvent || stackOpen) {
                if !stackOpen {
                    event.kind = .stackTrace
                    event.name = 0
                    event.userStack = false
                    event.payload = UnsafeRawBufferPointer(start: nil, count: 0)
                    event.line = lineNumber
                    event.offset = offset
                    sink.consume(&event)
                    stackOpen = true
                }
                var a = h + 1
                while a < e && p[a] == 0x20 { a += 1 }
                var b = a
                while b < e && p[b] != UInt8(ascii: "+") && !(p[b] == 0x20 && b + 1 < e && p[b + 1] == UInt8(ascii: "(")) { b += 1 }
                event.kind = .stackFrame
                event.line = lineNumber
                event.offset = offset
                event.payload = slice(p, a, b)
                sink.consume(&event)
                return
            }
        }
        stackOpen = false
        lastWasEvent = false
        parseSample(p, i, e, lineStart: s, offset: offset, sink: sink)
    }

    /// `COMM TID [CPU] SECS.FRAC: [PERIOD] SYS:NAME: payload`, any column but the event may be absent.
    private func parseSample(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, lineStart: Int, offset: Int, sink: RawEventSink) {
        var ts: UInt64 = 0, cpu: Int32 = 0, tid: Int32 = 0
        var commEnd = s          // end of the comm column (exclusive)
        var sawNumericColumn = false
        var i = s
        var nameStart = -1, nameEnd = -1, payloadStart = e
        while i < e {
            while i < e && p[i] == 0x20 { i += 1 }
            let t = i
            while i < e && p[i] != 0x20 { i += 1 }
            let te = i
            if te == t { break }
            let last = p[te - 1]
            // The event column: "sys:name:" (a colon inside and at the end).
            if last == UInt8(ascii: ":") && te - t > 2, let c = memchr(p + t, Int32(UInt8(ascii: ":")), te - 1 - t) {
                let colon = UnsafePointer<UInt8>(c.assumingMemoryBound(to: UInt8.self)) - p
                if !isTimestamp(p, t, te - 1) {
                    nameStart = colon + 1
                    nameEnd = te - 1
                    var q = te
                    while q < e && p[q] == 0x20 { q += 1 }
                    payloadStart = q
                    break
                }
            }
            if last == UInt8(ascii: ":") && isTimestamp(p, t, te - 1) {
                ts = parseTimestamp(p, t, te - 1) ?? 0
                sawNumericColumn = true
                continue
            }
            if p[t] == UInt8(ascii: "[") && last == UInt8(ascii: "]") && te - t >= 3, let c = digits(p, t + 1, te - 1) {
                cpu = Int32(truncatingIfNeeded: c)
                sawNumericColumn = true
                continue
            }
            if !sawNumericColumn, let v = pidColumn(p, t, te), t > s {
                tid = v
                sawNumericColumn = true
                continue
            }
            if !sawNumericColumn { commEnd = te }
        }
        guard nameStart >= 0, nameEnd > nameStart else {
            sink.malformed(line: lineNumber, offset: offset, reason: "no SYSTEM:EVENT: column", text: slice(p, lineStart, e))
            return
        }
        event.kind = .event
        event.line = lineNumber
        event.offset = offset
        event.timestamp = ts
        event.cpu = cpu
        event.pid = tid
        event.tgid = -1
        event.flags = TraceFlags()
        event.comm = slice(p, s, commEnd)
        event.lostCount = 0
        event.userStack = false
        event.name = names.intern(slice(p, nameStart, nameEnd))
        var payload = slice(p, payloadStart, e)
        if event.name == print {
            // ftrace:print: ip=... buf=TEXT -> tracing_mark_write: TEXT
            if let b = find(payload, " buf=") {
                event.name = markWrite
                payload = UnsafeRawBufferPointer(rebasing: payload[(b + 5)...])
            }
        } else if payload.first == UInt8(ascii: "("), let close = find(payload, ")"),
                  let arrow = find(UnsafeRawBufferPointer(rebasing: payload[0..<close]), " <- ") {
            // libtraceevent prints a kretprobe as (FUNC <- CALLER); ftrace as (CALLER <- FUNC).
            writer.reset()
            writer.append("(")
            writer.append(payload.baseAddress! + arrow + 4, close - arrow - 4)
            writer.append(" <- ")
            writer.append(payload.baseAddress! + 1, arrow - 1)
            writer.append(payload.baseAddress! + close, payload.count - close)
            payload = writer.bytes
        }
        event.payload = payload
        sink.consume(&event)
        lastWasEvent = true
    }

    private func find(_ hay: UnsafeRawBufferPointer, _ s: StaticString) -> Int? {
        let n = s.utf8CodeUnitCount
        guard hay.count >= n else { return nil }
        var i = 0
        while i + n <= hay.count {
            var j = 0
            while j < n && hay[i + j] == s.utf8Start[j] { j += 1 }
            if j == n { return i }
            i += 1
        }
        return nil
    }

    private func digits(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Int? {
        guard e > s, e - s <= 9 else { return nil }
        var v = 0
        for k in s..<e {
            guard p[k] >= 0x30 && p[k] <= 0x39 else { return nil }
            v = v * 10 + Int(p[k] - 0x30)
        }
        return v
    }

    /// `16579` or `15367/15367` (pid/tid: the tid is taken).
    private func pidColumn(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Int32? {
        var k = s
        while k < e && p[k] != UInt8(ascii: "/") { k += 1 }
        if k < e {
            guard digits(p, s, k) != nil, let t = digits(p, k + 1, e) else { return nil }
            return Int32(t)
        }
        return digits(p, s, e).map { Int32($0) }
    }

    private func isTimestamp(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Bool {
        var dot = false, d = 0
        for k in s..<e {
            if p[k] == UInt8(ascii: ".") { if dot { return false }; dot = true; continue }
            guard p[k] >= 0x30 && p[k] <= 0x39 else { return false }
            d += 1
        }
        return dot && d >= 2
    }

    /// `1336.236964` (µs) or `279.856892941` (`--ns`) -> ns.
    private func parseTimestamp(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> UInt64? {
        var i = s
        var secs: UInt64 = 0
        var d = 0
        while i < e && p[i] >= 0x30 && p[i] <= 0x39 {
            if d >= 12 { return nil }
            secs = secs * 10 + UInt64(p[i] - 0x30); i += 1; d += 1
        }
        guard i < e, p[i] == UInt8(ascii: ".") else { return nil }
        i += 1
        var frac: UInt64 = 0, fd = 0
        while i < e && p[i] >= 0x30 && p[i] <= 0x39 && fd < 9 { frac = frac * 10 + UInt64(p[i] - 0x30); i += 1; fd += 1 }
        while fd < 9 { frac *= 10; fd += 1 }
        return secs &* 1_000_000_000 &+ frac
    }
}
