/// Reads `trace-cmd report` text, plugin-formatted or raw (`-R`), with the latency flags (`-l`, CPU
/// and flags in one word: `init-1  1d..2.  5.010493:`), `-t` (ns), `--ts-diff` (`5.007548: (+1178)`), `-q`,
/// `-N`, `-w` (its closing summary skipped) and `--debug` (its `[SUBBUFFER START]` marks skipped).
///
/// The line shape is ftrace's (`comm-pid [cpu] secs.usecs: name: payload`), so lines are split by
/// `FtraceTextReader`; this reader then undoes what trace-cmd does differently:
///
///     cpus=2                                                                         header: skipped (cpus noted)
///     init-1 [001] 7.093459: page_fault_user:      address=0x5e3c80 ...               padded name column: blanks trimmed
///     init-1 [001] 5.006370: print:                tracing_mark_write: capture start  -> tracing_mark_write: capture start
///     init-1 [001] 5.006370: print:                ip=tracing_mark_write buf=capture start   (-R)
///     <idle>-0 [000] 7.095535: sched_switch:       swapper/0:0 [120] R ==> init:321 [120]
///                                                  -> prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=init ...
///     ... sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=0 next_comm=... (-R: state as a number -> letters)
///     ... kernel_stack:         <stack trace >    then    => kprobe_trace_func (ffffffff811f55d5)
///     ... handle_mm_fault:      (ffffffff812d2af0) vma=...                           kprobe address kept unresolved
///     ... __get_user_pages_ret: (ffffffff812c4ec0 <- ffffffff812c6096) ret=1          kretprobe: trace-cmd prints (func <- caller);
///                                                                                     turned into ftrace's (caller <- func)
///     ... handle_mm_fault:      __probe_ip=ffffffff812d2af0 vma=...                   (-R) -> (ffffffff812d2af0) vma=...
public final class TraceCmdReportReader: TextTraceReader {
    public let names: StringTable
    private let inner: FtraceTextReader
    private let adapter: Adapter
    /// The `cpus=N` header, when present.
    public var headerCPUs: Int? { adapter.headerCPUs }
    /// Lines trace-cmd report prints that are no records (`-w`'s summary).
    static let notes: [[UInt8]] = ["Average wakeup latency", "Maximum Latency", "Minimum Latency"].map { Array($0.utf8) }

    public init(names: StringTable) {
        self.names = names
        inner = FtraceTextReader(names: names)
        adapter = Adapter(names: names)
    }

    public func read(_ chunk: UnsafeRawBufferPointer, offset: Int, into sink: RawEventSink) {
        adapter.target = sink
        inner.read(chunk, offset: offset, into: adapter)
        adapter.target = nil
    }

    public var lineNumber: Int { inner.lineNumber }
    public func beginPiece() { inner.beginPiece() }
    public func startsRecord(_ line: UnsafeRawBufferPointer) -> Bool { inner.startsRecord(line) }

    final class Adapter: RawEventSink {
        var target: RawEventSink?
        var headerCPUs: Int?
        let print, kernelStack, userStack, schedSwitch, markWrite, fork: StringTable.ID
        let writer = PayloadWriter()

        /// Reads the lines `variantLine` rewrote into the shape the inner reader knows.
        private let reparser: FtraceTextReader
        /// The line and offset of the line being re-read, for the records and messages it gives.
        private var rereading: (line: Int, offset: Int)?

        init(names: StringTable) {
            reparser = FtraceTextReader(names: names)
            print = names.intern("print")
            kernelStack = names.intern("kernel_stack")
            userStack = names.intern("user_stack")
            schedSwitch = names.intern("sched_switch")
            markWrite = names.intern("tracing_mark_write")
            fork = names.intern("sched_process_fork")
        }

