import TraceIngest
import EventModel
import Replay

/// Variant A of the spec (§4): PKS (supervisor protection keys) protecting pgmap pages, granted
/// through kmap_local/kmap_atomic, with the three designs for global `kmap()` argued in seed 002.
///
/// State: per task the nesting counter `cnt` (V10 `pgmap_prot_count`, shared with IRQs that
/// interrupt the task), per context instance its PKRS value for the key (`RW`/`AD`). IRQ and
/// exception instances start at `PKS_INIT_VALUE` (key AD), so an IRQ that maps while its task holds a
/// grant only bumps the counter and then faults (E-A3). The model reproduces that, it does not fix it.
///
/// Accesses: real PK faults (`page_fault_kernel` with `error_code` bit 5) and, for "what if" replays of
/// traces from kernels without PKS, the accesses a kmap implies: the mapping context touches the page
/// when the call returns, and a context that releases another context's `kmap()` touched it before.
public final class PKSModel: ProtectionModel {
    public enum FaultMode: String, Sendable, CaseIterable { case strict, relaxed, silent, off }
    /// §4.5: A0 "unsupported" (V8-V10 as posted), A1 "global-unprotect" (RFC Oct 2020), A2 "flag-fault" (tglx).
    public enum KmapGlobal: String, Sendable, CaseIterable {
        case unsupported, globalUnprotect = "global-unprotect", flagFault = "flag-fault"
    }
    /// A2: when a task-context temporary unprotect ends.
    public enum ContextEnd: String, Sendable, CaseIterable { case schedOut = "sched-out", returnToUser = "return-to-user" }

    public let name: StaticString = "pks"
    let resolver: AddressResolver
    let mode: FaultMode
    let kmapGlobal: KmapGlobal
    let contextEnd: ContextEnd
    let protected: ProtectedFrames
    /// An access within this long after the context's last revoke is `after_revoke`.
    let afterRevokeNs: UInt64
    static let key: UInt32 = 1

    public var options: [String: String] {
        ["mode": mode.rawValue, "kmap_global": kmapGlobal.rawValue, "context_end": contextEnd.rawValue,
         "protect": protected.description, "after_revoke_ns": String(afterRevokeNs)]
    }

    public let accessClasses = ["stray", "handoff", "irq_shadow", "after_revoke", "global_kmap"]
    public let anomalyKinds = ["counter_underflow", "cross_ctx_release", "global_kmap_unsupported", "fork_with_grant",
                               "fault_while_granted", "unmatched_release"]

    /// Why a context's key is RW (the effective windows are broken down by it, as `api`).
    enum RWCause: UInt8 {
        case grant, relaxedFixup, flagFaultUnprotect, exceptionUpdate, pksSet
        var name: StaticString {
            switch self {
            case .grant: return "grant"
            case .relaxedFixup: return "relaxed_fixup"
            case .flagFaultUnprotect: return "flag_fault_unprotect"
            case .exceptionUpdate: return "exception_update"
            case .pksSet: return "pks_set"
            }
        }
    }

    struct ContextState {
        var kind: ContextKind
        var pid: Int32
        var comm: StringTable.ID
        var cpu: Int32
        var rw = false
        var rwCause = RWCause.grant
        var running = false
        var segmentStart: UInt64?
        /// Balanced grants this context made itself (the GRANTED window is open while > 0).
        var ownGrants = 0
        var grantOpen: UInt64 = 0
        var grantSite: StringTable.ID = 0
        var lastRevoke: UInt64?
        var uncertain = false
        /// A2: the temporary unprotect ends when the task returns to user.
        var unprotectUntilUser = false
    }

    /// A kmap_local grant still outstanding: who made it, and on which frame.
    struct LocalGrant {
        var holder: ContextInstance
        var vaddr: UInt64?
        var frame: UInt64?
        var protected: Bool
    }

    /// A `kmap()` still outstanding on a frame.
    struct GlobalKmap {
        var holder: ContextInstance
        var holderPid: Int32
        var holderComm: StringTable.ID
        var holderKind: ContextKind
        var cpu: Int32
        var open: UInt64
        var site: StringTable.ID
    }

    private var contexts: [ContextInstance: ContextState] = [:]
    private var count: [Int32: UInt32] = [:]
    private var localGrants: [Int32: [LocalGrant]] = [:]
    private var pendingLocal: [ContextInstance: (ts: UInt64, page: UInt64, decided: Bool)] = [:]
    private var pendingHigh: [ContextInstance: UInt64] = [:]
    private var kmaps: [UInt64: [GlobalKmap]] = [:]   // by struct page *
    /// Per CPU: the stack of running context instances (bottom = the current task).
    private var cpuStacks: [Int32: [ContextInstance]] = [:]
    private var sawPksSet = false
    // A1 global unprotect.
    private var globalCount = 0
    private var globalOpen: UInt64?
    private var globalLagCPUs: [Int32: UInt64] = [:]   // CPUs not yet switched since the disable
    private var cpusSeen: Set<Int32> = []
    private var firstTimestamp: UInt64?
    private var lastTimestamp: UInt64 = 0

