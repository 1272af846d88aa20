import TraceIngest

/// Turns raw records into normalized `ProtEvent`s with the probe map.
///
/// Decides "do I care?" from the interned event name before reading any field: the binding of a
/// name is worked out once, at its first occurrence. Holds one event back so that a following
/// `<stack trace>` can give it a call site:
///
///     wl-done-129 [000] ..... 7.466671: get_user_pages_fast: (get_user_pages_fast+0x0/0x30) start=0x7fcb... nr_pages=64 ...
///     wl-done-129 [000] ..... 7.466805: <stack trace>
///      => get_user_pages_fast
///      => __iov_iter_get_pages_alloc        <- the call site
public final class EventNormalizer: RawEventSink {
    public let names: StringTable
    public let comms: StringTable
    public let symbols: StringTable
    public let probeMap: ProbeMap
    /// `probeMap.kernelSymbols`, kept apart: reading it per event copies no probe map.
    private let kernelSymbols: KernelSymbols?
    public private(set) var stats = IngestStats()
    /// In `--strict` mode the first malformed line stops the read with this error.
    public let strict: Bool
    public private(set) var strictFailure: MalformedLine?
    /// Path shown in messages.
    public let sourceName: String

    /// Where the events go. A constant: the per-event calls then cost no reference counting.
    private let sink: ProtEventSink
    private var bindings: [Binding?] = []
    private var countsByName: [Int] = []
    /// Per name: the events that matched `filter` (empty without one).
    private var matchedByName: [Int] = []
    private var pending: ProtEvent?
    private var pendingBinding = -1
    private var collectingStack = false
    /// Counts `beginPiece()` calls: an architecture hint is sent once per piece (see `Binding.archHint`).
    private var piece = 0

    public init(probeMap: ProbeMap, names: StringTable, comms: StringTable,
                symbols: StringTable, strict: Bool = false, sourceName: String = "", into sink: ProtEventSink) {
        self.sink = sink
        self.probeMap = probeMap
        self.kernelSymbols = probeMap.kernelSymbols
        self.names = names
        self.comms = comms
        self.symbols = symbols
        self.strict = strict
        self.sourceName = sourceName
    }

    /// Kinds the replay will use; mapped events of other kinds are not decoded at all (they count as
    /// ignored). Nil decodes everything. Set before the first event.
    public var wantedTags: Set<ProtEventTag>?

    /// `--pid`/`--comm`/`--cpu`/`--time`: events that match are counted in `stats.eventsMatched` and per
    /// name (`NameSummary.matched`). Every event is still normalized and replayed. Set before the first event.
    public var filter: EventFilter?

    /// Markers whose text contains these bytes (`wl phase `) are phase markers: the text after them,
    /// trailing blanks dropped, is their `phase`. Nil: no marker text is kept. Set before the first event.
    public var phaseMarker: [UInt8]?

    /// The bytes after the first occurrence of `prefix` in `text`, trailing blanks dropped; nil if absent.
    static func after(_ prefix: [UInt8], in text: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard !prefix.isEmpty, text.count >= prefix.count else { return nil }
        var i = 0
        while i + prefix.count <= text.count {
            if text[i] == prefix[0] {
                var j = 1
                while j < prefix.count && text[i + j] == prefix[j] { j += 1 }
                if j == prefix.count {
                    var end = text.count
                    while end > i + j && (text[end - 1] == 0x20 || text[end - 1] == 0x0A || text[end - 1] == 0x09 || text[end - 1] == 0x0D) { end -= 1 }
                    return UnsafeRawBufferPointer(rebasing: text[(i + j)..<end])
                }
            }
            i += 1
        }
        return nil
    }

    /// What an event name maps to, for `protreplay events`.
    public struct NameSummary: Sendable {
        public var name: String
        public var count: Int
        public var mapsTo: String
        /// The probed function, for a kprobe or kretprobe.
        public var function: String?
        /// A kretprobe (`(caller+0x../0x.. <- function)`).
        public var isReturn = false
        /// With a filter: how many of `count` matched it.
        public var matched: Int?

