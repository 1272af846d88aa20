import CTraceCmd
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Turns one binary tracepoint record (the ring-buffer payload: common fields, then the event's
/// fields) into a `RawEvent` whose payload is ftrace print style text, using the event formats a
/// `tep_handle` parsed. Shared by the trace.dat reader (libtracecmd records) and the perf.data
/// reader (`PERF_SAMPLE_RAW` payloads).
///
/// Field values are read raw from the record (never through the print format, so never
/// pointer-hashed and never a `%p` of a computed expression); how a number is printed (hex,
/// signed or unsigned decimal) follows the `name=%...` conversion in the event's print format when
/// there is one, else the field's signedness:
///
///     sched_switch   prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=init next_pid=321 next_prio=120
///     kprobe         (get_user_pages_fast+0x0/0x0) start=0x7fcbcdd8c000 nr_pages=64 gup_flags=0x0 pages=0xffff8880060e1200
///     kretprobe      (__iov_iter_get_pages_alloc+0xe9/0x0 <- get_user_pages_fast) ret=64
///     ftrace print   capture start                      (named tracing_mark_write)
final class TepDecoder {
    let tep: OpaquePointer
    let names: StringTable
    let writer = PayloadWriter()
    private let swap: Bool
    /// True for little-endian files with 8-byte longs (not s390x, whose kernel sits at low addresses).
    private let userHalfHasNoSymbols: Bool
    private var plans: [EventPlan?] = []
    /// The usable plans of `plans` (which owns them), unretained, for the per-record lookup.
    private var planTable = UnsafeMutableBufferPointer<Unmanaged<EventPlan>?>(start: nil, count: 0)

    private func setPlan(_ p: EventPlan, at id: Int) {
        if id >= plans.count { plans.append(contentsOf: repeatElement(nil, count: id + 1 - plans.count)) }
        plans[id] = p
        if id >= planTable.count {
            let bigger = UnsafeMutableBufferPointer<Unmanaged<EventPlan>?>.allocate(capacity: max(id + 1, planTable.count * 2, 64))
            bigger.initialize(repeating: nil)
            for i in planTable.indices { bigger[i] = planTable[i] }
            planTable.deallocate()
            planTable = bigger
        }
        planTable[id] = p.kind == .failed ? nil : Unmanaged.passUnretained(p)
    }

    /// The fields of the record being decoded (`RawEvent.fields`), grown to the largest plan.
    private var rawFields = UnsafeMutableBufferPointer<RawField>.allocate(capacity: 32)

    deinit {
        planTable.deallocate()
        rawFields.deallocate()
    }
    private var commonType = (offset: 0, size: 2)
    private var commonFlags = (offset: 2, size: 1)
    private var commonPreempt = (offset: 3, size: 1)
    private var commonPid = (offset: 4, size: 4)
    /// Direct-mapped cache of kallsyms lookups (address -> name, start, size; name empty = unknown).
    private var symbolCache = [SymbolEntry](repeating: SymbolEntry(), count: 4096)
    struct SymbolEntry { var addr: UInt64 = 0; var valid = false; var name = UnsafeRawBufferPointer(start: nil, count: 0); var start: UInt64 = 0; var size: UInt64 = 0 }
    /// Comm per pid (pids up to 4M), bytes in `arena`.
    private var commByPid: [UnsafeRawBufferPointer?] = []
    /// Labels and comms, kept for the decoder's lifetime.
    private let arena = ByteArena()
    /// Frames of the last stack event, for the reader to emit after it.
    private(set) var frames: [UInt64] = []
    let path: String
    let format: TraceFormat

    /// `nameOnly`: an event whose format was not given to libtraceevent (`EventFormatSelection`): its records
    /// carry the name and the common fields, with an empty payload.
    enum Kind { case normal, schedSwitch, print, kernelStack, userStack, kprobe, kretprobe, nameOnly, failed }

    enum Style: UInt8 { case hex, signed, unsigned, string, array, skip, symbol, symbolOffset }

    struct FieldPlan {
        var label: UnsafeRawBufferPointer   // "name=", in the decoder's arena
        var offset: Int
        var size: Int
        var style: Style
        var dynamic: Bool
        var relative: Bool
        var elementSize: Int
        var isSigned: Bool
    }

    final class EventPlan {
        var name: StringTable.ID = 0
        var display = ""
        var kind = Kind.normal
        var fields: [FieldPlan] = []
        // Offsets of the fields the special kinds need.
        var probeIP: FieldPlan?
        var probeFunc: FieldPlan?
        var probeRetIP: FieldPlan?
        var named: [String: FieldPlan] = [:]
        /// Whether the sink reads this event's payload text (`RawEventSink.readsPayloadText`), once it knows.
        var text: Bool?
        /// `fields`, copied once the plan is made (`seal`): read per record without reference counting.
        private(set) var fieldTable = UnsafeMutableBufferPointer<FieldPlan>(start: nil, count: 0)

        func seal() {
            fieldTable.deallocate()
            fieldTable = .allocate(capacity: fields.count)
            _ = fieldTable.initialize(from: fields)
        }

        deinit { fieldTable.deallocate() }
    }

    /// Taken around the libtraceevent lookups when decoders on several threads share `tep`.
    private let lock: TepLock?
    /// Event id -> name of the events whose formats libtraceevent was not given (`EventFormatSelection.nameOnly`).
    private let nameOnly: [Int: String]

    /// Given to `tep` before the first symbol lookup (under `lock`).
    private let kallsyms: DeferredKallsyms?

    init(tep: OpaquePointer, names: StringTable, path: String, format: TraceFormat, lock: TepLock? = nil,
         kallsyms: DeferredKallsyms? = nil, nameOnly: [Int: String] = [:]) {
        self.tep = tep
        self.lock = lock
        self.kallsyms = kallsyms
        self.nameOnly = nameOnly
        self.names = names
        self.path = path
        self.format = format
        swap = tep_is_file_bigendian(tep) != tep_is_local_bigendian(tep)
        userHalfHasNoSymbols = !tep_is_file_bigendian(tep) && tep_get_long_size(tep) == 8
        // The common fields, from any event (they are the same for all).
        if let first = tep_get_first_event(tep) {
            if let f = tep_find_common_field(first, "common_type") { commonType = (Int(f.pointee.offset), Int(f.pointee.size)) }
            if let f = tep_find_common_field(first, "common_flags") { commonFlags = (Int(f.pointee.offset), Int(f.pointee.size)) }
            if let f = tep_find_common_field(first, "common_preempt_count") { commonPreempt = (Int(f.pointee.offset), Int(f.pointee.size)) }
            if let f = tep_find_common_field(first, "common_pid") { commonPid = (Int(f.pointee.offset), Int(f.pointee.size)) }
        }
        // A damaged format must not make the reader look outside a record.
        for f in [commonType, commonFlags, commonPreempt, commonPid] where f.offset < 0 || f.offset > 64 || !(1...8).contains(f.size) {
            commonType = (0, 2); commonFlags = (2, 1); commonPreempt = (3, 1); commonPid = (4, 4)
            break
        }
    }

    @inline(__always) private func locked<T>(_ body: () -> T) -> T {
        if let lock { return lock.locked(body) }
        return body()
    }

    // MARK: Raw numbers

    @inline(__always)
    func number(_ data: UnsafeRawPointer, _ offset: Int, _ size: Int) -> UInt64 {
        let p = data + offset
        var v: UInt64
        switch size {
        case 1: return UInt64(p.load(as: UInt8.self))
        case 2: let x = p.loadUnaligned(as: UInt16.self); v = UInt64(swap ? x.byteSwapped : x)
        case 4: let x = p.loadUnaligned(as: UInt32.self); v = UInt64(swap ? x.byteSwapped : x)
        case 8: let x = p.loadUnaligned(as: UInt64.self); v = swap ? x.byteSwapped : x
        default: v = 0
        }
        return v
    }

    @inline(__always)
    private func signExtend(_ v: UInt64, _ size: Int) -> Int64 {
        switch size {
        case 1: return Int64(Int8(truncatingIfNeeded: v))
        case 2: return Int64(Int16(truncatingIfNeeded: v))
        case 4: return Int64(Int32(truncatingIfNeeded: v))
        default: return Int64(bitPattern: v)
        }
    }

    /// The event type id of a record (its `common_type`), or nil if the record is too short.
    @inline(__always)
    func typeID(_ data: UnsafeRawPointer, _ size: Int) -> Int? {
        guard commonType.offset + commonType.size <= size else { return nil }
        return Int(number(data, commonType.offset, commonType.size))
    }

    // MARK: Decoding

    /// Fills `ev` (name, pid, flags, payload) from the record. Returns the plan's kind, or nil when
    /// the record is too short for its common fields. Throws when the record's event type is
    /// unknown or its format could not be parsed.
    func decode(_ data: UnsafeRawPointer, _ size: Int, into ev: inout RawEvent, offset: Int, for sink: RawEventSink) throws -> Kind? {
        guard let type = typeID(data, size),
              commonPid.offset + commonPid.size <= size, commonFlags.offset < size, commonPreempt.offset < size else { return nil }
        unowned(unsafe) let plan: EventPlan
        if type >= 0 && type < planTable.count, let p = planTable[type] {
            plan = p.takeUnretainedValue()
        } else {
            plan = try self.plan(type, offset: offset)
        }
        ev.name = plan.name
        ev.pid = Int32(truncatingIfNeeded: signExtend(number(data, commonPid.offset, commonPid.size), commonPid.size))
        let rawFlags = UInt8(truncatingIfNeeded: number(data, commonFlags.offset, commonFlags.size))
        let pc = UInt8(truncatingIfNeeded: number(data, commonPreempt.offset, commonPreempt.size))
        // Canonical bits, as the text readers derive them from the flag column ('N'/'n'/'p' -> need-resched).
        var bits = rawFlags & (TraceFlags.irqsOff | TraceFlags.hardirq | TraceFlags.softirq | TraceFlags.nmi | TraceFlags.bhOff)
        if rawFlags & 0x24 != 0 { bits |= TraceFlags.needResched }
        ev.flags = TraceFlags(bits: bits, preemptDepth: pc & 0x0f, migrateDepth: pc >> 4)
        writer.reset()
        ev.fields = UnsafeBufferPointer(start: nil, count: 0)
        switch plan.kind {
        case .normal:
            var text = true
            if let t = plan.text { text = t } else if let t = sink.readsPayloadText(of: plan.name) { plan.text = t; text = t }
            ev.fields = writeFields(plan.fieldTable, data, size, text: text)
        case .schedSwitch: writeSchedSwitch(plan, data, size)
        case .print:
            if let buf = plan.named["buf"] {
                let start = writer.count
                writeValue(buf, data, size)
                // ftrace prints the marker text without its trailing newline.
                while writer.count > start && (writer.base[writer.count - 1] == 0x0A || writer.base[writer.count - 1] == 0x20) { writer.count -= 1 }
            }
        case .kernelStack, .userStack: readFrames(plan, data, size)
        case .nameOnly: break
        case .kprobe:
            writer.byte(UInt8(ascii: "("))
            if let ip = plan.probeIP, ip.offset >= 0, ip.offset + ip.size <= size { writeSymbol(number(data, ip.offset, ip.size), withOffset: false) }
            writer.append(") ")
            ev.fields = writeFields(plan.fieldTable, data, size)
        case .kretprobe:
            writer.byte(UInt8(ascii: "("))
            if let r = plan.probeRetIP, r.offset >= 0, r.offset + r.size <= size {
                let ret = number(data, r.offset, r.size)
                if let s = lookup(ret), TepDecoder.trampolines.contains(Array(s.name)) {
                    // ftrace's words when the return address is the kretprobe trampoline itself.
                    writer.append("[unknown/kretprobe'd]")
                } else {
                    writeSymbol(ret, withOffset: true)
                }
            }
            writer.append(" <- ")
            if let f = plan.probeFunc, f.offset >= 0, f.offset + f.size <= size { writeSymbolName(number(data, f.offset, f.size)) }
            writer.append(") ")
            ev.fields = writeFields(plan.fieldTable, data, size)
        case .failed:
            break
        }
        if writer.count > 0 && writer.base[writer.count - 1] == 0x20 { writer.count -= 1 }
        ev.payload = writer.bytes
        return plan.kind
    }

    /// The comm the file's saved cmdlines give `pid` (`<idle>` for 0, `<...>` when unknown).
    func comm(_ pid: Int32) -> UnsafeRawBufferPointer {
        let i = Int(pid)
        if i >= 0 && i < commByPid.count, let hit = commByPid[i] { return hit }
        var bytes: [UInt8]
        if pid == 0 {
            bytes = Array("<idle>".utf8)
        } else if let c = locked({ tep_data_comm_from_pid(tep, pid) }) {
            bytes = Array(UnsafeRawBufferPointer(start: c, count: strlen(c)))
        } else {
            bytes = Array("<...>".utf8)
        }
        let stored = arena.store(bytes)
        if i >= 0 && i < 1 << 22 {
            if i >= commByPid.count { commByPid.append(contentsOf: repeatElement(nil, count: i + 1 - commByPid.count)) }
            commByPid[i] = stored
        }
        return stored
    }

    // MARK: Plans

    /// Makes the plan of every event the file defines, so that decoding interns no new names (the
    /// name table may then be read by another thread while records are decoded).
    func preparePlans() {
        let n = tep_get_events_count(tep)
        for i in 0..<max(0, n) {
            guard let event = tep_get_event(tep, i) else { continue }
            let id = Int(event.pointee.id)
            guard id >= 0 && id < 1 << 20 else { continue }
            if id < plans.count, plans[id] != nil { continue }
            let p = makePlan(event)
            setPlan(p, at: id)
        }
        for (id, name) in nameOnly.sorted(by: { $0.key < $1.key }) where id >= plans.count || plans[id] == nil { setPlan(nameOnlyPlan(name), at: id) }
    }

    private func nameOnlyPlan(_ name: String) -> EventPlan {
        let plan = EventPlan()
        plan.kind = .nameOnly
        plan.display = name
        plan.name = names.intern(name)
        plan.seal()
        return plan
    }

    private func plan(_ type: Int, offset: Int) throws -> EventPlan {
        if type < plans.count, let p = plans[type] {
            if p.kind == .failed {
                throw InputError.unusable(path: path, format: format, what: "the format of event \(p.display) (id \(type)) could not be parsed by libtraceevent")
            }
            return p
        }
        guard type >= 0 && type < 1 << 20 else {
            throw InputError.corrupt(path: path, format: format, offset: offset, what: "record has event type \(type), which no event format in the file defines")
        }
        guard let event = locked({ tep_find_event(tep, Int32(type)) }) else {
            if let name = nameOnly[type] {
                let p = nameOnlyPlan(name)
                setPlan(p, at: type)
                return p
            }
            throw InputError.corrupt(path: path, format: format, offset: offset, what: "record has event type \(type), which no event format in the file defines")
        }
        let p = makePlan(event)
        if p.kind == .failed {
            throw InputError.unusable(path: path, format: format, what: "the format of event \(p.display) (id \(type)) could not be parsed by libtraceevent")
        }
        setPlan(p, at: type)
        return p
    }

    private func makePlan(_ event: UnsafeMutablePointer<tep_event>) -> EventPlan {
        let plan = EventPlan()
        let name = event.pointee.name.map { String(cString: $0) } ?? "unknown"
        let system = event.pointee.system.map { String(cString: $0) } ?? ""
        plan.display = system.isEmpty ? name : "\(system):\(name)"
        if event.pointee.format.nr_common == 0 && event.pointee.format.nr_fields == 0 {
            plan.kind = .failed
            return plan
        }
        let labels = printLabels(event)
        var f = event.pointee.format.fields
        while let field = f {
            let fname = field.pointee.name.map { String(cString: $0) } ?? ""
            let flags = UInt32(truncatingIfNeeded: field.pointee.flags)
            let type = field.pointee.type.map { String(cString: $0) } ?? ""
            var style: Style
            let isString = flags & UInt32(TEP_FIELD_IS_STRING.rawValue) != 0 ||
                (flags & UInt32(TEP_FIELD_IS_ARRAY.rawValue) != 0 && type.contains("char") && field.pointee.elementsize <= 1)
            let signed = flags & UInt32(TEP_FIELD_IS_SIGNED.rawValue) != 0
            if isString { style = .string }
            else if flags & UInt32(TEP_FIELD_IS_ARRAY.rawValue) != 0 { style = .array }
            else if let s = labels[fname]?.style { style = s == .string ? (signed ? .signed : .hex) : s }
            else { style = signed ? .signed : .hex }
            let label = fname.hasPrefix("__probe_") ? fname : (labels[fname]?.label ?? fname)
            let fp = FieldPlan(label: arena.store(Array((label + "=").utf8)), offset: Int(field.pointee.offset), size: Int(field.pointee.size),
                               style: style, dynamic: flags & UInt32(TEP_FIELD_IS_DYNAMIC.rawValue) != 0,
                               relative: flags & UInt32(TEP_FIELD_IS_RELATIVE.rawValue) != 0,
                               elementSize: max(1, Int(field.pointee.elementsize)), isSigned: signed)
            plan.named[fname] = fp
            switch fname {
            case "__probe_ip": plan.probeIP = fp
            case "__probe_func": plan.probeFunc = fp
            case "__probe_ret_ip": plan.probeRetIP = fp
            default: plan.fields.append(fp)
            }
            f = field.pointee.next
        }
        var printedName = name
        if system == "ftrace" && name == "print" {
            plan.kind = .print
            printedName = "tracing_mark_write"
        } else if system == "ftrace" && name == "kernel_stack" {
            plan.kind = .kernelStack
        } else if system == "ftrace" && name == "user_stack" {
            plan.kind = .userStack
        } else if name == "sched_switch", ["prev_comm", "prev_pid", "prev_state", "next_comm", "next_pid"].allSatisfy({ plan.named[$0] != nil }) {
            plan.kind = .schedSwitch
        } else if plan.probeFunc != nil && plan.probeRetIP != nil {
            plan.kind = .kretprobe
        } else if plan.probeIP != nil {
            plan.kind = .kprobe
        }
        plan.name = names.intern(printedName)
        plan.seal()
        return plan
    }

    /// What the print format says about each field: the label ftrace prints it under (`comm=` for
    /// the field `parent_comm` of sched_process_fork) and the conversion (hex, signed, unsigned,
    /// string). Conversions are paired with the format's arguments in order; only arguments that
    /// are a field (possibly cast) give a label, and a label is the identifier before `=`.
    private func printLabels(_ event: UnsafeMutablePointer<tep_event>) -> [String: (label: String, style: Style?)] {
        guard let fmt = event.pointee.print_fmt.format else { return [:] }
        let s = Array(UnsafeRawBufferPointer(start: fmt, count: strlen(fmt)))
        // The argument list, flattened.
        var args: [String?] = []
        var a = event.pointee.print_fmt.args
        while let arg = a {
            args.append(fieldName(arg))
            a = arg.pointee.next
        }
        var out: [String: (label: String, style: Style?)] = [:]
        var i = 0
        var argIndex = 0
        while i < s.count {
            guard s[i] == UInt8(ascii: "%") else { i += 1; continue }
            if i + 1 < s.count && s[i + 1] == UInt8(ascii: "%") { i += 2; continue }
            // The label: "name=" or "name=0x" right before the '%'.
            var e = i
            if e >= 2 && s[e - 2] == UInt8(ascii: "0") && s[e - 1] == UInt8(ascii: "x") { e -= 2 }
            if e >= 1 && s[e - 1] == UInt8(ascii: "\"") { e -= 1 }
            var label = ""
            if e >= 1 && s[e - 1] == UInt8(ascii: "=") {
                var st = e - 1
                while st > 0 && isIdent(s[st - 1]) { st -= 1 }
                label = String(decoding: s[st..<(e - 1)], as: UTF8.self)
            }
            var j = i + 1
            var stars = 0
            while j < s.count && (s[j] == UInt8(ascii: "l") || s[j] == UInt8(ascii: "L") || s[j] == UInt8(ascii: "h") || s[j] == UInt8(ascii: "z")
                                  || s[j] == UInt8(ascii: "#") || s[j] == UInt8(ascii: "-") || s[j] == UInt8(ascii: ".") || s[j] == UInt8(ascii: "*")
                                  || (s[j] >= 0x30 && s[j] <= 0x39)) {
                if s[j] == UInt8(ascii: "*") { stars += 1 }
                j += 1
            }
            argIndex += stars
            var style: Style?
            if j < s.count {
                switch s[j] {
                case UInt8(ascii: "d"), UInt8(ascii: "i"): style = .signed
                case UInt8(ascii: "u"): style = .unsigned
                case UInt8(ascii: "x"), UInt8(ascii: "X"): style = .hex
                case UInt8(ascii: "p"):
                    style = .hex
                    // %ps/%pf print the symbol, %pS/%pF symbol+off/size (hex when kallsyms does not know
                    // the address); other extension letters are not a new argument either.
                    if j + 1 < s.count {
                        switch s[j + 1] {
                        case UInt8(ascii: "s"), UInt8(ascii: "f"): style = .symbol
                        case UInt8(ascii: "S"), UInt8(ascii: "F"), UInt8(ascii: "B"): style = .symbolOffset
                        default: break
                        }
                    }
                    while j + 1 < s.count && isIdent(s[j + 1]) && !(s[j + 1] >= 0x30 && s[j + 1] <= 0x39) { j += 1 }
                case UInt8(ascii: "s"): style = .string
                default: style = nil
                }
            }
            if argIndex < args.count, let field = args[argIndex], !label.isEmpty, out[field] == nil {
                out[field] = (label, style)
            }
            argIndex += 1
            i = j + 1
        }
        return out
    }

    /// The field an argument of a print format reads, through casts; nil for expressions.
    private func fieldName(_ arg: UnsafeMutablePointer<tep_print_arg>) -> String? {
        switch arg.pointee.type {
        case TEP_PRINT_FIELD:
            return arg.pointee.field.name.map { String(cString: $0) }
        case TEP_PRINT_TYPE:
            guard let item = arg.pointee.typecast.item else { return nil }
            return fieldName(item)
        case TEP_PRINT_STRING:
            if let f = arg.pointee.string.field, let n = f.pointee.name { return String(cString: n) }
            return arg.pointee.string.string.map { String(cString: $0) }
        default:
            return nil
        }
    }

    @inline(__always) private func isIdent(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == UInt8(ascii: "_")
    }

    // MARK: Printing

    /// Prints `label=value ` for each field (with `text`) and returns them as numbers (`RawField`).
    private func writeFields(_ fields: UnsafeMutableBufferPointer<FieldPlan>, _ data: UnsafeRawPointer, _ size: Int,
                             text: Bool = true) -> UnsafeBufferPointer<RawField> {
        if fields.count > rawFields.count {
            rawFields.deallocate()
            rawFields = .allocate(capacity: fields.count)
        }
        for (k, f) in fields.enumerated() {
            let mark = writer.count
            if text { writer.append(f.label.baseAddress!, f.label.count) }
            let (form, value) = writeValue(f, data, size, text: text)
            rawFields[k] = RawField(label: UnsafeRawBufferPointer(start: f.label.baseAddress, count: f.label.count - 1), value: value, form: form)
            if text { writer.byte(0x20) } else { writer.count = mark }
        }
        return UnsafeBufferPointer(start: rawFields.baseAddress, count: fields.count)
    }

    /// The (offset, length) of a field's bytes in the record; dynamic fields are `__data_loc`
    /// (u32: length << 16 | offset, relative to the field's end with `__rel_loc`). Nil if out of bounds.
    @inline(__always)
    private func span(_ f: FieldPlan, _ data: UnsafeRawPointer, _ size: Int) -> (Int, Int)? {
        guard f.offset >= 0, f.size >= 0, f.offset + f.size <= size else { return nil }
        if f.dynamic {
            let loc = number(data, f.offset, min(f.size, 4))
            var off = Int(loc & 0xffff)
            let len = Int(loc >> 16)
            if f.relative { off += f.offset + f.size }
            guard off + len <= size else { return nil }
            return (off, len)
        }
        // `char buf[]` (the ftrace print event): the array runs to the end of the record.
        if f.size == 0 { return (f.offset, size - f.offset) }
        return (f.offset, f.size)
    }

    /// Prints the value and returns what it reads as (`RawField.reading` of the text). Numbers are not
    /// printed without `text`; the rest is, and read back (the caller drops it).
    @discardableResult
    private func writeValue(_ f: FieldPlan, _ data: UnsafeRawPointer, _ size: Int, text: Bool = true) -> (RawField.Form, UInt64) {
        guard let (off, len) = span(f, data, size) else { return (.other, 0) }
        let start = writer.count
        switch f.style {
        case .string:
            writer.appendCString(data + off, limit: len)
        case .hex:
            let v = number(data, off, len)
            if text { writer.hex(v) }
            return (.hex, v)
        case .signed:
            let v = signExtend(number(data, off, len), len)
            if text { writer.signed(v) }
            return (v < 0 ? .negativeDecimal : .decimal, UInt64(bitPattern: v))
        case .unsigned:
            let v = number(data, off, len)
            if text { writer.unsigned(v) }
            return (.decimal, v)
        case .array:
            // Not read by any model: kept short and free of blanks and commas.
            writer.append("[")
            let n = min(len / f.elementSize, 16)
            for k in 0..<n {
                if k > 0 { writer.byte(UInt8(ascii: ";")) }
                if f.elementSize <= 8 { writer.hex(number(data, off + k * f.elementSize, f.elementSize)) }
            }
            writer.append("]")
        case .skip:
            break
        case .symbol, .symbolOffset:
            let a = number(data, off, len)
            if let sym = lookup(a) {
                writer.append(sym.name.baseAddress!, sym.name.count)
                if f.style == .symbolOffset { writeOffset(a &- sym.start, sym.size) }
            } else {
                // An address kallsyms does not know (every user address) prints as hex.
                if text { writer.hex(a) }
                return (.hex, a)
            }
        }
        let r = RawField.reading(UnsafeRawBufferPointer(start: writer.base + start, count: writer.count - start))
        return (r.form, r.value)
    }

    /// `+0xOFF/0xSIZE`
    private func writeOffset(_ off: UInt64, _ size: UInt64) {
        writer.append("+")
        writer.hex(off)
        writer.append("/")
        writer.hex(size)
    }

    /// `prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=init next_pid=321 next_prio=120`
    private func writeSchedSwitch(_ p: EventPlan, _ data: UnsafeRawPointer, _ size: Int) {
        func field(_ n: String) {
            guard let f = p.named[n] else { return }
            writer.append(f.label.baseAddress!, f.label.count)
            writeValue(f, data, size)
            writer.byte(0x20)
        }
        field("prev_comm"); field("prev_pid"); field("prev_prio")
        writer.append("prev_state=")
        if let f = p.named["prev_state"], let (off, len) = span(f, data, size) {
            writeTaskState(number(data, off, len))
        }
        writer.append(" ==> ")
        field("next_comm"); field("next_pid"); field("next_prio")
    }

    static let trampolines: Set<[UInt8]> = Set(["arch_rethook_trampoline", "kretprobe_trampoline", "__kretprobe_trampoline",
                                                "rethook_trampoline"].map { Array($0.utf8) })

    private func writeTaskState(_ state: UInt64) { TaskState.write(state, into: writer) }

    private func lookup(_ addr: UInt64) -> (name: UnsafeRawBufferPointer, start: UInt64, size: UInt64)? {
        // Little-endian 64-bit kernels (x86_64, arm64, riscv64) live in the upper half: a lower
        // address is a user address with no kallsyms entry (page_fault_user prints two per event).
        if userHalfHasNoSymbols && addr < 0x8000_0000_0000_0000 { return nil }
        let slot = Int(truncatingIfNeeded: (addr &* 0x9E3779B97F4A7C15) >> 52)
        let e = symbolCache[slot]
        if e.valid && e.addr == addr { return e.name.isEmpty ? nil : (e.name, e.start, e.size) }
        var entry = SymbolEntry(addr: addr, valid: true)
        var name: UnsafePointer<CChar>?
        var start: UInt64 = 0
        var size: UInt = 0
        if addr != 0, locked({ kallsyms?.load(); return tep_find_function_info(tep, addr, &name, &start, &size) }) != 0, let n = name {
            // libtraceevent keeps its symbol strings for the handle's lifetime.
            entry.name = UnsafeRawBufferPointer(start: n, count: strlen(n))
            entry.start = start
            entry.size = UInt64(size)
        }
        symbolCache[slot] = entry
        return entry.name.isEmpty ? nil : (entry.name, entry.start, entry.size)
    }

    /// `func+0x0/0x0` (kprobe) or `func+0xOFF/0x0` (kretprobe caller); the hex address when the
    /// file's kallsyms does not know it.
    private func writeSymbol(_ addr: UInt64, withOffset: Bool) {
        if let s = lookup(addr) {
            writer.append(s.name.baseAddress!, s.name.count)
            writeOffset(withOffset ? addr &- s.start : 0, s.size)
        } else {
            writer.hex(addr, prefix: false)
        }
    }

    private func writeSymbolName(_ addr: UInt64) {
        if let s = lookup(addr) { writer.append(s.name.baseAddress!, s.name.count) } else { writer.hex(addr, prefix: false) }
    }

    /// A frame as ftrace prints it after ` => `: the function name, or the hex address.
    func writeFrame(_ addr: UInt64) {
        writer.reset()
        if let s = lookup(addr) { writer.append(s.name.baseAddress!, s.name.count) } else { writer.hex(addr) }
    }

    /// kernel_stack / user_stack: `int size; unsigned long caller[]` (the array runs to the record's end).
    private func readFrames(_ p: EventPlan, _ data: UnsafeRawPointer, _ size: Int) {
        frames.removeAll(keepingCapacity: true)
        guard let caller = p.named["caller"], caller.offset >= 0, caller.offset < size else { return }
        let longSize = max(4, min(8, caller.elementSize))
        var count = (size - caller.offset) / longSize
        if let sz = p.named["size"], sz.offset >= 0, sz.size > 0, sz.offset + sz.size <= size {
            let n = Int(truncatingIfNeeded: number(data, sz.offset, sz.size))
            // Newer kernels store a byte count, older ones an entry count.
            let entries = n > count ? n / longSize : n
            if entries >= 0 { count = min(count, entries) }
        }
        for k in 0..<count {
            let a = number(data, caller.offset + k * longSize, longSize)
            if a == 0 || a == UInt64.max || (longSize == 4 && a == 0xffff_ffff) { break }
            frames.append(a)
        }
    }
}

/// Append-only byte storage that lives as long as its owner: bytes handed out stay valid.
final class ByteArena {
    private var blocks: [UnsafeMutableRawPointer] = []
    private var used = 0
    private var capacity = 0

    func store(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
        let n = bytes.count
        if blocks.isEmpty || used + n > capacity {     // (an empty first string needs a block too)
            let size = max(64 << 10, n)
            blocks.append(.allocate(byteCount: size, alignment: 8))
            used = 0
            capacity = size
        }
        let p = blocks[blocks.count - 1] + used
        bytes.withUnsafeBytes { if n > 0 { p.copyMemory(from: $0.baseAddress!, byteCount: n) } }
        used += n
        return UnsafeRawBufferPointer(start: p, count: n)
    }

    deinit { for b in blocks { b.deallocate() } }
}

/// One lock for the libtraceevent calls that may fill a cache of the handle on first use
/// (`tep_data_comm_from_pid`, `tep_find_function_info`, `tep_find_event`), so that decoders on
/// several threads (trace.dat pieces, perf.data chunks) can share a handle. The decoders cache what
/// they get, so it is rarely taken.
final class TepLock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    @inline(__always) func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}

/// A trace.dat's kallsyms, given to libtraceevent at the first symbol lookup rather than when the file
/// is opened: `tep_parse_kallsyms` reads a kernel's ~120,000 lines with `sscanf` (about 30 ms here),
/// and many traces never print a kernel symbol (user-half addresses are not looked up).
final class DeferredKallsyms: @unchecked Sendable {
    private let tep: OpaquePointer
    private var text: [CChar]?

    init(tep: OpaquePointer, text: UnsafePointer<CChar>) {
        self.tep = tep
        self.text = Array(UnsafeBufferPointer(start: text, count: strlen(text) + 1))
    }

    /// Parses the symbols into the handle, once. Decoders that share the handle call it under their `TepLock`.
    func load() {
        guard let t = text else { return }
        text = nil
        t.withUnsafeBufferPointer { _ = tep_parse_kallsyms(tep, $0.baseAddress) }
    }
}