    private var grants = 0, revokes = 0, faultsObserved = 0, faultsImplied = 0, userPKFaults = 0, silentFixups = 0
    private var unresolvedFaults = 0, warnings = 0

    /// The run's cap on live entries (`LiveStateLimit`): every map here asks it before taking a new key.
    /// `count` and `localGrants` hold no zero counts or empty lists, so they hold only live grants.
    private var limit = LiveStateLimit()
    public func attach(_ limit: LiveStateLimit) { self.limit = limit }
    /// Live totals of the per-key lists, each capped like a map.
    private var localGrantEntries = 0, kmapHolds = 0
    /// kmap_local grants tracked per task: the kernel allows 16 (`KM_MAX_IDX`); deeper ones are refused.
    static let trackedLocalDepth = 64

    /// A new key for `map`, which holds `live` entries: admitted, or counted as refused.
    @inline(__always)
    private func admit(_ live: Int, _ map: StaticString) -> Bool {
        if limit.admits(live) { return true }
        limit.refuse(name, map)
        return false
    }
    public var counters: [String: Int] {
        ["grants": grants, "revokes": revokes, "pk_faults_observed": faultsObserved, "accesses_implied": faultsImplied,
         "user_pk_faults": userPKFaults, "a1_silent_fixups": silentFixups, "unresolved_faults": unresolvedFaults,
         "warnings": warnings]
    }

    public init(resolver: AddressResolver, mode: FaultMode = .relaxed, kmapGlobal: KmapGlobal = .unsupported,
                contextEnd: ContextEnd = .schedOut, protected: ProtectedFrames = .kmapped, afterRevokeNs: UInt64 = 10_000) {
        self.resolver = resolver
        self.mode = mode
        self.kmapGlobal = kmapGlobal
        self.contextEnd = contextEnd
        self.protected = protected
        self.afterRevokeNs = afterRevokeNs
    }

    private static let tags: Set<ProtEventTag> = [.contextSwitch, .taskFork, .taskExit, .fault, .kmap, .kmapReturn,
                                                  .kunmapHigh, .kunmapLocal, .pgmapGrant, .pgmapRevoke, .pksSet,
                                                  .pksExceptionUpdate, .syscall]
    public func wants(_ tag: ProtEventTag) -> Bool { PKSModel.tags.contains(tag) }

    // MARK: Events

    public private(set) var applicable = false

