import TraceIngest
import EventModel
import Replay

/// Variant C of the spec (§6): frames removed from the kernel direct map (`memfd_secret`, and
/// guest_memfd "no direct map" when its events are present).
///
///     wl-secret-254 [001] .....  5.261019: secretmem_fault: (secretmem_fault+0x0/0x4b0) vmf=... address=0x7f5c237ff000
///     wl-secret-254 [001] .....  5.262614: mm_page_alloc: page=ffffea0001ff0000 pfn=0x7fc00 order=0              <- allocated (content zero)
///     wl-secret-254 [001] .....  5.262680: set_direct_map_invalid_noflush: (...) page=0xffffea0001ff0000 ...       <- removed, other CPUs may hold TLB entries
///     wl-secret-254 [001] .....  5.262879: flush_tlb_kernel_range: (...) start=0xffff88807fc00000 end=0xffff88807fc01000  <- removed
///     wl-secret-254 [001] .....  5.271932: secretmem_free_folio: (...) folio=0xffffea0001ff0000
///     wl-secret-254 [001] .....  5.271956: set_direct_map_default_noflush: (...) page=0xffffea0001ff0000           <- back, content not yet zeroed
///     wl-secret-254 [001] .....  5.272476: mm_page_free: page=ffffea0001ff0000 pfn=0x7fc00 order=0               <- zeroed and freed
///
/// Windows: PRE_REMOVAL [alloc, invalidate), STALE_TLB [invalidate, flush), RESIDUAL [restore, free):
/// GLOBAL by hardware (EFFECTIVE layer); PRE_REMOVAL and RESIDUAL are the allocating/freeing context's
/// by intent (GRANTED layer, scope ctx), so overexposure is the stale-TLB time. USER_ALIAS (the owner's
/// user mapping, fault to free) is intended and reported apart (`exposure.intended`).
public final class DirectMapModel: ProtectionModel, ModelSupport {
    public let name: StaticString = "directmap"
    let resolver: AddressResolver
    public var options: [String: String] { [:] }
    public let accessClasses = ["removed_direct_map"]
    public let anomalyKinds = ["restore_without_removal", "removal_failed", "flush_missing_at_free"]

    enum State { case allocated, removedStale, removed, restoredDirty }
    enum Owner: String { case secretmem, gmem = "guest_memfd" }

    struct Frame {
        var state: State
        var owner: Owner
        var pfn: UInt64?
        var allocNs: UInt64
        var faultNs: UInt64
        var removedNs: UInt64 = 0
        var restoredNs: UInt64 = 0
        /// Trace lines of the events at `allocNs`, `faultNs`, `removedNs`, `restoredNs` (the windows' opening lines).
        var allocLine: StoredLine = 0, faultLine: StoredLine = 0, removedLine: StoredLine = 0, restoredLine: StoredLine = 0
        var holderPid: Int32
        var holderComm: StringTable.ID
        var holderKind: ContextKind
        var cpu: Int32
        var site: StringTable.ID
        var uncertain = false
        /// PRE_REMOVAL is emitted once the removal is known to be one (the flush did not show a frame without
        /// a direct-map alias): at the matching flush, the restore, or the end.
        var preRemovalEmitted = false
    }

    private var frames: [UInt64: Frame] = [:]   // by struct page *
    private var pageOfPfn: [UInt64: UInt64] = [:]
    private var pendingFault: [ContextInstance: (ts: UInt64, allocNs: UInt64?, line: StoredLine, allocLine: StoredLine)] = [:]
    private var pendingFree: [ContextInstance: UInt64] = [:]
    private var secretVMAs: [(start: UInt64, end: UInt64)] = []
    private var pendingGupOnSecret: [ContextInstance: Bool] = [:]
    /// The frame a context removed and has not flushed yet: `secretmem_fault` flushes its own removal next.
    private var awaitingFlush: [ContextInstance: UInt64] = [:]
    /// Frames whose removal removed nothing (no direct-map alias: an i386 HIGHMEM page), until restored.
    private var withoutAlias: Set<UInt64> = []
    /// The capture has shown a `flush_tlb_kernel_range` / an `mm_page_free`: its probe exists (INT, docs/models.md).
    private var sawFlush = false, sawPageFree = false

