import TraceIngest
import EventModel
import Replay

/// Variant B of the spec (§5): s390 protected virtualization. Guest pages are secure; the host must
/// make a page accessible (`arch_make_page_accessible`: pin shared, or export = encrypt) before a
/// device touches it. The kernel does that on FOLL_PIN gup and at writeback start, and nowhere else:
/// a FOLL_GET page or a page-cache page sent by zero-copy splice/sendfile reaches the device secure
/// (seed 001: the "sendfile hole"), and the I/O fails.
///
///     wl-writeback-233 [000] .n... 7.392807: arch_make_page_accessible: (arch_make_page_accessible+0x0/0x108) page=0x372000614c0 flags=0xa015
///     wl-writeback-233 [000] .n... 7.393009: arch_make_page_accessible_ret: (__folio_start_writeback+0xc4/0x360 <- arch_make_page_accessible) ret=0
///
/// EFFECTIVE windows are the intervals a protected frame is accessible (from make-accessible to re-import,
/// usually the end of the trace: the guest's re-import is not in a host trace); GRANTED windows are the
/// intervals something needs it accessible (a pin, or writeback in flight). Overexposure is the rest.
public final class S390PVModel: ProtectionModel, ModelSupport {
    public let name: StaticString = "s390pv"
    let resolver: AddressResolver
    let protected: ProtectedFrames
    /// FOLL_PIN for decoding `gup_put_folio` flags (0x40000 up to v6.2, 1<<19 from v6.3; Appendix A).
    let follPin: UInt64

    public var options: [String: String] { ["protect": protected.description, "foll_pin": "0x" + String(follPin, radix: 16)] }
    public let accessClasses = ["sendfile_hole", "io_after_get", "no_hook"]
    public let anomalyKinds = ["make_accessible_failed", "import_while_pinned", "gup_special_pfn", "release_without_pin"]

    enum State { case secure, accessible, nonsecure }

    struct Frame {
        var state = State.secure
        var pins = 0
        var gets = 0
        var underWriteback = false
        var accessibleSince: UInt64 = 0
        var accessibleCause: StaticString = "gup_pin"
        var heldSince: UInt64?
        /// Trace lines of the events at `accessibleSince` and `heldSince` (the windows' opening lines; 0: unknown).
        var accessibleLine: StoredLine = 0, heldLine: StoredLine = 0
        var holdCause: StaticString = "gup_pin"
        /// Who took the hold (the first pin or the writeback start), and from where.
        var holder: (pid: Int32, comm: StringTable.ID, kind: ContextKind, cpu: Int32, site: StringTable.ID)?
        var uncertain = false
        /// The last accessible transition was implied (no make-accessible event yet) at this time, in this context.
        var impliedAt: (ctx: ContextInstance, writeback: Bool)?
    }

    /// A gup API call in flight in one context (entry seen, return not yet).
    struct GupCall {
        var api: GupAPI
        var specialPte = false
        var site: StringTable.ID = 0
        /// The API entry: a pin's `io_hold` window opens here (reporting conventions), not at each page's grab.
        var openNs: UInt64 = 0
        /// Where the pages it pins are filed (`pinCalls`), for the unpin that names its array.
        var key: PinCallKey?
        /// A VM_PFNMAP/VM_IO vma or a special pte was seen in this call (stays set after a grab, unlike `specialPte`).
        var sawPfnmap = false
        /// A page was grabbed in this call after `sawPfnmap`.
        var grabbedAfterPfnmap = false
        /// Trace line of the API entry.
        var openLine: StoredLine = 0
    }

    /// How an unpin finds the pages a pin call took: by the `struct page **` array the call filled (the
    /// pointer `unpin_user_pages(pages, npages)` names), or by task when the pin probe gave no array.
    enum PinCallKey: Hashable { case array(UInt64), task(Int32) }

    /// The references one pin call took, in the order it filled its array (one entry per grab).
    struct PinnedCall {
        var pid: Int32
        var pages: [(page: UInt64, refs: UInt32)] = []
    }

    /// An unpin API call whose nested `gup_put_folio`s may follow in the same context: those are the same
    /// release, already applied at the API entry (`expected`), or, when the API call could not be resolved
    /// to pages, the release itself, dated at the API entry.
    struct UnpinCall {
        var api: GupReleaseAPI
        var pointer: UInt64
        var openNs: UInt64
        /// References still expected from nested puts.
        var remaining: Int
        /// Page -> references the API entry already released; nil when it released nothing (unresolved).
        var expected: [UInt64: Int]?
        var nestedSeen = false
    }