    public func apply(_ e: ProtEvent, in ctx: ExecutionContext, emit: ObservationSink) {
        note(ctx, at: e.timestamp)
        switch e.kind {
        case .kmap, .pgmapGrant, .pksSet: applicable = true
        case let .fault(_, _, code, user) where code & 0x20 != 0 && !user && code & 0x4 == 0: applicable = true
        default: break
        }
        switch e.kind {
        case let .kmap(api, page, pfn):
            switch api {
            case .kmapLocalPage:
                touchAfterReturn(ctx, at: e.timestamp, e, emit)   // a previous call whose return was not probed
                if let page, pendingLocal[ctx.instance] != nil || admit(pendingLocal.count, "pending_kmap_local") {
                    pendingLocal[ctx.instance] = (e.timestamp, page, false)
                }
                if protected == .kmapped, let page { decideLocal(frame: pfn ?? resolver.pfn(forPage: page), e, ctx, emit) }
            case .kmapLocalPfn:
                if var p = pendingLocal[ctx.instance], !p.decided {
                    p.decided = true
                    pendingLocal[ctx.instance] = p
                    grantLocal(frame: pfn, open: p.ts, e, ctx, emit)
                } else if pendingLocal[ctx.instance] == nil {
                    grantLocal(frame: pfn, open: e.timestamp, e, ctx, emit)
                }
            case .kmapHigh:
                if let page { kmapGlobalCall(page: page, e, ctx, emit) }
            case .kunmapLocal: break
            }
        case let .kmapReturn(api, vaddr):
            switch api {
            case .kmapLocalPage:
                if let p = pendingLocal.removeValue(forKey: ctx.instance) {
                    if !p.decided { grantLocal(frame: resolver.pfn(forPage: p.page), open: p.ts, e, ctx, emit) }
                    touchAfterReturn(ctx, at: e.timestamp, e, emit)
                    // Changed in place (`values[index]`): no copy of the list.
                    if let li = localGrants.index(forKey: ctx.pid),
                       let i = localGrants.values[li].lastIndex(where: { $0.holder == ctx.instance && $0.vaddr == nil }) {
                        localGrants.values[li][i].vaddr = vaddr & ~0xfff
                    }
                    // The kretprobe's caller is the call site of the grant.
                    if e.site != 0, var c = contexts[ctx.instance], c.ownGrants > 0, c.grantSite == 0 {
                        c.grantSite = e.site
                        contexts[ctx.instance] = c
                    }
                }
            case .kmapHigh:
                if let page = pendingHigh.removeValue(forKey: ctx.instance) { impliedMapperAccess(page: page, e, ctx, emit) }
            default: break
            }
        case let .kunmapLocal(vaddr):
            touchAfterReturn(ctx, at: e.timestamp, e, emit)
            revokeLocal(vaddr: vaddr & ~0xfff, e, ctx, emit)
        case let .kunmapHigh(page):
            kunmapGlobalCall(page: page, e, ctx, emit)
        case .pgmapGrant:
            grant(frameProtected: true, open: e.timestamp, e, ctx, emit)
        case .pgmapRevoke:
            revoke(e, ctx, emit)
        case let .pksSet(key, rw) where key == PKSModel.key:
            sawPksSet = true
            setRW(ctx.instance, rw, cause: .pksSet, at: e.timestamp, cause: .unmap, emit)
        case let .pksExceptionUpdate(key, rw) where key == PKSModel.key:
            setRW(ctx.instance, rw, cause: .exceptionUpdate, at: e.timestamp, cause: .unmap, emit)
        case let .fault(address, _, code, user):
            if code & 0x20 != 0 { pkFault(address: address, code: code, user: user, e, ctx, emit) }
            if user || code & 0x4 != 0 { returnedToUser(pid: ctx.pid, at: e.timestamp, emit) }
        case .syscall:
            returnedToUser(pid: ctx.pid, at: e.timestamp, emit)
        case let .contextSwitch(prev, _, _, next, nextComm):
            switchTasks(prev: prev, next: next, nextComm: nextComm, cpu: e.cpu, at: e.timestamp, emit)
        case let .taskFork(parent, child, childComm):
            if (count[parent] ?? 0) > 0 {
                emit.anomaly(anomaly(e, "fork_with_grant", "task \(parent) forked \(child) with pgmap_prot_count \(count[parent]!); whether the child inherits it is open (spec §10.4)"))
            }
            if contexts[.task(child)] != nil || admit(contexts.count, "contexts") {
                contexts[.task(child)] = ContextState(kind: .task, pid: child, comm: childComm, cpu: e.cpu)
            }
        case let .taskExit(pid):
            if var c = contexts[.task(pid)] {
                closeSegment(&c, at: e.timestamp, cause: .exit, emit)
                if c.ownGrants > 0 { closeGrant(&c, .task(pid), at: e.timestamp, cause: .exit, emit) }
                contexts[.task(pid)] = nil
            }
            count[pid] = nil
            if let list = localGrants.removeValue(forKey: pid) { localGrantEntries -= list.count }
        default:
            break
        }
    }

    /// Makes sure the context and its CPU stack are known; the first event of a CPU names its task.
    private func note(_ ctx: ExecutionContext, at ts: UInt64) {
        if firstTimestamp == nil { firstTimestamp = ts }
        lastTimestamp = max(lastTimestamp, ts)
        cpusSeen.insert(ctx.cpu)
        let task = ContextInstance.task(ctx.pid)
        let taskKnown = contexts[task] != nil
        if !taskKnown, admit(contexts.count, "contexts") {
            contexts[task] = ContextState(kind: .task, pid: ctx.pid, comm: ctx.comm, cpu: ctx.cpu)
        }
        if cpuStacks[ctx.cpu] == nil {
            cpuStacks[ctx.cpu] = [task]
            contexts[task]?.running = true
        }
        if let c = contexts[ctx.instance] {
            if c.comm != ctx.comm { contexts[ctx.instance]!.comm = ctx.comm }   // prctl(PR_SET_NAME) renames tasks mid-trace
        } else if ctx.instance != task, admit(contexts.count, "contexts") {
            contexts[ctx.instance] = ContextState(kind: ctx.kind, pid: ctx.pid, comm: ctx.comm, cpu: ctx.cpu, running: true)
        }
    }