        public init(name: String, count: Int, mapsTo: String, function: String? = nil, isReturn: Bool = false, matched: Int? = nil) {
            self.name = name; self.count = count; self.mapsTo = mapsTo; self.function = function; self.isReturn = isReturn
            self.matched = matched
        }

        /// True when this event is `point`: a tracepoint by name, a k(ret)probe by the function it probes.
        public func records(_ point: ProbePoint) -> Bool {
            switch point {
            case let .tracepoint(n): return function == nil && name == n
            case let .tracepointPrefix(p): return function == nil && name.hasPrefix(p)
            case let .kprobe(f): return function == f && !isReturn
            case let .kretprobe(f): return function == f && isReturn
            }
        }
    }

    public func nameSummaries() -> [NameSummary] {
        var out: [NameSummary] = []
        for (id, count) in countsByName.enumerated() where count > 0 {
            let b = id < bindings.count ? bindings[id] : nil
            out.append(NameSummary(name: names.string(StringTable.ID(id)), count: count,
                                   mapsTo: b?.description ?? "unmapped", function: b?.function, isReturn: b?.isReturn ?? false,
                                   matched: filter == nil ? nil : (id < matchedByName.count ? matchedByName[id] : 0)))
        }
        return out
    }

    /// Sends the held-back event. Call once at the end of the input (or of a piece).
    public func finish() { flushPending() }

    /// Starts an independent piece of the input (`ParallelIngest`): the statistics start from zero
    /// and address hints are sent again, so that each piece carries what it needs.
    public func beginPiece() {
        flushPending()
        piece += 1
        stats = IngestStats()
        strictFailure = nil
    }

    // MARK: RawEventSink

