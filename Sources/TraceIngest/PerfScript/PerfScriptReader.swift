#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads `perf script` text of any event: tracepoints, probes, hardware and software counters;
/// the default fields, `--ns`, `-F` subsets (columns may be missing), and `-g` call chains.
///
///                perf 16579 [000]  1336.236964:    sched:sched_switch: prev_comm=perf prev_pid=16579 ... ==> next_comm=...
///             wl-pkey 15367 [000]  1207.837015:    syscalls:sys_enter_pkey_alloc: flags: 0x00000000, init_val: 0x00000002
///                  sh 21897 [001]   814.299958840: kmem:mm_page_alloc: page=0x10e6d5 pfn=0x10e6d5 order=0 ...   (--ns)
///                  wl  7161   279.856571: exceptions:page_fault_kernel: address=0x491118 ...                     (-F comm,tid,time,event,trace)
///     bash 12582   327.291196:     500000 cpu-clock:                                                               (-g: comm unpadded, period)
///     bash 12647 [000]   329.558896:          1        page-faults:                                                (name padded to the longest)
///                  dd 12614   328.462550:    1000000 task-clock:k:  ffffffff816c41fc vfs_fstat+0x4c ([kernel.kallsyms])
///     bash 12582/12582   327.291196987:     500000 cpu-clock:                                                     (-F pid,tid,...,period --ns)
///       327.291196: cpu-clock:                                                                                    (-F time,event,ip,sym)
///     \tffffffff817669a3 __iomap_dio_rw+0x3d3 ([kernel.kallsyms])                                                 (-g: one frame per line)
///
/// The header columns perf can print before the event (builtin-script.c `perf_sample__fprintf_start`):
/// comm (may hold blanks), `pid`, `tid` or `pid/tid`, `[cpu]`, `secs.frac:`, then the period; the
/// event column is the first other word that ends in `:`. A tracepoint or probe is named without its
/// system (`sched:sched_switch` -> `sched_switch`, `probe:do_sys_open` -> `do_sys_open`); any other event
/// keeps perf's name with its modifiers (`cycles`, `cycles:u`, `task-clock:ppp`, `cpu/cycles/`,
/// `mem:0x1000:rw`), so a counter sample is an event the probe map leaves unmapped. A sample printed
/// without an event column (`-F comm,tid,time,ip,sym`) is an event named `sample`. The side-band lines of
/// `--show-task-events`, `--show-mmap-events`, ... are events named by their record type
/// (`PERF_RECORD_FORK`, `PERF_RECORD_MMAP2`), unmapped: perf.data gives no such events, so a text with
/// them counts more events than its perf.data.
///
/// perf prints no trace-flag column, so `flags.present` is false. The first call-chain line of a
/// sample yields a `.stackTrace` record, then every line a `.stackFrame` whose payload is the symbol
/// without its offset; frames indented with blanks only, or not at all but ending in `(dso)` (tabs
/// lost in a copy: FlameGraph's test files), are read too. Tab-indented lines that are not frames (`-F +srcline`, `brstackinsn`) and
/// `  file.c:123` srcline lines belong to the sample before them. A missing time column gives
/// timestamp 0, a missing CPU column CPU 0.
public final class PerfScriptReader: TextTraceReader {
    public let names: StringTable
    public private(set) var lineNumber = 0
    private var event = RawEvent()
    private var lastWasEvent = false
    private var stackOpen = false
    private let writer = PayloadWriter()
    private let print: StringTable.ID
    private let markWrite: StringTable.ID
    private let unnamedSample: StringTable.ID