    /// A grant by this context can be modelled: the context is tracked and its task's count has room.
    private func canGrant(_ ctx: ExecutionContext) -> Bool {
        contexts[ctx.instance] != nil && (count[ctx.pid] != nil || admit(count.count, "grant_counts"))
    }

    // MARK: Grants

    /// `kmap_local_page` with `--protect kmapped`: protected whatever the frame; with ranges, once the frame is known.
    private func decideLocal(frame: UInt64?, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard var p = pendingLocal[ctx.instance], !p.decided else { return }
        p.decided = true
        pendingLocal[ctx.instance] = p
        grantLocal(frame: frame, open: p.ts, e, ctx, emit)
    }

    private func grantLocal(frame: UInt64?, open: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        let isProtected = protected.contains(pfn: frame)
        let depth = localGrants[ctx.pid]?.count
        guard depth != nil || admit(localGrants.count, "local_grants") else { return }
        guard (depth ?? 0) < PKSModel.trackedLocalDepth else {
            limit.refuse(name, "local_grant_depth", fixedLimit: PKSModel.trackedLocalDepth, noun: "kmap_local grants of one task")
            return
        }
        guard admit(localGrantEntries, "local_grant_entries") else { return }
        if isProtected && mode != .off && !canGrant(ctx) { return }
        localGrants[ctx.pid, default: []].append(LocalGrant(holder: ctx.instance, vaddr: nil, frame: frame, protected: isProtected))
        localGrantEntries += 1
        guard isProtected else { return }
        grant(frameProtected: true, open: open, e, ctx, emit)
        // The mapping context touches the page once the call returns.
        if pendingTouch[ctx.instance] != nil || admit(pendingTouch.count, "pending_touches") { pendingTouch[ctx.instance] = frame }
    }

    /// Frames a context mapped with kmap_local and will touch when the call returns.
    private var pendingTouch: [ContextInstance: UInt64?] = [:]

    private func touchAfterReturn(_ ctx: ExecutionContext, at ts: UInt64, _ e: ProtEvent, _ emit: ObservationSink) {
        guard let frame = pendingTouch.removeValue(forKey: ctx.instance) else { return }
        impliedAccess(by: ctx, frame: frame, page: nil, at: ts, e, emit)
    }

    /// `PGMAP_GRANT` (V10 §4.3): `old = cnt[T]++`; on 0 -> 1 the key becomes RW for this context.
    private func grant(frameProtected: Bool, open: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard mode != .off, canGrant(ctx), var c = contexts[ctx.instance] else { return }
        grants += 1
        let old = count[ctx.pid] ?? 0
        count[ctx.pid] = old &+ 1 == 0 ? nil : old &+ 1
        if c.ownGrants == 0 { c.grantOpen = open; c.grantSite = e.site }
        c.ownGrants += 1
        contexts[ctx.instance] = c
        if old == 0 && !sawPksSet { setRW(ctx.instance, true, cause: .grant, at: open, cause: .unmap, emit) }
    }

    /// `PGMAP_REVOKE`: `cnt[T]--` (u32); on reaching 0 the key becomes AD for this context.
    private func revoke(_ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink, grantHolder: ContextInstance? = nil) {
        // A context not tracked (refused at the cap) had its grants refused too: nothing to revoke.
        guard mode != .off, contexts[ctx.instance] != nil else { return }
        revokes += 1
        let old = count[ctx.pid] ?? 0
        let new = old &- 1
        if new == 0 {
            count[ctx.pid] = nil
        } else if old != 0 || admit(count.count, "grant_counts") {
            count[ctx.pid] = new
        }
        if old == 0 {
            emit.anomaly(anomaly(e, "counter_underflow", "pgmap_prot_count of task \(ctx.pid) wrapped to 0xffffffff"))
        }
        let holder = grantHolder ?? ctx.instance
        if holder != ctx.instance {
            emit.anomaly(anomaly(e, "cross_ctx_release", "released in \(ctx.kind.rawValue) context of task \(ctx.pid) a grant made by another context; the maker's grant leaks"))
        } else if var c = contexts[holder], c.ownGrants > 0 {
            c.ownGrants -= 1
            if c.ownGrants == 0 { closeGrant(&c, holder, at: e.timestamp, cause: .unmap, emit) }
            contexts[holder] = c
        }
        if var c = contexts[ctx.instance] { c.lastRevoke = e.timestamp; contexts[ctx.instance] = c }
        if new == 0 && !sawPksSet { setRW(ctx.instance, false, cause: .grant, at: e.timestamp, cause: .unmap, emit) }
    }