        func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) {
            if text.starts(with: "cpus=".utf8) {
                var v = 0
                for c in text.dropFirst(5) where c >= 0x30 && c <= 0x39 { v = v &* 10 &+ Int(c - 0x30) }
                headerCPUs = v
                return
            }
            if text.starts(with: "version = ".utf8) || text.starts(with: "CPU ".utf8) { return }
            // Not records: `-w`'s closing summary, `--debug`'s sub-buffer marks
            // ("CPU:1 [SUBBUFFER START] [5006370091:0x1c000]").
            for note in TraceCmdReportReader.notes where text.starts(with: note) { return }
            if text.starts(with: "CPU:".utf8) && indexOf(text, "[SUBBUFFER START]") != nil { return }
            if let r = rereading {
                target?.malformed(line: r.line, offset: r.offset, reason: reason, text: text)
                return
            }
            if let fixed = variantLine(text) {
                rereading = (line, offset)
                reparser.beginPiece()
                fixed.withUnsafeBytes { reparser.read($0, offset: offset, into: self) }
                rereading = nil
                return
            }
            target?.malformed(line: line, offset: offset, reason: reason, text: text)
        }

        /// A line of `trace-cmd report -l` or `--ts-diff` in ftrace's shape, or nil:
        ///
        ///     init-1       1d..2.     5.006370: print: ...         (-l: CPU and flags in one word)
        ///     -> init-1 [001] d..2. 5.006370: print: ...
        ///     init-1     [001]     5.007548: (+1178)  mm_page_alloc: ...     (--ts-diff)
        ///     -> init-1     [001]     5.007548: mm_page_alloc: ...
        func variantLine(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
            var words: [Range<Int>] = []
            var i = 0
            while i < text.count && words.count < 8 {
                while i < text.count && text[i] == 0x20 { i += 1 }
                let s = i
                while i < text.count && text[i] != 0x20 { i += 1 }
                if i > s { words.append(s..<i) }
            }
            func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
            func isTimestamp(_ r: Range<Int>) -> Bool {
                guard r.count >= 4, text[r.upperBound - 1] == UInt8(ascii: ":") else { return false }
                var dot = false
                for k in r.lowerBound..<(r.upperBound - 1) {
                    if text[k] == UInt8(ascii: ".") { if dot { return false }; dot = true } else if !isDigit(text[k]) { return false }
                }
                return dot
            }
            guard let t = words.firstIndex(where: isTimestamp), t >= 1 else { return nil }
            var out: [UInt8]
            var changed = false
            let before = words[t - 1]
            // -l: "1d..2." before the timestamp (CPU digits, then 4 or 5 flag characters), no "[CPU]" word.
            var d = before.lowerBound
            while d < before.upperBound && isDigit(text[d]) { d += 1 }
            let flagCount = before.upperBound - d
            if d > before.lowerBound && d - before.lowerBound <= 5 && (flagCount == 4 || flagCount == 5) {
                out = Array(text[0..<before.lowerBound]) + Array("[".utf8) + Array(text[before.lowerBound..<d]) + Array("] ".utf8)
                out += text[d..<before.upperBound]
                out.append(0x20)
                changed = true
            } else {
                out = Array(text[0..<words[t].lowerBound])
            }
            out += text[words[t]]
            var rest = words[t].upperBound
            // --ts-diff: "(+1178)" after the timestamp.
            if t + 1 < words.count {
                let w = words[t + 1]
                if w.count >= 4 && text[w.lowerBound] == UInt8(ascii: "(") && text[w.upperBound - 1] == UInt8(ascii: ")")
                    && (text[w.lowerBound + 1] == UInt8(ascii: "+") || text[w.lowerBound + 1] == UInt8(ascii: "-")) {
                    rest = w.upperBound
                    changed = true
                }
            }
            guard changed else { return nil }
            out += text[rest...]
            out.append(0x0A)
            return out
        }