    public func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) {
        flushPending()
        recordMalformed(line: line, offset: offset, reason: "\(reason)", text: text)
    }

    private func recordMalformed(line: Int, offset: Int, reason: String, text: UnsafeRawBufferPointer) {
        stats.malformed += 1
        if stats.malformedExamples.count < IngestStats.exampleLimit || (strict && strictFailure == nil) {
            let excerpt = String(decoding: text.prefix(160), as: UTF8.self)
            let m = MalformedLine(line: line, offset: offset, reason: reason, text: excerpt)
            if stats.malformedExamples.count < IngestStats.exampleLimit { stats.malformedExamples.append(m) }
            if strict && strictFailure == nil { strictFailure = m }
        }
    }

    public func consume(_ raw: inout RawEvent) {
        switch raw.kind {
        case .stackTrace:
            stats.stackTraces += 1
            collectingStack = pending != nil && !raw.userStack
            stackState = StackState()
        case .stackFrame:
            if collectingStack { attachFrame(raw.payload) }
        case .lostEvents:
            flushPending()
            stats.lostMarkers += 1
            if raw.lostCount == 0 { stats.lostMarkersWithoutCount += 1 }
            stats.lostEvents = IngestStats.saturatingSum(stats.lostEvents, raw.lostCount)
            sink.lost(cpu: raw.cpu, count: raw.lostCount, line: raw.line)
        case .bufferStarted:
            flushPending()
            stats.bufferStarts += 1
            sink.bufferStarted(cpu: raw.cpu, line: raw.line)
        case .event:
            flushPending()
            collectingStack = false
            stats.events += 1
            let id = Int(raw.name)
            if id >= countsByName.count {
                countsByName.append(contentsOf: repeatElement(0, count: id + 64 - countsByName.count))
                bindings.append(contentsOf: repeatElement(nil, count: id + 64 - bindings.count))
            }
            countsByName[id] += 1
            if let f = filter, f.matchesPid(raw.pid), f.matchesCPU(raw.cpu), f.matchesTime(raw.timestamp), f.matchesComm(raw.comm) {
                stats.eventsMatched += 1
                if id >= matchedByName.count { matchedByName.append(contentsOf: repeatElement(0, count: countsByName.count - matchedByName.count)) }
                matchedByName[id] += 1
            }
            let b: Binding
            if let known = bindings[id] { b = known } else { b = makeBinding(raw); bindings[id] = b }
            if let arch = b.archHint, b.archHintPiece != piece {
                b.archHintPiece = piece
                sink.addressFact(.arch(arch))
            }
            switch b.target {
            case .unmapped:
                stats.unmapped += 1
                sink.tick(cpu: raw.cpu, pid: raw.pid, timestamp: raw.timestamp, flags: raw.flags, line: raw.line)
            case .ignored:
                stats.ignored += 1
                sink.tick(cpu: raw.cpu, pid: raw.pid, timestamp: raw.timestamp, flags: raw.flags, line: raw.line)
            case .tag where !b.wanted:
                sink.tick(cpu: raw.cpu, pid: raw.pid, timestamp: raw.timestamp, flags: raw.flags, line: raw.line)
            case .tag:
                let loc = b.isKprobe ? Fields.probeLocation(raw.payload) : nil
                if let kind = decode(raw, b, loc) {
                    var site: StringTable.ID = 0
                    if let caller = loc?.caller { site = internSymbol(caller) }
                    pending = ProtEvent(line: raw.line, timestamp: raw.timestamp, cpu: raw.cpu, pid: raw.pid,
                                        comm: comms.intern(raw.comm), flags: raw.flags, site: site, kind: kind)
                    pendingBinding = id
                } else {
                    stats.malformedEvents += 1
                    sink.tick(cpu: raw.cpu, pid: raw.pid, timestamp: raw.timestamp, flags: raw.flags, line: raw.line)
                    let reason = "\(names.string(raw.name)): missing or unreadable field for \(b.description)"
                    if raw.payload.isEmpty && !raw.fields.isEmpty {
                        EventNormalizer.printed(raw.fields).withUnsafeBytes { recordMalformed(line: raw.line, offset: raw.offset, reason: reason, text: $0) }
                    } else {
                        recordMalformed(line: raw.line, offset: raw.offset, reason: reason, text: raw.payload)
                    }
                }
            }
        }
    }

    /// Kinds whose events are made from the rule alone, no field read (`decode`): `sys_enter_*`,
    /// `sys_exit_*` (about 700 formats in a trace.dat), `pkmap_flush`, the pgmap grant and revoke.
    static let kindsWithoutFields: Set<ProtEventTag> = [.syscall, .pkmapFlush, .pgmapGrant, .pgmapRevoke]

    /// The text a binary reader did not print (`readsPayloadText` false), for a message:
    /// `pfn=0x1a2b order=0`, with `?` for a value that is not a number.
    static func printed(_ fields: UnsafeBufferPointer<RawField>) -> [UInt8] {
        var out: [UInt8] = []
        for f in fields {
            if !out.isEmpty { out.append(0x20) }
            out += f.label
            out.append(UInt8(ascii: "="))
            switch f.form {
            case .hex: out += Array("0x\(String(f.value, radix: 16))".utf8)
            case .decimal: out += Array(String(f.value).utf8)
            case .negativeDecimal: out += Array(String(Int64(bitPattern: f.value)).utf8)
            case .other: out.append(UInt8(ascii: "?"))
            }
        }
        return out
    }

    /// Whether the payload text of the events called `name` is read: not for events that are only
    /// counted (unmapped, ignored, of a kind no model uses), nor for those whose fields are all read as
    /// numbers (`FieldSource`). Kprobes (their location), sched_switch and fork (comm strings), markers
    /// (their text) and layout-carrying probes need it. Nil before the first event of that name.
    public func readsPayloadText(of name: StringTable.ID) -> Bool? {
        let id = Int(name)
        guard id < bindings.count, let b = bindings[id] else { return nil }
        switch b.target {
        case .unmapped, .ignored: return false
        case let .tag(tag):
            guard b.wanted else { return false }
            if b.isKprobe || b.carriesLayout { return true }
            switch tag {
            case .contextSwitch, .taskFork, .marker: return true
            default: return false
            }
        }
    }

    private func flushPending() {
        if let e = pending {
            pending = nil
            collectingStack = false
            sink.consume(e)
        }
    }

    /// Frames of the tracing machinery itself, above the probed function in a kprobe's stack:
    ///
    ///      => kprobe_trace_func
    ///      => kprobe_dispatcher
    ///      => aggr_pre_handler
    ///      => kprobe_ftrace_handler
    ///      => ftrace_regs_call
    ///      => kmap_high                 <- the probed function
    ///      => __access_remote_vm        <- the call site
    private static let infrastructurePrefixes: [[UInt8]] = [
        "kprobe", "ftrace", "__ftrace", "trace_", "__trace", "arch_ftrace", "fprobe", "rethook", "arch_rethook",
        "__kretprobe", "kretprobe", "pre_handler_kretprobe", "aggr_", "opt_pre_handler", "optimized_callback",
        "perf_", "event_triggers", "stacktrace_", "__traceiter", "<",
    ].map { Array($0.utf8) }

    private var stackState = StackState()
    private struct StackState {
        var probedSeen = false
        var locked = false
    }

    /// A symbol, or a bare address named through `--kallsyms` when one was given.
    private func internSymbol(_ text: UnsafeRawBufferPointer) -> StringTable.ID {
        if let ks = kernelSymbols, let a = KernelSymbols.address(text), let s = ks.symbol(at: a) { return symbols.intern(s.name) }
        return symbols.intern(text)
    }

    private func attachFrame(_ frame: UnsafeRawBufferPointer) {
        guard var e = pending, !stackState.locked else { return }
        let name = Fields.symbolName(frame)
        // A bare address (`=> ffffffff811f55d5` of trace-cmd report -R) named through --kallsyms.
        if let ks = kernelSymbols, let a = KernelSymbols.address(name), let s = ks.symbol(at: a) {
            Array(s.name.utf8).withUnsafeBytes { attachFrame(named: $0, &e) }
        } else {
            attachFrame(named: name, &e)
        }
    }

    private func attachFrame(named name: UnsafeRawBufferPointer, _ e: inout ProtEvent) {
        guard !name.isEmpty else { return }
        if pendingBinding >= 0, let fn = bindings[pendingBinding]?.functionBytes, name.elementsEqual(fn) {
            // Everything above the probed function was machinery: the next frame is the call site.
            stackState.probedSeen = true
            if !(bindings[pendingBinding]?.isReturn ?? false) { e.site = 0 }
            pending = e
            return
        }
        if stackState.probedSeen {
            if e.site == 0 || !(bindings[pendingBinding]?.isReturn ?? false) { e.site = symbols.intern(name) }
            stackState.locked = true
            pending = e
            return
        }
        guard e.site == 0 else { return }
        for p in EventNormalizer.infrastructurePrefixes where name.starts(with: p) { return }
        // Tentative: a tracepoint's stack starts in the function that hit it.
        e.site = symbols.intern(name)
        pending = e
    }

    // MARK: Bindings

    private func makeBinding(_ raw: RawEvent) -> Binding {
        let name = names.string(raw.name)
        let loc = Fields.probeLocation(raw.payload)
        var function = loc.map { String(decoding: $0.function, as: UTF8.self) }
        if let loc, let address = KernelSymbols.address(loc.function) {
            // trace-cmd report without symbols: "(ffffffff812c40a0)". Name it from --kallsyms or the event name.
            function = probeMap.function(unresolved: address, event: name, isReturn: loc.isReturn) ?? function
        }
        var archHint: KernelProfile.Arch?
        switch function {
        case "__kmap_local_pfn_prot", "__kmap_local_page_prot", "kmap_high", "kunmap_high", "kunmap_local_indexed":
            archHint = .i386
        case "arch_make_page_accessible", "arch_make_folio_accessible":
            archHint = .s390x
        default: break
        }
        guard let rule = probeMap.rule(event: name, function: function, isReturn: loc?.isReturn ?? false) else {
            let b = Binding(target: .unmapped, rule: nil, function: function, isKprobe: loc != nil)
            b.isReturn = loc?.isReturn ?? false
            b.archHint = archHint
            return b
        }
        let binding: Binding
        if rule.mapsTo == "IGNORE" {
            binding = Binding(target: .ignored, rule: rule, function: function, isKprobe: loc != nil)
        } else {
            binding = Binding(target: .tag(ProtEventTag(rawValue: rule.mapsTo)!), rule: rule, function: function, isKprobe: loc != nil)
        }
        binding.isReturn = loc?.isReturn ?? false
        binding.archHint = archHint
        if case let .tag(t) = binding.target, let wantedTags { binding.wanted = wantedTags.contains(t) }
        // `@vmemmap_base` / `@page_offset_base` fetchargs teach the x86_64 layout.
        binding.carriesLayout = loc != nil && (Fields.value("vmemmap_base", in: raw.payload) != nil || Fields.value("page_offset_base", in: raw.payload) != nil)
        return binding
    }

    // MARK: Decoding

    private func decode(_ raw: RawEvent, _ b: Binding, _ loc: ProbeLocation?) -> ProtEventKind? {
        guard case let .tag(tag) = b.target else { return nil }
        var text = raw.payload
        if let loc {
            text = UnsafeRawBufferPointer(rebasing: text[min(loc.argumentsStart, text.count)...])
        }
        let args = FieldSource(text: text, numbers: raw.fields)
        if b.carriesLayout {
            if let vb = b.field("vmemmap_base", in: args) { sink.addressFact(.vmemmapBase(vb)) }
            if let pb = b.field("page_offset_base", in: args) { sink.addressFact(.pageOffsetBase(pb)) }
        }
        switch tag {
        case .contextSwitch:
            return decodeSchedSwitch(raw.payload)
        case .taskMigrate:
            guard let pid = b.field("pid", in: args), let from = b.field("orig_cpu", in: args),
                  let to = b.field("dest_cpu", in: args) else { return nil }
            return .taskMigrate(pid: Int32(truncatingIfNeeded: pid), fromCPU: Int32(truncatingIfNeeded: from), toCPU: Int32(truncatingIfNeeded: to))
        case .taskFork:
            guard let parent = b.field("pid", in: args), let child = b.field("child_pid", in: args) else { return nil }
            let childComm = stringField("child_comm", before: "child_pid", in: args.text)
            return .taskFork(parentPid: Int32(truncatingIfNeeded: parent), childPid: Int32(truncatingIfNeeded: child), childComm: childComm)
        case .taskExit:
            guard let pid = b.field("pid", in: args) else { return nil }
            return .taskExit(pid: Int32(truncatingIfNeeded: pid))
        case .irqEnter, .irqExit:
            let kind: IRQKind = b.api == "softirq" ? .softirq : (b.api == "nmi" ? .nmi : .hardirq)
            let vector = b.field(kind == .softirq ? "vec" : "irq", in: args) ?? 0
            return tag == .irqEnter ? .irqEnter(kind, vector: Int32(truncatingIfNeeded: vector))
                                    : .irqExit(kind, vector: Int32(truncatingIfNeeded: vector))
        case .fault:
            guard let code = b.field("error_code", in: args) else { return nil }
            let address = b.field("address", in: args) ?? 0
            let ip = b.field("ip", in: args) ?? 0
            let user = b.api == "user" || (b.api == nil && code & 0x4 != 0)
            return .fault(address: address, ip: ip, errorCode: code, user: user)
        case .kmap:
            let api = b.kmapAPI ?? .kmapLocalPage
            if api == .kmapLocalPfn {
                guard let pfn = b.field("pfn", in: args, positional: true) else { return nil }
                return .kmap(api, page: nil, pfn: pfn)     // paired with its page entry by `AddressLearning`
            }
            guard let page = b.field("page", in: args, positional: true) else { return nil }
            return .kmap(api, page: page, pfn: nil)
        case .kmapReturn:
            guard let vaddr = b.field("vaddr", in: args, positional: true) else { return nil }
            return .kmapReturn(b.kmapAPI ?? .kmapLocalPage, vaddr: vaddr)
        case .kunmapHigh:
            guard let page = b.field("page", in: args, positional: true) else { return nil }
            return .kunmapHigh(page: page)
        case .kunmapLocal:
            guard let vaddr = b.field("vaddr", in: args, positional: true) else { return nil }
            return .kunmapLocal(vaddr: vaddr)
        case .pkmapFlush:
            return .pkmapFlush
        case .gupAcquire:
            let start = b.field("start", in: args) ?? 0
            let nr = b.field("nr_pages", in: args) ?? 0
            let flags = b.field("gup_flags", in: args) ?? 0
            return .gupAcquire(b.gupAPI, path: b.gupPath, start: start, pages: UInt32(truncatingIfNeeded: nr),
                               flags: UInt32(truncatingIfNeeded: flags), array: b.field("pages", in: args) ?? 0)
        case .gupReturn:
            guard let r = b.field("ret", in: args, positional: true) else { return nil }
            return .gupReturn(b.gupAPI, path: b.gupPath, result: Int64(bitPattern: r))
        case .pageAlloc, .pageFree:
            guard let pfn = b.field("pfn", in: args) else { return nil }
            let order = UInt8(truncatingIfNeeded: b.field("order", in: args) ?? 0)
            // `page=%p` prints bare hex (`page=ffffea000014bc80`) when hash-ptr is off.
            if tag == .pageAlloc, let page = args.pageAddress(), page > 0xffff_ffff {
                sink.addressFact(.pagePfn(page: page, pfn: pfn))
            }
            return tag == .pageAlloc ? .pageAlloc(pfn: pfn, order: order) : .pageFree(pfn: pfn, order: order)
        case .marker:
            guard let prefix = phaseMarker, let rest = EventNormalizer.after(prefix, in: args.text) else { return .marker(phase: 0) }
            return .marker(phase: rest.isEmpty ? 0 : symbols.intern(rest))
        case .gupPage:
            guard let page = b.field("page", in: args, positional: true) else { return nil }
            return .gupPage(page: page, refs: UInt32(truncatingIfNeeded: b.field("refs", in: args) ?? 1),
                            flags: b.field("flags", in: args) ?? 0)
        case .gupRelease:
            let dirty = (b.field("make_dirty", in: args) ?? 0) != 0
            switch b.api {
            case "pages":
                guard let array = b.field("pages", in: args, positional: true) else { return nil }
                let n = b.field("npages", in: args) ?? 0
                return .gupRelease(.pages, pointer: array, count: UInt32(truncatingIfNeeded: n), dirty: dirty)
            case "range":
                guard let page = b.field("page", in: args, positional: true) else { return nil }
                let n = b.field("npages", in: args) ?? 1
                return .gupRelease(.range, pointer: page, count: UInt32(truncatingIfNeeded: n), dirty: dirty)
            default:
                guard let page = b.field("page", in: args, positional: true) else { return nil }
                return .gupRelease(.page, pointer: page, count: 1, dirty: dirty)
            }
        case .gupPut:
            guard let page = b.field("page", in: args, positional: true) else { return nil }
            return .gupPut(page: page, refs: UInt32(truncatingIfNeeded: b.field("refs", in: args) ?? 1),
                           flags: b.field("flags", in: args) ?? 0)
        case .gupPte:
            // The pte's special bit depends on the architecture: the model reads it (`KernelProfile.isSpecial`).
            let special = b.field("special", in: args).map { $0 != 0 }
            return .gupPte(vmFlags: b.field("vm_flags", in: args), special: special, pte: b.field("pte", in: args))
        case .writebackStart, .writebackEnd:
            guard let folio = b.field("folio", in: args, positional: true) else { return nil }
            return tag == .writebackStart ? .writebackStart(folio: folio) : .writebackEnd(folio: folio)
        case .directMap:
            guard let page = b.field("page", in: args, positional: true) else { return nil }
            return .directMap(page: page, valid: b.api == "default" || b.api == "valid")
        case .directMapReturn:
            guard let r = b.field("ret", in: args, positional: true) else { return nil }
            return .directMapReturn(valid: b.api == "default" || b.api == "valid", result: Int64(bitPattern: r))
        case .tlbFlushKernelRange:
            guard let start = b.field("start", in: args), let end = b.field("end", in: args) else { return nil }
            return .tlbFlushKernelRange(start: start, end: end)
        case .secretmemMmap:
            guard let start = b.field("vm_start", in: args), let end = b.field("vm_end", in: args) else { return nil }
            return .secretmemMmap(start: start, end: end)
        case .secretmemFault:
            return .secretmemFault(address: b.field("address", in: args) ?? 0)
        case .secretmemFree:
            guard let folio = b.field("folio", in: args, positional: true) else { return nil }
            return .secretmemFree(folio: folio)
        case .makeAccessible:
            guard let page = b.field("page", in: args, positional: true) else { return nil }
            return .makeAccessible(page: page)
        case .makeAccessibleReturn, .makeSecureReturn:
            guard let r = b.field("ret", in: args, positional: true) else { return nil }
            let v = Int64(Int32(truncatingIfNeeded: r))
            return tag == .makeAccessibleReturn ? .makeAccessibleReturn(result: v) : .makeSecureReturn(result: v)
        case .uvDestroy:
            return .uvDestroy(page: b.field("page", in: args))
        case .ioSubmit:
            guard let page = b.field("page", in: args) else { return nil }
            return .ioSubmit(page: page)
        case .spliceZeroCopy:
            guard let page = b.field("page", in: args) else { return nil }
            return .spliceZeroCopy(page: page)
        case .pgmapGrant:
            return .pgmapGrant
        case .pgmapRevoke:
            return .pgmapRevoke
        case .pksSet, .pksExceptionUpdate:
            let key = UInt32(truncatingIfNeeded: b.field("pkey", in: args) ?? 1)
            let rw = (b.field("prot", in: args) ?? 0) == 0
            return tag == .pksSet ? .pksSet(key: key, readWrite: rw) : .pksExceptionUpdate(key: key, readWrite: rw)
        case .syscall:
            return .syscall(enter: b.api != "exit")
        }
    }

    /// `prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=init next_pid=321 next_prio=120`
    /// (comm names may contain spaces: they run up to ` prev_pid=` / ` next_pid=`).
    private func decodeSchedSwitch(_ p: UnsafeRawBufferPointer) -> ProtEventKind? {
        guard let prevPid = Fields.integer("prev_pid", in: p), let nextPid = Fields.integer("next_pid", in: p) else { return nil }
        let prevComm = stringField("prev_comm", before: "prev_pid", in: p)
        let nextComm = stringField("next_comm", before: "next_pid", in: p)
        var runnable = true
        if let st = Fields.value("prev_state", in: p), let c = st.first {
            // "R" and "R+" (preempted) are runnable; S, D, I, T, t, X, Z, P are not.
            runnable = c == UInt8(ascii: "R")
        }
        return .contextSwitch(prevPid: Int32(truncatingIfNeeded: prevPid), prevComm: prevComm, prevRunnable: runnable,
                              nextPid: Int32(truncatingIfNeeded: nextPid), nextComm: nextComm)
    }

    /// A string field that may contain spaces: from `name=` up to ` next=`.
    private func stringField(_ name: StaticString, before next: StaticString, in p: UnsafeRawBufferPointer) -> StringTable.ID {
        let nameBytes = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        guard let r = Fields.valueRange(nameBytes, in: p) else { return 0 }
        let nextBytes = UnsafeRawBufferPointer(start: next.utf8Start, count: next.utf8CodeUnitCount)
        var end = r.upperBound
        if let nr = Fields.valueRange(nextBytes, in: p), nr.lowerBound > r.lowerBound {
            end = nr.lowerBound - nextBytes.count - 2   // back over " next="
        }
        end = max(end, r.lowerBound)
        return comms.intern(UnsafeRawBufferPointer(rebasing: p[r.lowerBound..<end]))
    }
}