    /// The run's cap on live entries (`LiveStateLimit`): every map here asks it before taking a new key.
    var limit = LiveStateLimit()
    public func attach(_ limit: LiveStateLimit) { self.limit = limit }


    private var removals = 0, restores = 0, otherRemovals = 0, flushes = 0, gupRefused = 0, faultsOnRemoved = 0
    private var removalsWithoutAlias = 0
    public var counters: [String: Int] {
        ["removals": removals, "restores": restores, "removals_not_secret": otherRemovals, "tlb_flushes_matched": flushes,
         "gup_refused": gupRefused, "removals_without_alias": removalsWithoutAlias]
    }

    /// i386 with the 3G/1G split: the direct map (lowmem) ends at most 896 MiB above PAGE_OFFSET, so every
    /// frame from pfn 0x38000 on is HIGHMEM and has no direct-map alias.
    static let i386FirstHighmemPfn: UInt64 = 0x38000

    public init(resolver: AddressResolver, symbols: StringTable? = nil) {
        self.resolver = resolver
        self.symbols = symbols
    }

    public private(set) var applicable = false

    private static let tags: Set<ProtEventTag> = [.secretmemMmap, .secretmemFault, .secretmemFree, .directMap, .directMapReturn,
                                                  .tlbFlushKernelRange, .pageAlloc, .pageFree, .fault, .gupAcquire, .gupReturn]
    public func wants(_ tag: ProtEventTag) -> Bool { DirectMapModel.tags.contains(tag) }

    public func apply(_ e: ProtEvent, in ctx: ExecutionContext, emit: ObservationSink) {
        let ts = e.timestamp
        switch e.kind {
        case .directMap, .secretmemFault: applicable = true
        default: break
        }
        switch e.kind {
        case let .secretmemMmap(start, end):
            secretVMAs.append((start, end))
            if secretVMAs.count > 4096 { secretVMAs.removeFirst() }
        case .secretmemFault:
            if pendingFault[ctx.instance] != nil || admit(pendingFault.count, "pending_faults") { pendingFault[ctx.instance] = (ts, nil, StoredLine(line: e.line), 0) }
        case .pageAlloc:
            if var p = pendingFault[ctx.instance], p.allocNs == nil { p.allocNs = ts; p.allocLine = StoredLine(line: e.line); pendingFault[ctx.instance] = p }
        case let .directMap(page, valid):
            if valid { restore(page: page, e, ctx, emit) } else { remove(page: page, e, ctx, emit) }
        case let .directMapReturn(valid, result):
            if !valid && result != 0 {
                emit.anomaly(anomaly(e, "removal_failed", "set_direct_map_invalid_noflush returned \(result)"))
            }
        case let .tlbFlushKernelRange(start, end):
            sawFlush = true
            // The removing context's next flush is its removal's: `secretmem_fault` flushes
            // `page_address(page) .. +PAGE_SIZE` right after `set_direct_map_invalid_noflush(page)`.
            if let page = awaitingFlush.removeValue(forKey: ctx.instance), var f = frames[page], f.state == .removedStale {
                if !isDirectMapAddress(start) {
                    // A page with no direct-map address: on i386 a HIGHMEM page gives `start=0x0 end=0x1000`.
                    // Nothing was removed.
                    if let pfn = f.pfn, pageOfPfn[pfn] == page { pageOfPfn[pfn] = nil }
                    frames[page] = nil
                    removals -= 1
                    noAlias(page)
                    return
                }
                if f.pfn == nil, let pfn = resolver.profile.pfn(forDirectMapAddress: start) {
                    // The layout did not give the pfn; the flushed direct-map address does.
                    f.pfn = pfn
                    frames[page] = f
                    if pageOfPfn[pfn] != nil || admit(pageOfPfn.count, "frames_by_pfn") { pageOfPfn[pfn] = page }
                }
            }
            flushRange(start: start, end: end, at: ts, emit)
        case let .secretmemFree(folio):
            if pendingFree[ctx.instance] != nil || admit(pendingFree.count, "pending_frees") { pendingFree[ctx.instance] = folio }
        case let .pageFree(pfn, order):
            sawPageFree = true
            freed(pfn: pfn, order: order, at: ts, emit)
        case let .fault(address, _, code, user):
            // A not-present supervisor fault on a direct-map address of a removed frame.
            guard !user, code & 0x5 == 0, let pfn = resolver.profile.pfn(forDirectMapAddress: address),
                  let page = pageOfPfn[pfn], let f = frames[page], f.state == .removed || f.state == .removedStale else { return }
            faultsOnRemoved += 1
            emit.access(AccessRecord(model: name, timestamp: ts, line: e.line, cpu: ctx.cpu, pid: ctx.pid, comm: ctx.comm,
                                     context: ctx.kind, address: address, frame: .pfn(pfn), write: code & 0x2 != 0,
                                     accessClass: "removed_direct_map", outcome: .blocked, site: e.site, uncertain: f.uncertain))
        case let .gupAcquire(_, _, start, _, _, _):
            // gup refuses secretmem VMAs (check_vma_flags): an attempt, not an access.
            let onSecret = secretVMAs.contains { start >= $0.start && start < $0.end }
            if pendingGupOnSecret[ctx.instance] != nil || admit(pendingGupOnSecret.count, "pending_gups") { pendingGupOnSecret[ctx.instance] = onSecret }
        case let .gupReturn(_, _, result):
            if pendingGupOnSecret.removeValue(forKey: ctx.instance) == true && result < 0 { gupRefused += 1 }
        default:
            break
        }
    }