        func consume(_ ev: inout RawEvent) {
            guard let target else { return }
            if let r = rereading { ev.line = r.line; ev.offset = r.offset }
            switch ev.kind {
            case .stackFrame:
                // "kprobe_trace_func (ffffffff811f55d5)" -> "kprobe_trace_func"
                let p = ev.payload
                var end = p.count
                if let i = indexOf(p, " (") { end = i }
                ev.payload = UnsafeRawBufferPointer(rebasing: p[0..<end])
            case .event:
                // A line of another buffer instance (trace-cmd record -B NAME) starts with "NAME:":
                //     second:               dd-13448 [000]   366.964480: sched_wakeup:  bash:13439 [120] CPU:000
                if let c = indexOf(ev.comm, ": ") {
                    var k = c + 2
                    while k < ev.comm.count && ev.comm[k] == 0x20 { k += 1 }
                    if k < ev.comm.count && indexOf(UnsafeRawBufferPointer(rebasing: ev.comm[0..<c]), " ") == nil {
                        ev.comm = UnsafeRawBufferPointer(rebasing: ev.comm[k...])
                    }
                }
                var p = ev.payload
                while let f = p.first, f == 0x20 { p = UnsafeRawBufferPointer(rebasing: p.dropFirst()) }
                ev.payload = p
                if ev.name == print {
                    // The trace_marker event is tracing_mark_write in every format (trace.dat, ftrace text).
                    ev.name = markWrite
                    if p.starts(with: "ip=".utf8), let b = indexOf(p, " buf=") {
                        var q = UnsafeRawBufferPointer(rebasing: p[(b + 5)...])
                        while let l = q.last, l == 0x0A || l == 0x20 { q = UnsafeRawBufferPointer(rebasing: q.dropLast()) }
                        ev.payload = q
                    } else if let c = indexOf(p, ": "), indexOf(UnsafeRawBufferPointer(rebasing: p[0..<c]), " ") == nil {
                        // The print plugin's "%ps: %s" of ip and text: "tracing_mark_write: capture start",
                        // "0xffffffff8149ab1a: one write:" (no kallsyms in the file).
                        ev.payload = UnsafeRawBufferPointer(rebasing: p[(c + 2)...])
                    }
                } else if ev.name == kernelStack || ev.name == userStack {
                    ev.kind = .stackTrace
                    ev.userStack = ev.name == userStack
                    ev.name = 0
                    let raw = p
                    ev.payload = UnsafeRawBufferPointer(start: nil, count: 0)
                    if raw.starts(with: "size=".utf8) {
                        // -R: "size=12 caller=ARRAY[d5, 55, 1f, 81, ff, ff, ff, ff, ...]": the frames are the
                        // little-endian longs of the array, printed as addresses (no kallsyms in the text).
                        target.consume(&ev)
                        rawFrames(raw, &ev, target)
                        return
                    }
                } else if ev.name == schedSwitch {
                    if rewriteSchedSwitch(p) { ev.payload = writer.bytes }
                } else if ev.name == fork && p.starts(with: "parent_comm=".utf8) {
                    // -R prints field names; ftrace prints the format's labels (comm=, pid=).
                    writer.reset()
                    var i = 0
                    while i < p.count {
                        if (i == 0 || p[i - 1] == 0x20) && UnsafeRawBufferPointer(rebasing: p[i...]).starts(with: "parent_".utf8) { i += 7; continue }
                        writer.byte(p[i])
                        i += 1
                    }
                    ev.payload = writer.bytes
                } else if p.first == UInt8(ascii: "(") {
                    if swapRetprobe(p) { ev.payload = writer.bytes }
                } else if p.starts(with: "__probe_ip=".utf8) || p.starts(with: "__probe_func=".utf8) {
                    if rawProbe(p) { ev.payload = writer.bytes }
                }
            default:
                break
            }
            target.consume(&ev)
        }