    private var frames: [UInt64: Frame] = [:]       // by struct page *
    private var activeGup: [ContextInstance: GupCall] = [:]
    private var pendingMakeAccessible: [ContextInstance: (page: UInt64, ts: UInt64)] = [:]
    private var pinCalls: [PinCallKey: PinnedCall] = [:]
    /// Each task's latest pin call, for unpins that name no array this model knows.
    private var lastPinCall: [Int32: PinCallKey] = [:]
    private var unpinInProgress: [ContextInstance: UnpinCall] = [:]
    /// Page entries over all pin calls (capped like a map: `LiveStateLimit`, `s390pv.pinned_pages`).
    private var pinnedEntries = 0
    /// The trace showed a pin release (an unpin API call or a FOLL_PIN `gup_put_folio`) / a writeback end:
    /// without one, a pin / writeback hold still open at the end rests on a probe the capture lacks.
    private var sawPinRelease = false, sawWritebackEnd = false

    /// The run's cap on live entries (`LiveStateLimit`): every map here asks it before taking a new key.
    /// Frames stay tracked to the end of the trace once accessible, so `frames` is the map that fills.
    var limit = LiveStateLimit()
    public func attach(_ limit: LiveStateLimit) { self.limit = limit }
    /// Set once `frames` refused a frame: an I/O on a frame not tracked may then be one whose pin was
    /// refused, so its unprotected access is marked uncertain.
    private var framesRefused = false


    /// The frame's state, or a new one if `frames` has room (nil: refused at the cap, counted).
    private func frameForUpdate(_ page: UInt64) -> Frame? {
        if let f = frames[page] { return f }
        guard admit(frames.count, "frames") else { framesRefused = true; return nil }
        return Frame()
    }

    private var fromGup = 0, fromWriteback = 0, fromOther = 0, impliedGup = 0, impliedWriteback = 0
    private var pinsTaken = 0, getsTaken = 0, importsOK = 0, importsBlocked = 0, destroys = 0, ioChecked = 0
    private var pinsReleased = 0, unpinCalls = 0, unpinCallsUnresolved = 0
    /// gup calls that met a VM_PFNMAP/VM_IO vma or a special pte and returned without grabbing a page (the refusal
    /// seed 003 asks for: `check_vma_flags` returns -EFAULT, or `vm_normal_page` finds no struct page).
    private var pfnmapRefused = 0
    public var counters: [String: Int] {
        ["make_accessible_from_gup": fromGup, "make_accessible_from_writeback": fromWriteback,
         "make_accessible_from_other": fromOther, "make_accessible_implied_gup": impliedGup,
         "make_accessible_implied_writeback": impliedWriteback, "pages_pinned": pinsTaken, "pages_get": getsTaken,
         "imports_ok": importsOK, "imports_blocked_by_io": importsBlocked, "destroys": destroys, "io_pages_checked": ioChecked,
         "pins_released": pinsReleased, "unpin_calls": unpinCalls, "unpin_calls_unresolved": unpinCallsUnresolved,
         "gup_pfnmap_refused": pfnmapRefused]
    }

    public init(resolver: AddressResolver, protected: ProtectedFrames = .touched, follPin: UInt64 = 0x40000, symbols: StringTable? = nil) {
        self.resolver = resolver
        self.symbols = symbols
        self.protected = protected
        self.follPin = follPin
    }

    private static let tags: Set<ProtEventTag> = [.gupAcquire, .gupReturn, .gupPage, .gupRelease, .gupPut, .gupPte, .writebackStart,
                                                  .writebackEnd, .makeAccessible, .makeAccessibleReturn, .makeSecureReturn,
                                                  .uvDestroy, .ioSubmit, .spliceZeroCopy]
    public func wants(_ tag: ProtEventTag) -> Bool { S390PVModel.tags.contains(tag) }

    private func isProtected(_ page: UInt64) -> Bool {
        switch protected {
        case .touched, .all, .kmapped: return true
        case .ranges: return protected.contains(pfn: resolver.pfn(forPage: page))
        }
    }

    public private(set) var applicable = false