/// The arguments of one event: its payload text and, from the binary readers, the numbers of its fields
/// (`RawField`). With `numbers`, the fields are read from them alone (they say what the text would);
/// without, from the text.
struct FieldSource {
    var text: UnsafeRawBufferPointer
    var numbers: UnsafeBufferPointer<RawField>

    /// The field printed under `label` as a number: nil when there is no such field, `.some(nil)`
    /// when its value is not a number.
    @inline(__always)
    func value(_ label: UnsafeRawBufferPointer) -> UInt64?? {
        if !numbers.isEmpty {
            guard let f = RawField.first(label, in: numbers) else { return nil }
            return .some(f.isNumber ? f.value : nil)
        }
        guard let v = Fields.value(label, in: text) else { return nil }
        return .some(Fields.parseInteger(v))
    }

    /// `page=` of mm_page_alloc: `%p` prints bare hex (`page=ffffea000014bc80`) when hash-ptr is off.
    func pageAddress() -> UInt64? {
        let label = UnsafeRawBufferPointer(start: ("page" as StaticString).utf8Start, count: 4)
        if !numbers.isEmpty {
            guard let f = RawField.first(label, in: numbers) else { return nil }
            switch f.form {
            case .hex, .negativeDecimal: return f.value
            case .decimal: return Array(String(f.value).utf8).withUnsafeBytes { Fields.parseBareHex($0) } ?? f.value
            case .other: return nil
            }
        }
        guard let v = Fields.value("page", in: text) else { return nil }
        return Fields.parseBareHex(v) ?? Fields.parseInteger(v)
    }
}