    public init(names: StringTable) {
        self.names = names
        print = names.intern("print")
        markWrite = names.intern("tracing_mark_write")
        unnamedSample = names.intern("sample")
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

    /// A sample line; not a blank line, a tab-indented call-chain line (`\tffffffff817669a3 __iomap_dio_rw+0x3d3 (...)`)
    /// or a srcline line (`  mm/filemap.c:3531`).
    public func startsRecord(_ line: UnsafeRawBufferPointer) -> Bool {
        guard let base = line.baseAddress, line.count > 0 else { return false }
        let p = base.assumingMemoryBound(to: UInt8.self)
        var i = 0
        while i < line.count && (line[i] == 0x20 || line[i] == 0x09) { i += 1 }
        if i == line.count { return false }
        // An unindented frame (`ffffffff8103d0ca native_write_msr_safe ([kernel.kallsyms])`, tabs lost in a copy).
        guard i > 0 else { return !(line[line.count - 1] == UInt8(ascii: ")") && frameAddressEnd(p, 0, line.count) != nil) }
        if memchr(p, 0x09, i) != nil { return false }
        if frameAddressEnd(p, i, line.count) != nil { return false }
        return !isSrcline(p, i, line.count)
    }

    /// Where the address of a call-chain frame indented by blanks only ends, or nil when the line is
    /// not one: `    7fd1bb63d4ee _nl_load_locale (...)` is a frame, `      dd 12614   328.462550: ...` (a comm
    /// that spells a hex number, then a pid) is a sample header.
    private func frameAddressEnd(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Int? {
        var h = s
        while h < e && isHex(p[h]) { h += 1 }
        guard h > s && (h == e || p[h] == 0x20) else { return nil }
        var t = h
        while t < e && p[t] == 0x20 { t += 1 }
        var te = t
        while te < e && p[te] != 0x20 { te += 1 }
        // A pid, a time or an event column after the first word: a sample header (`dd 12614 ...`, `dd cycles:`).
        if te > t && (pidColumn(p, t, te) != nil || p[te - 1] == UInt8(ascii: ":")) { return nil }
        return h
    }

    /// `  mm/filemap.c:3531`: one word ending in `:DIGITS`, indented (perf's `-F +srcline` under a frame).
    private func isSrcline(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Bool {
        var k = e
        while k > s && p[k - 1] >= 0x30 && p[k - 1] <= 0x39 { k -= 1 }
        guard k < e, k > s + 1, p[k - 1] == UInt8(ascii: ":") else { return false }
        for j in s..<k where p[j] == 0x20 || p[j] == 0x09 { return false }
        return true
    }

    /// Any srcline perf prints under a sample or frame (`map__fprintf_srcline` with prefix "\n  "): two
    /// blanks, then a word that is not a sample header's first column:
    ///
    ///       dl-lookup.c:413
    ///       [kernel.kallsyms][ffffffff821f5127]
    ///       ??:0
    ///       mm/filemap.c:3531 (discriminator 2)
    /// A header indented by its padded comm (`  kworker/0:1-ev 123 [000] ...`) has a pid, time or
    /// `EVENT:` word after the first; a srcline has none.
    private func isSrclineUnderSample(_ p: UnsafePointer<UInt8>, _ lineStart: Int, _ i: Int, _ e: Int) -> Bool {
        guard i == lineStart + 2, p[lineStart] == 0x20, p[lineStart + 1] == 0x20 else { return false }
        if isSrcline(p, i, e) { return true }
        var te = i
        while te < e && p[te] != 0x20 { te += 1 }
        if p[te - 1] == UInt8(ascii: ":") { return false }
        var t = te
        while t < e && p[t] == 0x20 { t += 1 }
        if t == e { return true }
        var t2 = t
        while t2 < e && p[t2] != 0x20 { t2 += 1 }
        if pidColumn(p, t, t2) != nil || p[t2 - 1] == UInt8(ascii: ":") { return false }
        return p[t] == UInt8(ascii: "(")      // "file.c:12 (discriminator 2)", "(inlined)"
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
        if i > s {
            // A call-chain line: indented (a tab, or blanks only), hex address, then blank + symbol or the end.
            let tabbed = memchr(p + s, 0x09, i - s) != nil
            var h: Int? = nil
            if tabbed {
                var k = i
                while k < e && isHex(p[k]) { k += 1 }
                if k > i && (k == e || p[k] == 0x20) { h = k }
            } else if lastWasEvent || stackOpen {
                h = frameAddressEnd(p, i, e)
            }
            if let h {
                if lastWasEvent || stackOpen { frame(p, h, e, offset: offset, sink: sink) }
                return
            }
            // Other lines under a sample: tab-indented (brstackinsn, +insn) or a srcline.
            if tabbed || isSrcline(p, i, e) { return }
            if (lastWasEvent || stackOpen) && isSrclineUnderSample(p, s, i, e) { return }
        } else if (lastWasEvent || stackOpen) && p[e - 1] == UInt8(ascii: ")"), let h = frameAddressEnd(p, i, e) {
            // A frame whose indentation was lost (`ffffffff8103d0ca native_write_msr_safe ([kernel.kallsyms])`,
            // as in files passed through editors or `sed 's/^\s*//'`): address, symbol, `(dso)`.
            frame(p, h, e, offset: offset, sink: sink)
            return
        }
        stackOpen = false
        lastWasEvent = false
        parseSample(p, i, e, lineStart: s, offset: offset, sink: sink)
    }

    /// One frame `ADDR SYMBOL+OFF (DSO)`; `h` is the end of the address.
    private func frame(_ p: UnsafePointer<UInt8>, _ h: Int, _ e: Int, offset: Int, sink: RawEventSink) {
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
        if a >= e {
            // Address only (`-F ip` without sym): the address is the frame.
            var k = h
            while k > 0 && isHex(p[k - 1]) { k -= 1 }
            a = k; b = h
        }
        event.kind = .stackFrame
        event.line = lineNumber
        event.offset = offset
        event.payload = slice(p, a, b)
        sink.consume(&event)
    }

    /// `COMM PID/TID [CPU] SECS.FRAC: PERIOD EVENT: payload`, any column may be absent.
    private func parseSample(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, lineStart: Int, offset: Int, sink: RawEventSink) {
        var ts: UInt64 = 0, cpu: Int32 = 0, tid: Int32 = 0
        var commEnd = s          // end of the comm column (exclusive)
        var sawPid = false, sawCPU = false, sawTime = false
        var i = s
        var nameStart = -1, nameEnd = -1, payloadStart = e
        var sideBand = false
        while i < e {
            while i < e && p[i] == 0x20 { i += 1 }
            let t = i
            while i < e && p[i] != 0x20 { i += 1 }
            let te = i
            if te == t { break }
            let last = p[te - 1]
            if last == UInt8(ascii: ":") && te - t >= 2 {
                if isTimestamp(p, t, te - 1) {
                    if !sawTime { ts = parseTimestamp(p, t, te - 1) ?? 0; sawTime = true }
                    continue
                }
                // The event column: the first other word ending in ':' (`sched:sched_switch:`, `cycles:u:`).
                nameStart = t
                nameEnd = te - 1
                var q = te
                while q < e && p[q] == 0x20 { q += 1 }
                payloadStart = q
                break
            }
            if p[t] == UInt8(ascii: "P") && te - t > 12 && startsWith(p, t, te, "PERF_RECORD_") {
                // --show-task-events / --show-mmap-events side-band lines, named by the record type:
                //     PERF_RECORD_MMAP2 1234/1234: [...]     PERF_RECORD_FORK(14223:14223):(14221:14221)
                nameStart = t
                nameEnd = t + 12
                while nameEnd < te && (p[nameEnd] == UInt8(ascii: "_") || (p[nameEnd] >= 0x41 && p[nameEnd] <= 0x5A) || (p[nameEnd] >= 0x30 && p[nameEnd] <= 0x39)) { nameEnd += 1 }
                sideBand = true
                payloadStart = nameEnd
                while payloadStart < e && (p[payloadStart] == 0x20 || p[payloadStart] == UInt8(ascii: ":")) { payloadStart += 1 }
                break
            }
            if !sawCPU && !sawTime && p[t] == UInt8(ascii: "[") && last == UInt8(ascii: "]") && te - t >= 3, let c = digits(p, t + 1, te - 1) {
                cpu = Int32(truncatingIfNeeded: c)
                sawCPU = true
                continue
            }
            if !sawPid && !sawCPU && !sawTime, let v = pidColumn(p, t, te) {
                tid = v
                sawPid = true
                continue
            }
            if sawTime {
                // The period, or `-F ip,sym` without a call chain printed before the event: leave it to the payload.
                if digits(p, t, te) != nil { continue }
                nameStart = -1
                payloadStart = t
                break
            }
            if !sawPid && !sawCPU { commEnd = te }
        }
        var name: StringTable.ID
        if nameStart >= 0, nameEnd > nameStart {
            name = sideBand ? names.intern(slice(p, nameStart, nameEnd)) : eventName(p, nameStart, nameEnd)
        } else if sawTime || sawPid || sawCPU {
            name = unnamedSample
        } else {
            sink.malformed(line: lineNumber, offset: offset, reason: "no EVENT: column and no pid, [cpu] or time column", text: slice(p, lineStart, e))
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
        var payload = slice(p, payloadStart, e)
        if name == print {
            // ftrace:print: ip=... buf=TEXT -> tracing_mark_write: TEXT
            name = markWrite
            if let b = find(payload, " buf=") {
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
        event.name = name
        event.payload = payload
        sink.consume(&event)
        lastWasEvent = true
    }

    /// perf's event name `p[s..<e]` (without the column's final colon) -> the name events go by.
    ///
    ///     sched:sched_switch   -> sched_switch       a tracepoint: its system dropped
    ///     probe:do_sys_open    -> do_sys_open        a probe (`probe`, `probe_libc`, ...) likewise
    ///     cycles / cycles:u    -> cycles / cycles:u  a counter: perf's name, modifiers kept
    ///     task-clock:ppp, cpu/cycles/u, r003c:k, mem:0x1000:rw  kept whole
    func eventName(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> StringTable.ID {
        PerfScriptReader.eventName(p, s, e, names: names)
    }

    /// `eventName` for any string table (the perf.data reader names its counter events the same way).
    static func eventName(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, names: StringTable) -> StringTable.ID {
        func slice(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: p + s, count: max(0, e - s)) }
        var colon = -1
        for k in s..<e where p[k] == UInt8(ascii: ":") { colon = k; break }
        guard colon > s, colon + 1 < e else { return names.intern(slice(p, s, e)) }
        // `NAME:MODIFIERS` of a counter: everything after the colon is a modifier letter.
        var allModifiers = true
        for k in (colon + 1)..<e where !PerfScriptReader.modifierLetters.contains(p[k]) { allModifiers = false; break }
        if allModifiers { return names.intern(slice(p, s, e)) }
        // A breakpoint `mem:ADDR[:rwx]` or a PMU event `cpu/event=0x3c/`.
        if startsWith(p, s, e, "mem:") { return names.intern(slice(p, s, e)) }
        for k in s..<colon where p[k] == UInt8(ascii: "/") { return names.intern(slice(p, s, e)) }
        // SYSTEM:EVENT[:MODIFIERS]: the event.
        var end = e
        for k in (colon + 1)..<e where p[k] == UInt8(ascii: ":") { end = k; break }
        return names.intern(slice(p, colon + 1, end))
    }

    /// perf's event modifiers (tools/perf/util/parse-events.l `modifier_event`).
    private static let modifierLetters: Set<UInt8> = Set("ukhIGHpPSDWebR".utf8)

    private func startsWith(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, _ prefix: StaticString) -> Bool {
        PerfScriptReader.startsWith(p, s, e, prefix)
    }

    private static func startsWith(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, _ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        guard e - s >= n else { return false }
        for k in 0..<n where p[s + k] != prefix.utf8Start[k] { return false }
        return true
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