    private func owner(of e: ProtEvent, _ ctx: ExecutionContext) -> Owner? {
        if pendingFault[ctx.instance] != nil || pendingFree[ctx.instance] != nil { return .secretmem }
        guard e.site != 0, let name = symbols?.string(e.site) else { return nil }
        if name.contains("secretmem") { return .secretmem }
        if name.contains("gmem") || name.contains("guest_memfd") { return .gmem }
        return nil
    }

    /// The caller names (stack traces, kretprobes) used to attribute `set_direct_map_*` calls.
    let symbols: StringTable?

    private func remove(page: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard let owner = owner(of: e, ctx) else { otherRemovals += 1; return }
        let fault = pendingFault.removeValue(forKey: ctx.instance)
        let pfn = resolver.pfn(forPage: page)
        if resolver.profile.arch == .i386, let pfn, pfn >= DirectMapModel.i386FirstHighmemPfn {
            noAlias(page)      // HIGHMEM: no direct-map alias to remove
            return
        }
        guard frames[page] != nil || admit(frames.count, "frames") else { return }
        removals += 1
        var f = Frame(state: .removedStale, owner: owner, pfn: pfn, allocNs: fault?.allocNs ?? fault?.ts ?? e.timestamp,
                      faultNs: fault?.ts ?? e.timestamp, holderPid: ctx.pid, holderComm: ctx.comm, holderKind: ctx.kind,
                      cpu: ctx.cpu, site: e.site)
        f.removedNs = e.timestamp
        f.removedLine = StoredLine(line: e.line)
        f.faultLine = fault?.line ?? f.removedLine
        f.allocLine = fault.map { $0.allocNs != nil ? $0.allocLine : $0.line } ?? f.removedLine
        frames[page] = f
        if let pfn, pageOfPfn[pfn] != nil || admit(pageOfPfn.count, "frames_by_pfn") { pageOfPfn[pfn] = page }
        // Inside `secretmem_fault` the flush of this page follows (guest_memfd makes its flush optional: not awaited).
        if fault != nil, awaitingFlush[ctx.instance] != nil || admit(awaitingFlush.count, "awaiting_flush") {
            awaitingFlush[ctx.instance] = page
        }
    }