/// How one event name is read: the rule that matched and its decoded options.
final class Binding {
    enum Target { case unmapped, ignored, tag(ProtEventTag) }
    var target: Target
    var rule: ProbeMapEntry?
    /// `rule?.api`, kept apart: reading it per event copies no rule.
    let api: String?
    var function: String?
    var functionBytes: [UInt8]?
    var isKprobe: Bool
    var isReturn = false
    /// Some consumer wants this kind (see `EventNormalizer.wantedTags`).
    var wanted = true
    var carriesLayout = false
    /// The probed function exists on one architecture only (`kmap_high` -> i386), and the piece that
    /// last announced it.
    var archHint: KernelProfile.Arch?
    var archHintPiece = -1
    var kmapAPI: KmapAPI?
    var gupAPI: GupAPI = .get
    var gupPath: GupPath = .slow
    /// Role -> field name, only for roles the rule renames.
    private var fieldNames: [String: [UInt8]] = [:]

    init(target: Target, rule: ProbeMapEntry?, function: String?, isKprobe: Bool) {
        self.target = target
        self.rule = rule
        self.api = rule?.api
        self.function = function
        self.functionBytes = function.map { Array($0.utf8) }
        self.isKprobe = isKprobe
        switch rule?.api {
        case "kmap_high": kmapAPI = .kmapHigh
        case "kmap_local_page", "kmap_local", "kmap_atomic": kmapAPI = .kmapLocalPage
        case "kmap_local_pfn": kmapAPI = .kmapLocalPfn
        case "pin": gupAPI = .pin
        default: break
        }
        switch rule?.path {
        case "fast": gupPath = .fast
        case "remote": gupPath = .remote
        default: gupPath = .slow
        }
        for (role, field) in rule?.fields ?? [:] { fieldNames[role] = Array(field.utf8) }
    }