    public func apply(_ e: ProtEvent, in ctx: ExecutionContext, emit: ObservationSink) {
        switch e.kind {
        case .gupPage, .writebackStart, .makeAccessible: applicable = true
        default: break
        }
        let ts = e.timestamp
        // An unpin's nested puts follow it directly in its context; anything else ends the wait for them.
        if !unpinInProgress.isEmpty {
            switch e.kind {
            case .gupPut, .gupRelease: break
            default: unpinInProgress[ctx.instance] = nil
            }
        }
        switch e.kind {
        case let .gupAcquire(api, _, _, _, _, array):
            guard activeGup[ctx.instance] != nil || admit(activeGup.count, "gup_calls") else { break }
            var call = GupCall(api: api, site: e.site, openNs: ts, openLine: StoredLine(line: e.line))
            if api == .pin {
                // A new call filling this array: the array now names its pages (the kernel reuses arrays).
                let key = array != 0 ? PinCallKey.array(array) : .task(ctx.pid)
                if pinCalls[key] != nil || admit(pinCalls.count, "pin_calls") {
                    pinnedEntries -= pinCalls[key]?.pages.count ?? 0
                    pinCalls[key] = PinnedCall(pid: ctx.pid)
                    if lastPinCall[ctx.pid] != nil || admit(lastPinCall.count, "pin_calls_by_task") { lastPinCall[ctx.pid] = key }
                    call.key = key
                }
            }
            activeGup[ctx.instance] = call
        case .gupReturn:
            if let call = activeGup.removeValue(forKey: ctx.instance) {
                if call.sawPfnmap, !call.grabbedAfterPfnmap { pfnmapRefused += 1 }
                if let key = call.key, let pinned = pinCalls[key], pinned.pages.isEmpty {
                    store(pinned, at: key)     // it pinned nothing this model tracks
                }
            }
        case let .gupPte(vmFlags, special, pte):
            // VM_PFNMAP (0x400) or a special pte: gup must not hand out a struct page for it (seed 003).
            if (vmFlags ?? 0) & 0x400 != 0 || (special ?? pte.flatMap { resolver.profile.isSpecial(pte: $0) }) == true {
                activeGup[ctx.instance]?.specialPte = true
                activeGup[ctx.instance]?.sawPfnmap = true
            }
        case let .gupPage(page, refs, flags):
            if activeGup[ctx.instance]?.specialPte == true {
                activeGup[ctx.instance]?.specialPte = false
                activeGup[ctx.instance]?.grabbedAfterPfnmap = true
                emit.anomaly(anomaly(e, "gup_special_pfn", "gup took page \(hexString(page)) from a VM_PFNMAP/special mapping"))
            }
            // Pin vs get by the API called; the flags only when no API entry was seen.
            let call = activeGup[ctx.instance]
            let api = call?.api ?? (flags & follPin != 0 ? .pin : .get)
            guard isProtected(page), var f = frameForUpdate(page) else { return }
            if api == .pin {
                pinsTaken += 1
                f.pins += Int(refs)
                if let key = call?.key, pinCalls[key] != nil, admit(pinnedEntries, "pinned_pages") {
                    pinCalls[key]!.pages.append((page, refs))
                    pinnedEntries += 1
                }
                // The hold opens at the entry of the API call the caller made (without one: at the grab).
                hold(&f, cause: "gup_pin", at: call?.openNs ?? ts, line: call?.openLine ?? StoredLine(line: e.line), ctx, site: call?.site ?? e.site)
                if f.state != .accessible {
                    makeAccessible(&f, cause: "gup_pin", at: ts, line: StoredLine(line: e.line))
                    f.impliedAt = (ctx.instance, false)
                    impliedGup += 1
                }
            } else {
                getsTaken += 1
                f.gets += Int(refs)
            }
            frames[page] = f
        case let .gupRelease(api, pointer, count, _):
            sawPinRelease = true
            unpin(api, pointer: pointer, count: Int(count), e, ctx, emit)
        case let .gupPut(page, refs, flags):
            if flags & follPin != 0 { sawPinRelease = true }
            put(page: page, refs: Int(refs), pin: flags & follPin != 0, e, ctx, emit)
        case let .writebackStart(folio):
            guard isProtected(folio), var f = frameForUpdate(folio) else { return }
            f.underWriteback = true
            hold(&f, cause: "writeback", at: ts, line: StoredLine(line: e.line), ctx, site: e.site)
            if f.state != .accessible {
                makeAccessible(&f, cause: "writeback", at: ts, line: StoredLine(line: e.line))
                f.impliedAt = (ctx.instance, true)
                impliedWriteback += 1
            }
            frames[folio] = f
        case let .writebackEnd(folio):
            sawWritebackEnd = true
            guard var f = frames[folio] else { return }
            f.underWriteback = false
            release(&f, page: folio, at: ts, ctx: ctx, emit)
            frames[folio] = f
        case let .makeAccessible(page):
            if pendingMakeAccessible[ctx.instance] != nil || admit(pendingMakeAccessible.count, "pending_make_accessible") {
                pendingMakeAccessible[ctx.instance] = (page, ts)
            }
        case let .makeAccessibleReturn(result):
            guard let p = pendingMakeAccessible.removeValue(forKey: ctx.instance) else { return }
            let caller = e.site == 0 ? "" : "\(symbols?.string(e.site) ?? "")"
            madeAccessible(page: p.page, at: p.ts, caller: caller, ok: result == 0, ctx: ctx, e, emit)
        case let .makeSecureReturn(result):
            if result == 0 { importsOK += 1 } else if result == -11 || result == -16 { importsBlocked += 1 }
        case .uvDestroy:
            destroys += 1
        case let .ioSubmit(page):
            deviceAccess(page: page, zeroCopy: false, e, ctx, emit)
        case let .spliceZeroCopy(page):
            deviceAccess(page: page, zeroCopy: true, e, ctx, emit)
        default:
            break
        }
    }