    /// A removal that removed nothing: counted, no windows; its restore is not `restore_without_removal`.
    private func noAlias(_ page: UInt64) {
        removalsWithoutAlias += 1
        if withoutAlias.contains(page) || admit(withoutAlias.count, "frames_without_alias") { withoutAlias.insert(page) }
    }

    /// PRE_REMOVAL [alloc, invalidate): allocated and zeroed, still in the direct map (emitted once).
    private func emitPreRemoval(_ f: inout Frame, page: UInt64, _ emit: ObservationSink) {
        guard !f.preRemovalEmitted else { return }
        f.preRemovalEmitted = true
        emitPair(f, page: page, api: "pre_removal", open: f.allocNs, close: f.removedNs, cause: .stateChange, emit)
    }

    /// The capture could contain this frame's flush: it has the probe, and the frame's direct-map address is known.
    private func flushObservable(_ f: Frame) -> Bool { sawFlush && f.pfn != nil && resolver.profile.pageOffsetBase != nil }

    private func isDirectMapAddress(_ va: UInt64) -> Bool {
        guard let base = resolver.profile.pageOffsetBase else { return va != 0 }
        return va >= base
    }

    private func flushRange(start: UInt64, end: UInt64, at ts: UInt64, _ emit: ObservationSink) {
        guard let base = resolver.profile.pageOffsetBase, end > start, start >= base else { return }
        let first = (start - base) >> 12, last = (end - 1 - base) >> 12
        guard last >= first, last - first < 1 << 20 else { return }
        for (page, var f) in frames where f.state == .removedStale {
            guard let pfn = f.pfn, pfn >= first, pfn <= last else { continue }
            flushes += 1
            emitPreRemoval(&f, page: page, emit)
            emitEffective(f, page: page, api: "stale_tlb", open: f.removedNs, close: ts, cause: .flush, emit)
            f.state = .removed
            frames[page] = f
        }
    }

    private func restore(page: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        if withoutAlias.remove(page) != nil {
            pendingFree[ctx.instance] = nil
            return
        }
        guard var f = frames[page] else {
            if owner(of: e, ctx) != nil {
                emit.anomaly(anomaly(e, "restore_without_removal", "set_direct_map_default_noflush(\(hexString(page))) with no removal seen"))
            }
            return
        }
        restores += 1
        pendingFree[ctx.instance] = nil
        for (k, v) in awaitingFlush where v == page { awaitingFlush[k] = nil }
        emitPreRemoval(&f, page: page, emit)
        if f.state == .removedStale {
            // Never flushed: the stale-TLB window runs until the restore. With the flush probe in the capture that
            // is a finding (the kernel freed a frame other CPUs may still reach through stale TLB entries); without
            // it, the flush may simply not have been seen: the window is uncertain.
            var g = f
            if flushObservable(f) {
                emit.anomaly(anomaly(e, "flush_missing_at_free", "frame \(f.pfn.map(hexString) ?? hexString(page)) restored to the direct map with no flush_tlb_kernel_range since its removal"))
            } else {
                g.uncertain = true
            }
            emitEffective(g, page: page, api: "stale_tlb", open: f.removedNs, close: e.timestamp, cause: .stateChange, emit)
        }
        f.state = .restoredDirty
        f.restoredNs = e.timestamp
        f.restoredLine = StoredLine(line: e.line)
        f.holderPid = ctx.pid
        f.holderComm = ctx.comm
        f.holderKind = ctx.kind
        frames[page] = f
    }

    private func freed(pfn: UInt64, order: UInt8, at ts: UInt64, _ emit: ObservationSink) {
        guard let page = pageOfPfn[pfn], let f = frames[page], f.state == .restoredDirty else { return }
        // RESIDUAL: the secret is readable through the restored direct map until the page is zeroed and freed.
        emitPair(f, page: page, api: "residual", open: f.restoredNs, close: ts, cause: .stateChange, emit)
        // USER_ALIAS: the frame's whole life with the owner, fault to free (intended).
        emitWindow(f, page: page, layer: .intended, scope: .task, api: "user_alias", open: f.faultNs, close: ts, cause: .stateChange, emit)
        frames[page] = nil
        pageOfPfn[pfn] = nil
    }