        private func rawFrames(_ p: UnsafeRawBufferPointer, _ ev: inout RawEvent, _ target: RawEventSink) {
            var count = 0
            var i = 5
            while i < p.count && p[i] >= 0x30 && p[i] <= 0x39 { count = count &* 10 &+ Int(p[i] - 0x30); i += 1 }
            guard let open = indexOf(p, "ARRAY[") else { return }
            var bytes: [UInt8] = []
            var j = open + 6
            var v = 0, digits = 0
            while j < p.count && p[j] != UInt8(ascii: "]") {
                let c = p[j]
                if let d = hexValue(c) { v = v * 16 + d; digits += 1 } else if digits > 0 { bytes.append(UInt8(truncatingIfNeeded: v)); v = 0; digits = 0 }
                j += 1
            }
            if digits > 0 { bytes.append(UInt8(truncatingIfNeeded: v)) }
            let n = min(count, bytes.count / 8)
            ev.kind = .stackFrame
            for k in 0..<n {
                var a: UInt64 = 0
                for b in (0..<8).reversed() { a = a << 8 | UInt64(bytes[k * 8 + b]) }
                if a == 0 || a == .max { break }
                writer.reset()
                writer.hex(a)
                ev.payload = writer.bytes
                target.consume(&ev)
            }
        }

        private func hexValue(_ c: UInt8) -> Int? {
            switch c {
            case 0x30...0x39: return Int(c - 0x30)
            case 0x61...0x66: return Int(c - 0x61 + 10)
            case 0x41...0x46: return Int(c - 0x41 + 10)
            default: return nil
            }
        }

        private func indexOf(_ p: UnsafeRawBufferPointer, _ s: StaticString) -> Int? {
            let n = s.utf8CodeUnitCount
            guard p.count >= n else { return nil }
            let sp = s.utf8Start
            var i = 0
            while i + n <= p.count {
                if p[i] == sp[0] {
                    var j = 1
                    while j < n && p[i + j] == sp[j] { j += 1 }
                    if j == n { return i }
                }
                i += 1
            }
            return nil
        }