    // MARK: Releases

    /// An unpin API entry (`unpin_user_page(s)*`, `unpin_folio(s)`): the pins it names are released now,
    /// at the entry of the release call (reporting conventions).
    private func unpin(_ api: GupReleaseAPI, pointer: UInt64, count: Int, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        let ts = e.timestamp
        if var inner = unpinInProgress[ctx.instance], !inner.nestedSeen, inner.api == .pages, api == .pages,
           inner.pointer == pointer, inner.remaining == count {
            // `unpin_user_pages_dirty_lock(pages, n, 0)` calls `unpin_user_pages(pages, n)`: the same release.
            inner.nestedSeen = true
            unpinInProgress[ctx.instance] = inner
            return
        }
        unpinCalls += 1
        var released: [(page: UInt64, refs: Int)] = []
        switch api {
        case .page:
            released = [(pointer, 1)]
            forget(page: pointer, refs: 1, ofTask: ctx.pid)
        case .range:
            // `npages` consecutive `struct page`s from `pointer`: the stride is the struct size, when known.
            let stride = resolver.profile.structPageSize ?? resolver.calibration.size
            if let stride {
                for i in 0..<UInt64(max(count, 1)) {
                    released.append((pointer &+ i &* stride, 1))
                    forget(page: pointer &+ i &* stride, refs: 1, ofTask: ctx.pid)
                }
            } else if count <= 1 {
                released = [(pointer, 1)]
            }
        case .pages:
            // The array a pin call filled; else the task's latest pin call whose probe gave no array.
            var key = PinCallKey.array(pointer)
            if pinCalls[key] == nil, let last = lastPinCall[ctx.pid], case .task = last { key = last }
            if var call = pinCalls[key] {
                var left = count
                while left > 0, !call.pages.isEmpty {
                    let take = min(left, Int(call.pages[0].refs))
                    released.append((call.pages[0].page, take))
                    left -= take
                    if take == Int(call.pages[0].refs) {
                        call.pages.removeFirst()
                        pinnedEntries -= 1
                    } else {
                        call.pages[0].refs -= UInt32(take)
                    }
                }
                store(call, at: key)
            }
        }
        let resolved = !released.isEmpty
        if !resolved { unpinCallsUnresolved += 1 }
        var expected: [UInt64: Int] = [:]
        for r in released {
            expected[r.page, default: 0] += r.refs
            releasePin(page: r.page, refs: r.refs, at: ts, e, ctx, emit)
        }
        if unpinInProgress[ctx.instance] != nil || admit(unpinInProgress.count, "unpin_calls") {
            unpinInProgress[ctx.instance] = UnpinCall(api: api, pointer: pointer, openNs: ts, remaining: max(count, 1),
                                                      expected: resolved ? expected : nil)
        }
    }

    /// `gup_put_folio`: inside an unpin call it is that call's release (already applied, or applied now
    /// dated at the unpin's entry); on its own (gup error paths, captures without unpin probes) it releases
    /// at its own entry.
    private func put(page: UInt64, refs: Int, pin: Bool, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        if pin, var u = unpinInProgress[ctx.instance] {
            if var exp = u.expected {
                if let want = exp[page], want > 0 {
                    exp[page] = want - refs > 0 ? want - refs : nil
                    u.expected = exp
                    u.remaining -= refs
                    unpinInProgress[ctx.instance] = u.remaining > 0 ? u : nil
                    return
                }
            } else {
                u.remaining -= refs
                unpinInProgress[ctx.instance] = u.remaining > 0 ? u : nil
                releasePin(page: page, refs: refs, at: u.openNs, e, ctx, emit)
                return
            }
        }
        if pin {
            if let key = activeGup[ctx.instance]?.key { forget(page: page, refs: refs, in: key) }
            releasePin(page: page, refs: refs, at: e.timestamp, e, ctx, emit)
        } else if var f = frames[page] {
            f.gets = max(0, f.gets - refs)
            frames[page] = f
        }
    }