    private func emitPair(_ f: Frame, page: UInt64, api: StaticString, open: UInt64, close: UInt64, cause: CloseCause, _ emit: ObservationSink, censored: Bool = false) {
        emitWindow(f, page: page, layer: .granted, scope: .ctx, api: api, open: open, close: close, cause: cause, emit, censored: censored)
        emitEffective(f, page: page, api: api, open: open, close: close, cause: cause, emit, censored: censored)
    }

    private func emitEffective(_ f: Frame, page: UInt64, api: StaticString, open: UInt64, close: UInt64, cause: CloseCause, _ emit: ObservationSink, censored: Bool = false) {
        emitWindow(f, page: page, layer: .effective, scope: .global, api: api, open: open, close: close, cause: cause, emit, censored: censored)
    }

    private func emitWindow(_ f: Frame, page: UInt64, layer: WindowLayer, scope: Scope, api: StaticString, open: UInt64, close: UInt64,
                            cause: CloseCause, _ emit: ObservationSink, censored: Bool = false) {
        var w = ExposureWindow(model: name, layer: layer, scope: scope, frame: f.pfn.map { .pfn($0) } ?? .page(page),
                               alias: layer == .intended ? "user" : "direct", api: api, holderPid: f.holderPid,
                               holderComm: f.holderComm, holderContext: f.holderKind, cpu: f.cpu, openNs: open, closeNs: close,
                               site: f.site, closeCause: cause)
        w.censoredRight = censored
        w.uncertain = f.uncertain
        w.openLine = DirectMapModel.openLine(f, api: api).line
        emit.window(w)
    }

    /// Each window kind opens at one of the frame's state changes: the trace line of that event.
    private static func openLine(_ f: Frame, api: StaticString) -> StoredLine {
        switch "\(api)" {
        case "pre_removal": return f.allocLine
        case "stale_tlb": return f.removedLine
        case "residual": return f.restoredLine
        case "user_alias": return f.faultLine
        default: return 0
        }
    }

    public func contextEnded(_ ctx: ExecutionContext, at ts: UInt64, line: Int, emit: ObservationSink) {}

    public func eventsLost(cpu: Int32, at timestamp: UInt64) {
        for k in frames.keys { frames[k]!.uncertain = true }
    }

    /// Windows still open at the end close there (censored). One whose closing event the capture could not contain
    /// is also uncertain (reporting conventions, "Unobserved closing events"): STALE_TLB without the flush probe (or
    /// without the frame's direct-map address to match a flush), RESIDUAL without `mm_page_free` (or without the
    /// frame's pfn to match it).
    public func finish(at ts: UInt64, emit: ObservationSink) {
        for page in frames.keys.sorted() {
            var f = frames[page]!
            emitPreRemoval(&f, page: page, emit)
            // RESIDUAL and `user_alias` end at the frame's free.
            var untilFree = f
            untilFree.uncertain = f.uncertain || !sawPageFree || f.pfn == nil
            switch f.state {
            case .removedStale:
                var g = f
                g.uncertain = f.uncertain || !flushObservable(f)
                emitEffective(g, page: page, api: "stale_tlb", open: f.removedNs, close: ts, cause: .traceEnd, emit, censored: true)
            case .restoredDirty:
                emitPair(untilFree, page: page, api: "residual", open: f.restoredNs, close: ts, cause: .traceEnd, emit, censored: true)
            case .removed, .allocated:
                break
            }
            if f.state != .allocated {
                emitWindow(untilFree, page: page, layer: .intended, scope: .task, api: "user_alias", open: f.faultNs, close: ts,
                           cause: .traceEnd, emit, censored: true)
            }
        }
        frames.removeAll()
        awaitingFlush.removeAll()
        withoutAlias.removeAll()
    }

}