    private func revokeLocal(vaddr: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        // Count-based (E3): the order of unmaps does not matter; find the grant by address.
        guard let li = localGrants.index(forKey: ctx.pid),
              let i = localGrants.values[li].lastIndex(where: { $0.vaddr == vaddr }) ?? localGrants.values[li].lastIndex(where: { $0.vaddr == nil }) else {
            // No grant seen: it predates the trace (left-censored), nothing to revoke that we know of.
            return
        }
        let g = localGrants.values[li].remove(at: i)     // in place: no copy of the list
        localGrantEntries -= 1
        if localGrants.values[li].isEmpty { localGrants.remove(at: li) }
        if g.protected { revoke(e, ctx, emit, grantHolder: g.holder) }
    }

    // MARK: kmap() designs (§4.5)

    private func kmapGlobalCall(page: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        let frame = resolver.pfn(forPage: page)
        guard mode != .off, protected.contains(pfn: frame) else { return }
        let k = GlobalKmap(holder: ctx.instance, holderPid: ctx.pid, holderComm: ctx.comm, holderKind: ctx.kind, cpu: ctx.cpu,
                           open: e.timestamp, site: e.site)
        guard kmaps[page] != nil || admit(kmaps.count, "kmapped_pages"), admit(kmapHolds, "kmap_holds") else { return }
        kmaps[page, default: []].append(k)
        kmapHolds += 1
        switch kmapGlobal {
        case .unsupported:
            emit.anomaly(anomaly(e, "global_kmap_unsupported", "kmap() of a protected page grants nothing in V9/V10; accesses through it fault"))
        case .globalUnprotect:
            globalCount += 1
            if globalCount == 1 {
                // Enabling: every CPU that then faults gets the key silently; closing waits for each CPU's next switch.
                if globalOpen == nil { globalOpen = e.timestamp }
                // A CPU still open from the last disable runs straight into this enable.
                for (cpu, lag) in globalLagCPUs.sorted(by: { $0.key < $1.key }) {
                    emitGlobal(open: lag, close: e.timestamp, scope: .cpu, cpu: cpu, cause: .unmap, api: "global_unprotect_lag", emit)
                }
                globalLagCPUs.removeAll()
            }
        case .flagFault:
            break
        }
        if pendingHigh[ctx.instance] != nil || admit(pendingHigh.count, "pending_kmap_high") { pendingHigh[ctx.instance] = page }
    }

    private func kunmapGlobalCall(page: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard mode != .off, var list = kmaps[page], !list.isEmpty else { return }
        let i = list.firstIndex { $0.holder == ctx.instance } ?? list.firstIndex { $0.holderPid == ctx.pid } ?? 0
        let k = list[i]
        // Someone else's kmap(): the releasing context used the mapping it was handed (seed 000, 002).
        if k.holderPid != ctx.pid || (k.holder != ctx.instance && ctx.kind != .task) {
            impliedAccess(by: ctx, frame: resolver.pfn(forPage: page), page: page, at: e.timestamp, e, emit)
        }
        list.remove(at: i)
        kmapHolds -= 1
        kmaps[page] = list.isEmpty ? nil : list
        if kmapGlobal != .unsupported {
            // A1 and A2 grant the kmap: a page-granular GRANTED window, global scope.
            emit.window(ExposureWindow(model: name, layer: .granted, scope: .global, frame: frameRef(page), alias: "pks_key",
                                       api: kmapGlobal == .globalUnprotect ? "global_unprotect" : "kmap_flag",
                                       holderPid: k.holderPid, holderComm: k.holderComm, holderContext: k.holderKind,
                                       cpu: k.cpu, openNs: k.open, closeNs: e.timestamp, site: k.site, closeCause: .unmap))
        }
        if kmapGlobal == .globalUnprotect {
            globalCount -= 1
            if globalCount == 0, let open = globalOpen {
                // Disabling rewrites the global cache; a CPU may keep the key until its next context switch.
                emitGlobal(open: open, close: e.timestamp, scope: .global, cpu: ctx.cpu, cause: .unmap, api: "global_unprotect", emit)
                globalOpen = nil
                for cpu in cpusSeen { globalLagCPUs[cpu] = e.timestamp }
            }
        }
    }

    private var globalAllows: Bool { kmapGlobal == .globalUnprotect && globalCount > 0 }

    private func impliedMapperAccess(page: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard kmaps[page]?.contains(where: { $0.holder == ctx.instance }) ?? false else { return }
        impliedAccess(by: ctx, frame: resolver.pfn(forPage: page), page: page, at: e.timestamp, e, emit)
    }

    // MARK: Accesses

    private func impliedAccess(by ctx: ExecutionContext, frame: UInt64?, page: UInt64?, at ts: UInt64, _ e: ProtEvent, _ emit: ObservationSink) {
        faultsImplied += 1
        access(by: ctx, address: 0, frame: frame, page: page, write: false, at: ts, e, emit)
    }