    var description: String {
        switch target {
        case .unmapped: return "unmapped"
        case .ignored: return "IGNORE"
        case let .tag(t):
            var s = t.rawValue
            if let api = rule?.api { s += "(\(api)" + (rule?.path.map { ", \($0)" } ?? "") + ")" }
            return s
        }
    }

    /// Integer value of the field playing `role` (renamed by the rule's `fields`), or with `positional`,
    /// the first argument when the named field is absent (a probe defined as `arg1=%ax`).
    @inline(__always)
    func field(_ role: StaticString, in source: FieldSource, positional: Bool = false) -> UInt64? {
        var renamed = false
        var v: UInt64??
        if !fieldNames.isEmpty, let name = fieldNames["\(role)"] {
            renamed = true
            v = name.withUnsafeBytes { source.value($0) }
        } else {
            v = source.value(UnsafeRawBufferPointer(start: role.utf8Start, count: role.utf8CodeUnitCount))
        }
        if let v { return v }
        guard positional, !renamed else { return nil }
        if let first = source.numbers.first { return first.isNumber ? first.value : nil }
        let args = source.text
        // First `x=value` of the arguments.
        guard let eq = args.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        var end = eq + 1
        while end < args.count && args[end] != 0x20 { end += 1 }
        return Fields.parseInteger(UnsafeRawBufferPointer(rebasing: args[(eq + 1)..<end]))
    }
}