        private func slice(_ p: UnsafeRawBufferPointer, _ a: Int, _ b: Int) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: p[max(0, a)..<max(max(0, a), min(b, p.count))])
        }

        /// `COMM:PID [PRIO]` (the comm may hold ':' and blanks): (comm, pid, prio) slices.
        private func task(_ p: UnsafeRawBufferPointer) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer)? {
            var lb = p.count - 1
            while lb >= 0 && p[lb] != UInt8(ascii: "[") { lb -= 1 }
            guard lb >= 1 else { return nil }
            var rb = lb
            while rb < p.count && p[rb] != UInt8(ascii: "]") { rb += 1 }
            guard rb < p.count else { return nil }
            var colon = lb - 1
            while colon >= 0 && p[colon] != UInt8(ascii: ":") { colon -= 1 }
            guard colon >= 0 else { return nil }
            var pidEnd = lb
            while pidEnd > colon + 1 && p[pidEnd - 1] == 0x20 { pidEnd -= 1 }
            return (slice(p, 0, colon), slice(p, colon + 1, pidEnd), slice(p, lb + 1, rb))
        }

        /// `swapper/0:0 [120] R ==> init:321 [120]` -> ftrace's `prev_comm=... next_prio=120`;
        /// `-R`'s numeric `prev_state=0` -> `prev_state=R`.
        private func rewriteSchedSwitch(_ p: UnsafeRawBufferPointer) -> Bool {
            if p.starts(with: "prev_comm=".utf8) {
                // Raw: only the state needs letters (and the "==>" separator is absent).
                guard let r = Fields.valueRange(UnsafeRawBufferPointer(start: ("prev_state" as StaticString).utf8Start, count: 10), in: p),
                      let state = Fields.parseInteger(UnsafeRawBufferPointer(rebasing: p[r])) else { return false }
                writer.reset()
                writer.append(p.baseAddress!, r.lowerBound)
                TaskState.write(state, into: writer)
                var rest = slice(p, r.upperBound, p.count)
                if !rest.starts(with: " ==>".utf8) { writer.append(" ==>") }
                writer.append(rest.baseAddress ?? p.baseAddress!, rest.count)
                rest = UnsafeRawBufferPointer(start: nil, count: 0)
                return true
            }
            guard let arrow = indexOf(p, " ==> ") else { return false }
            let left = slice(p, 0, arrow)
            let right = slice(p, arrow + 5, p.count)
            // Left: "COMM:PID [PRIO] STATE"
            var sp = left.count - 1
            while sp >= 0 && left[sp] != 0x20 { sp -= 1 }
            guard sp > 0 else { return false }
            let state = slice(left, sp + 1, left.count)
            guard let prev = task(slice(left, 0, sp)), let next = task(right) else { return false }
            writer.reset()
            writer.append("prev_comm="); writer.append(prev.0.baseAddress ?? p.baseAddress!, prev.0.count)
            writer.append(" prev_pid="); writer.append(prev.1.baseAddress ?? p.baseAddress!, prev.1.count)
            writer.append(" prev_prio="); writer.append(prev.2.baseAddress ?? p.baseAddress!, prev.2.count)
            writer.append(" prev_state="); writer.append(state.baseAddress ?? p.baseAddress!, state.count)
            writer.append(" ==> next_comm="); writer.append(next.0.baseAddress ?? p.baseAddress!, next.0.count)
            writer.append(" next_pid="); writer.append(next.1.baseAddress ?? p.baseAddress!, next.1.count)
            writer.append(" next_prio="); writer.append(next.2.baseAddress ?? p.baseAddress!, next.2.count)
            return true
        }

        /// `(FUNC <- CALLER) args` (trace-cmd's order for a kretprobe) -> `(CALLER <- FUNC) args`.
        private func swapRetprobe(_ p: UnsafeRawBufferPointer) -> Bool {
            guard let close = indexOf(p, ")"), let arrow = indexOf(slice(p, 0, close), " <- ") else { return false }
            let fn = slice(p, 1, arrow)
            let caller = slice(p, arrow + 4, close)
            writer.reset()
            writer.append("(")
            writer.append(caller.baseAddress ?? p.baseAddress!, caller.count)
            writer.append(" <- ")
            writer.append(fn.baseAddress ?? p.baseAddress!, fn.count)
            writer.append(p.baseAddress! + close, p.count - close)
            return true
        }

        /// `-R`: `__probe_ip=ADDR args` -> `(ADDR) args`; `__probe_func=F __probe_ret_ip=R args` -> `(R <- F) args`.
        private func rawProbe(_ p: UnsafeRawBufferPointer) -> Bool {
            func token(_ from: Int) -> (UnsafeRawBufferPointer, Int) {
                var e = from
                while e < p.count && p[e] != 0x20 { e += 1 }
                return (slice(p, from, e), min(e + 1, p.count))
            }
            writer.reset()
            if p.starts(with: "__probe_ip=".utf8) {
                let (ip, next) = token(11)
                writer.append("(")
                writer.append(ip.baseAddress ?? p.baseAddress!, ip.count)
                writer.append(") ")
                writer.append(p.baseAddress! + next, p.count - next)
                return true
            }
            let (fn, n1) = token(13)
            let rest = slice(p, n1, p.count)
            guard rest.starts(with: "__probe_ret_ip=".utf8) else { return false }
            let (ret, n2) = token(n1 + 15)
            writer.append("(")
            writer.append(ret.baseAddress ?? p.baseAddress!, ret.count)
            writer.append(" <- ")
            writer.append(fn.baseAddress ?? p.baseAddress!, fn.count)
            writer.append(") ")
            writer.append(p.baseAddress! + n2, p.count - n2)
            return true
        }
    }
}

/// The kernel's letters for a task state (`prev_state` of sched_switch): TASK_REPORT bits
/// `S D T t X Z P I`, `R` for 0, and `+` when TASK_REPORT_MAX (0x100, "preempted") is set.
enum TaskState {
    static func write(_ state: UInt64, into writer: PayloadWriter) {
        let reportMax: UInt64 = 0x100
        let bits = state & (reportMax - 1)
        if bits == 0 {
            writer.byte(UInt8(ascii: "R"))
        } else {
            let letters: [UInt8] = Array("SDTtXZPI".utf8)
            var first = true
            for (i, l) in letters.enumerated() where bits & (1 << UInt64(i)) != 0 {
                if !first { writer.byte(UInt8(ascii: "|")) }
                writer.byte(l)
                first = false
            }
        }
        if state & reportMax != 0 { writer.byte(UInt8(ascii: "+")) }
    }
}