    private func pkFault(address: UInt64, code: UInt64, user: Bool, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        // A user-mode PK fault is PKU (user keys), not PKS.
        if user || code & 0x4 != 0 { userPKFaults += 1; return }
        faultsObserved += 1
        let frame = resolver.profile.pfn(forDirectMapAddress: address)
        guard frame != nil || protected != .kmapped else { unresolvedFaults += 1; return }
        if contexts[ctx.instance]?.rw ?? false {
            emit.anomaly(anomaly(e, "fault_while_granted", "PK fault at \(hexString(address)) in a context whose key is RW"))
        }
        access(by: ctx, address: address, frame: frame, page: nil, write: code & 0x2 != 0, at: e.timestamp, e, emit, observed: true)
    }

    /// An access to a protected frame: unprotected unless the context's key is RW (or A1's global cache is).
    private func access(by ctx: ExecutionContext, address: UInt64, frame: UInt64?, page: UInt64?, write: Bool, at ts: UInt64,
                        _ e: ProtEvent, _ emit: ObservationSink, observed: Bool = false) {
        guard mode != .off else { return }
        guard protected.contains(pfn: frame) || (observed && protected == .kmapped) else { return }
        if contexts[ctx.instance]?.rw ?? false { return }
        if globalAllows || globalLagCPUs[ctx.cpu] != nil {
            // A1: the fault ANDs the MSR with the global value for the rest of the time slice, silently.
            // That reach is the global window (and the CPU's lag until it switches): no window of its own.
            silentFixups += 1
            return
        }
        let cls = classify(ctx: ctx, frame: frame, page: page, at: ts)
        var outcome: AccessRecord.Outcome
        switch mode {
        case .strict: outcome = .blocked
        case .relaxed, .silent:
            if kmapGlobal == .flagFault && !cls.pageIsKmapped {
                // A2 pardons only pages that are "globally unprotected" (kmap'ed); every other PK fault dies.
                outcome = .blocked
            } else {
                outcome = .fixedUp
                if mode == .relaxed { warnings += 1 }
                let cause: RWCause = kmapGlobal == .flagFault ? .flagFaultUnprotect : .relaxedFixup
                if var c = contexts[ctx.instance], kmapGlobal == .flagFault, contextEnd == .returnToUser, ctx.kind == .task {
                    c.unprotectUntilUser = true
                    contexts[ctx.instance] = c
                }
                setRW(ctx.instance, true, cause: cause, at: ts, cause: .unmap, emit)
            }
        case .off: return
        }
        emit.access(AccessRecord(model: name, timestamp: ts, line: e.line, cpu: ctx.cpu, pid: ctx.pid, comm: ctx.comm,
                                 context: ctx.kind, address: address, frame: frame.map { .pfn($0) }, write: write,
                                 accessClass: cls.name, outcome: outcome, site: e.site,
                                 uncertain: contexts[ctx.instance]?.uncertain ?? false))
    }

    /// §4.6 sub-classes.
    enum AccessClass {
        case stray, handoff(kmapped: Bool), irqShadow, afterRevoke, globalKmap
        var name: StaticString {
            switch self {
            case .stray: return "stray"
            case .handoff: return "handoff"
            case .irqShadow: return "irq_shadow"
            case .afterRevoke: return "after_revoke"
            case .globalKmap: return "global_kmap"
            }
        }
        /// A2 pardons faults only on pages a `kmap()` marked globally unprotected.
        var pageIsKmapped: Bool {
            switch self {
            case .globalKmap, .handoff(kmapped: true): return true
            default: return false
            }
        }
    }

    /// Most specific first: IRQ shadow (E-A3), then the kmap() page cases, hand-off, after-revoke, stray.
    private func classify(ctx: ExecutionContext, frame: UInt64?, page: UInt64?, at ts: UInt64) -> AccessClass {
        if ctx.kind != .task, (count[ctx.pid] ?? 0) > 0 { return .irqShadow }
        let pageKmaps: [GlobalKmap]? = page.flatMap { kmaps[$0] } ?? frame.flatMap { f in
            kmaps.first { resolver.pfn(forPage: $0.key) == f }?.value
        }
        if let ks = pageKmaps, !ks.isEmpty {
            return ks.contains { $0.holder == ctx.instance } ? .globalKmap : .handoff(kmapped: true)
        }
        if let f = frame, localGrants.contains(where: { _, list in
            list.contains { $0.frame == f && $0.protected && $0.holder != ctx.instance }
        }) { return .handoff(kmapped: false) }
        if let r = contexts[ctx.instance]?.lastRevoke, ts >= r, ts - r <= afterRevokeNs { return .afterRevoke }
        return .stray
    }