    /// Drops `refs` pins of a frame; the GRANTED window closes at `ts` when nothing holds it any more.
    private func releasePin(page: UInt64, refs: Int, at ts: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard var f = frames[page] else { return }     // pinned before the trace: its start explains it
        if f.pins == 0 {
            emit.anomaly(anomaly(e, "release_without_pin", "unpin of \(hexString(page)) with no pin seen"))
            return
        }
        pinsReleased += min(refs, f.pins)
        f.pins = max(0, f.pins - refs)
        release(&f, page: page, at: ts, ctx: ctx, emit)
        frames[page] = f
    }

    /// A page unpinned on its own (`unpin_user_page`): it no longer counts toward its pin call's array.
    private func forget(page: UInt64, refs: Int, ofTask pid: Int32) {
        if let key = lastPinCall[pid] { forget(page: page, refs: refs, in: key) }
    }

    private func forget(page: UInt64, refs: Int, in key: PinCallKey) {
        guard var call = pinCalls[key], let i = call.pages.firstIndex(where: { $0.page == page }) else { return }
        if Int(call.pages[i].refs) <= refs {
            call.pages.remove(at: i)
            pinnedEntries -= 1
        } else {
            call.pages[i].refs -= UInt32(refs)
        }
        store(call, at: key)
    }

    /// Puts a pin call back, or drops it (and its task's pointer to it) once every page it took is released.
    private func store(_ call: PinnedCall, at key: PinCallKey) {
        guard call.pages.isEmpty else { pinCalls[key] = call; return }
        pinCalls[key] = nil
        if lastPinCall[call.pid] == key { lastPinCall[call.pid] = nil }
    }

    /// The caller names of kretprobes (`__folio_start_writeback`, `follow_page_pte`, `gup_fast_pte_range`).
    let symbols: StringTable?

    private func madeAccessible(page: UInt64, at ts: UInt64, caller: String, ok: Bool, ctx: ExecutionContext, _ e: ProtEvent, _ emit: ObservationSink) {
        let fromWB = caller.contains("writeback")
        let fromGUP = caller.contains("follow_page") || caller.contains("gup") || caller.contains("get_user_pages")
        if fromWB { fromWriteback += 1 } else if fromGUP { fromGup += 1 } else { fromOther += 1 }
        guard ok else {
            emit.anomaly(anomaly(e, "make_accessible_failed", "make-accessible of \(hexString(page)) from \(caller.isEmpty ? "?" : caller) failed\(fromWB ? " (writeback: VM_BUG_ON)" : "")"))
            return
        }
        guard isProtected(page), var f = frameForUpdate(page) else { return }
        if let imp = f.impliedAt, imp.ctx == ctx.instance {
            // The transition we implied at the gup/writeback is now seen: not implied after all, and the
            // frame became accessible at the make-accessible call, not before.
            if imp.writeback { impliedWriteback -= 1 } else { impliedGup -= 1 }
            f.impliedAt = nil
            f.accessibleSince = ts
            f.accessibleLine = StoredLine(line: e.line)
        } else if f.state != .accessible {
            makeAccessible(&f, cause: fromWB ? "writeback" : (fromGUP ? "gup_pin" : "other"), at: ts, line: StoredLine(line: e.line))
        }
        frames[page] = f
    }

    private func makeAccessible(_ f: inout Frame, cause: StaticString, at ts: UInt64, line: StoredLine) {
        f.state = .accessible
        f.accessibleSince = ts
        f.accessibleLine = line
        f.accessibleCause = cause
    }

    private func hold(_ f: inout Frame, cause: StaticString, at ts: UInt64, line: StoredLine, _ ctx: ExecutionContext, site: StringTable.ID) {
        if f.heldSince == nil {
            f.heldSince = ts
            f.heldLine = line
            f.holdCause = cause
            f.holder = (ctx.pid, ctx.comm, ctx.kind, ctx.cpu, site)
        }
    }