    // MARK: Effective windows

    /// Sets the key's rights for a context; the EFFECTIVE layer is the time it is RW and running on top of its CPU.
    private func setRW(_ instance: ContextInstance, _ rw: Bool, cause rwCause: RWCause, at ts: UInt64, cause: CloseCause, _ emit: ObservationSink) {
        guard var c = contexts[instance] else { return }
        if c.rw == rw { return }
        if rw {
            c.rw = true
            c.rwCause = rwCause
            if c.running { c.segmentStart = ts }
        } else {
            closeSegment(&c, at: ts, cause: cause, emit)
            c.rw = false
            c.unprotectUntilUser = false
        }
        contexts[instance] = c
    }

    private func setRunning(_ instance: ContextInstance, _ running: Bool, at ts: UInt64, cause: CloseCause, _ emit: ObservationSink) {
        guard var c = contexts[instance], c.running != running else { return }
        c.running = running
        if running {
            if c.rw { c.segmentStart = ts }
        } else {
            closeSegment(&c, at: ts, cause: cause, emit)
        }
        contexts[instance] = c
    }

    private func closeSegment(_ c: inout ContextState, at ts: UInt64, cause: CloseCause, _ emit: ObservationSink, censored: Bool = false) {
        guard let s = c.segmentStart else { return }
        c.segmentStart = nil
        var w = ExposureWindow(model: name, layer: .effective, scope: c.kind == .task ? .task : .ctx, frame: nil, alias: "pks_key",
                               api: c.rwCause.name, holderPid: c.pid, holderComm: c.comm, holderContext: c.kind, cpu: c.cpu,
                               openNs: s, closeNs: ts, site: c.grantSite, closeCause: cause)
        w.censoredRight = censored
        w.uncertain = c.uncertain
        emit.window(w)
    }

    private func closeGrant(_ c: inout ContextState, _ instance: ContextInstance, at ts: UInt64, cause: CloseCause, _ emit: ObservationSink, censored: Bool = false) {
        var w = ExposureWindow(model: name, layer: .granted, scope: c.kind == .task ? .task : .ctx, frame: nil, alias: "pks_key",
                               api: "grant", holderPid: c.pid, holderComm: c.comm, holderContext: c.kind, cpu: c.cpu,
                               openNs: c.grantOpen, closeNs: ts, site: c.grantSite, closeCause: cause)
        w.censoredRight = censored
        w.uncertain = c.uncertain
        emit.window(w)
        c.ownGrants = 0
    }

    private func emitGlobal(open: UInt64, close: UInt64, scope: Scope, cpu: Int32, cause: CloseCause, api: StaticString, _ emit: ObservationSink, censored: Bool = false) {
        var w = ExposureWindow(model: name, layer: .effective, scope: scope, frame: nil, alias: "pks_key", api: api,
                               holderPid: -1, holderComm: 0, holderContext: .task, cpu: cpu, openNs: open, closeNs: close,
                               site: 0, closeCause: cause)
        w.censoredRight = censored
        emit.window(w)
    }

    // MARK: Contexts

    private func switchTasks(prev: Int32, next: Int32, nextComm: StringTable.ID, cpu: Int32, at ts: UInt64, _ emit: ObservationSink) {
        if let lagStart = globalLagCPUs.removeValue(forKey: cpu) {
            emitGlobal(open: lagStart, close: ts, scope: .cpu, cpu: cpu, cause: .schedOut, api: "global_unprotect_lag", emit)
        }
        setRunning(.task(prev), false, at: ts, cause: .schedOut, emit)
        if var c = contexts[.task(prev)], c.rw, kmapGlobal == .flagFault, c.rwCause == .flagFaultUnprotect, contextEnd == .schedOut {
            // A2: the temporary unprotect ends when the context is left.
            c.rw = false
            contexts[.task(prev)] = c
        }
        if contexts[.task(next)] == nil, admit(contexts.count, "contexts") {
            contexts[.task(next)] = ContextState(kind: .task, pid: next, comm: nextComm, cpu: cpu)
        }
        contexts[.task(next)]?.cpu = cpu
        cpuStacks[cpu] = [.task(next)]
        setRunning(.task(next), true, at: ts, cause: .schedOut, emit)
    }

    private func returnedToUser(pid: Int32, at ts: UInt64, _ emit: ObservationSink) {
        guard let c = contexts[.task(pid)], c.rw, c.unprotectUntilUser else { return }
        setRW(.task(pid), false, cause: .flagFaultUnprotect, at: ts, cause: .contextEnd, emit)
    }

    public func contextStarted(_ ctx: ExecutionContext, at ts: UInt64, emit: ObservationSink) {
        note(ctx, at: ts)
        let below = cpuStacks[ctx.cpu]?.last
        cpuStacks[ctx.cpu, default: []].append(ctx.instance)
        // Instances the engine dropped at a lost-events gap never end here: keep the stack to the
        // task and the engine's deepest nesting.
        if cpuStacks[ctx.cpu]!.count > ReplayEngine.maximumIRQDepth + 1 { cpuStacks[ctx.cpu]!.remove(at: 1) }
        if let below, below != ctx.instance { setRunning(below, false, at: ts, cause: .shadowed, emit) }
        // `note` tracked it, or refused it at the cap.
        if contexts[ctx.instance] != nil {
            contexts[ctx.instance] = ContextState(kind: ctx.kind, pid: ctx.pid, comm: ctx.comm, cpu: ctx.cpu, running: true)
        }
    }

    public func contextEnded(_ ctx: ExecutionContext, at ts: UInt64, line: Int, emit: ObservationSink) {
        pendingTouch[ctx.instance] = nil
        if var c = contexts.removeValue(forKey: ctx.instance) {
            closeSegment(&c, at: ts, cause: .contextEnd, emit)
            if c.ownGrants > 0 { closeGrant(&c, ctx.instance, at: ts, cause: .contextEnd, emit) }
        }
        pendingLocal[ctx.instance] = nil
        pendingHigh[ctx.instance] = nil
        if var st = cpuStacks[ctx.cpu] {
            st.removeAll { $0 == ctx.instance }
            cpuStacks[ctx.cpu] = st
            if let top = st.last { setRunning(top, true, at: ts, cause: .shadowed, emit) }
        }
    }

    public func eventsLost(cpu: Int32, at timestamp: UInt64) {
        for (k, var c) in contexts where c.cpu == cpu {
            c.uncertain = true
            contexts[k] = c
        }
    }

    public func finish(at ts: UInt64, emit: ObservationSink) {
        // In the order of their names (`irq(N)`, `task(N)`), built once per key: describing each key
        // inside the comparison went through reflection n log n times (minutes at a million tasks).
        let names = contexts.keys.map { k -> (String, ContextInstance) in
            switch k {
            case let .task(pid): return ("task(\(pid))", k)
            case let .irq(seq): return ("irq(\(seq))", k)
            }
        }
        for k in names.sorted(by: { $0.0 < $1.0 }).map(\.1) {
            var c = contexts[k]!
            closeSegment(&c, at: ts, cause: .traceEnd, emit, censored: true)
            if c.ownGrants > 0 { closeGrant(&c, k, at: ts, cause: .traceEnd, emit, censored: true) }
        }
        contexts.removeAll()
        if let open = globalOpen {
            emitGlobal(open: open, close: ts, scope: .global, cpu: -1, cause: .traceEnd, api: "global_unprotect", emit, censored: true)
        }
        for (cpu, lag) in globalLagCPUs.sorted(by: { $0.key < $1.key }) {
            emitGlobal(open: lag, close: ts, scope: .cpu, cpu: cpu, cause: .traceEnd, api: "global_unprotect_lag", emit, censored: true)
        }
        for page in kmaps.keys.sorted() where kmapGlobal != .unsupported {
            for k in kmaps[page]! {
                var w = ExposureWindow(model: name, layer: .granted, scope: .global, frame: frameRef(page), alias: "pks_key",
                                       api: kmapGlobal == .globalUnprotect ? "global_unprotect" : "kmap_flag",
                                       holderPid: k.holderPid, holderComm: k.holderComm, holderContext: k.holderKind,
                                       cpu: k.cpu, openNs: k.open, closeNs: ts, site: k.site, closeCause: .traceEnd)
                w.censoredRight = true
                emit.window(w)
            }
        }
        if mode == .off, let first = firstTimestamp {
            // PKS off: nothing is protected, the key is reachable by everyone for the whole trace.
            emitGlobal(open: first, close: ts, scope: .global, cpu: -1, cause: .traceEnd, api: "pks_off", emit, censored: true)
        }
    }

    private func frameRef(_ page: UInt64) -> FrameRef {
        resolver.pfn(forPage: page).map { .pfn($0) } ?? .page(page)
    }

    private func anomaly(_ e: ProtEvent, _ kind: String, _ detail: String) -> Anomaly {
        Anomaly(model: name, timestamp: e.timestamp, line: e.line, cpu: e.cpu, pid: e.pid, kind: kind, detail: detail)
    }
}

func hexString(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