    /// Ends the GRANTED window when nothing holds the frame any more (no pin, no writeback).
    private func release(_ f: inout Frame, page: UInt64, at ts: UInt64, ctx: ExecutionContext, _ emit: ObservationSink) {
        guard f.pins == 0, !f.underWriteback, let since = f.heldSince else { return }
        f.heldSince = nil
        var w = window(.granted, page: page, api: f.holdCause, alias: "io_hold", open: since, close: ts, ctx: nil, cause: .unmap)
        w.openLine = f.heldLine.line
        w.uncertain = f.uncertain
        holderFields(&w, f)
        emit.window(w)
    }

    /// A device (or the zero-copy splice path) touches the page: it must be accessible (§5.4).
    private func deviceAccess(page: UInt64, zeroCopy: Bool, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard isProtected(page) else { return }
        ioChecked += 1
        let tracked = frames[page]
        let f = tracked ?? Frame()
        guard f.state == .secure else { return }
        let cls: StaticString = zeroCopy ? "sendfile_hole" : (f.gets > 0 ? "io_after_get" : "no_hook")
        emit.access(AccessRecord(model: name, timestamp: e.timestamp, line: e.line, cpu: ctx.cpu, pid: ctx.pid, comm: ctx.comm,
                                 context: ctx.kind, address: 0, frame: frameRef(page), write: false, accessClass: cls,
                                 outcome: .ioErrorExpected, site: e.site,
                                 uncertain: f.uncertain || (tracked == nil && (framesRefused || gapSeen))))
    }

    public func contextEnded(_ ctx: ExecutionContext, at ts: UInt64, line: Int, emit: ObservationSink) {
        if let key = activeGup.removeValue(forKey: ctx.instance)?.key, let call = pinCalls[key], call.pages.isEmpty { store(call, at: key) }
        pendingMakeAccessible[ctx.instance] = nil
        unpinInProgress[ctx.instance] = nil
    }

    public func eventsLost(cpu: Int32, at timestamp: UInt64) {
        gapSeen = true
        for k in frames.keys { frames[k]!.uncertain = true }
    }

    /// Events were lost somewhere: a frame not tracked may have been pinned or written back in the gap (E5).
    private var gapSeen = false

    public func finish(at ts: UInt64, emit: ObservationSink) {
        for page in frames.keys.sorted() {
            let f = frames[page]!
            if let since = f.heldSince {
                var w = window(.granted, page: page, api: f.holdCause, alias: "io_hold", open: since, close: ts, ctx: nil, cause: .traceEnd)
                w.censoredRight = true
                w.openLine = f.heldLine.line
                // Held to the end, and the capture has no probe for what would release it (reporting conventions,
                // "Unobserved closing events"): the end is where the rule puts it, not a measurement.
                w.uncertain = f.uncertain || (f.pins > 0 && !sawPinRelease) || (f.underWriteback && !sawWritebackEnd)
                holderFields(&w, f)
                emit.window(w)
            }
            if f.state == .accessible {
                // Exported pages stay ciphertext outside secure storage until the guest touches them again.
                var w = window(.effective, page: page, api: f.accessibleCause, alias: "ciphertext", open: f.accessibleSince,
                               close: ts, ctx: nil, cause: .traceEnd)
                w.censoredRight = true
                w.openLine = f.accessibleLine.line
                // What ends it, the guest touching the page and the re-import, is not in a host trace (the
                // import kretprobe names no page): the end of the trace is the rule's end, not an observed one.
                w.uncertain = true
                emit.window(w)
            }
        }
        frames.removeAll()
        pinCalls.removeAll()
        pinnedEntries = 0
        lastPinCall.removeAll()
        unpinInProgress.removeAll()
    }

    private func holderFields(_ w: inout ExposureWindow, _ f: Frame) {
        guard let h = f.holder else { return }
        w.holderPid = h.pid
        w.holderComm = h.comm
        w.holderContext = h.kind
        w.cpu = h.cpu
        w.site = h.site
    }


    private func window(_ layer: WindowLayer, page: UInt64, api: StaticString, alias: StaticString, open: UInt64, close: UInt64,
                        ctx: ExecutionContext?, cause: CloseCause) -> ExposureWindow {
        ExposureWindow(model: name, layer: layer, scope: .global, frame: frameRef(page), alias: alias, api: api,
                       holderPid: ctx?.pid ?? -1, holderComm: ctx?.comm ?? 0, holderContext: ctx?.kind ?? .task, cpu: ctx?.cpu ?? -1,
                       openNs: open, closeNs: close, site: 0, closeCause: cause)
    }

}
