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
public final class PKSModel: ProtectionModel, ModelSupport {
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

    /// One reason a context's key is RW. The key is RW while any reason holds; the effective windows are
    /// broken down (`api`) by the reason that opened each on-CPU segment.
    enum RWCause: UInt8 {
        /// The context's own grant turned the key RW (`cnt` 0 -> 1 in this context) and it has not set AD since.
        case grant
        /// A0/A1 relaxed or silent mode: a PK fault was fixed up for this context.
        case relaxedFixup
        /// A2: a pardoned PK fault; lasts until the context is left (`--context-end`).
        case flagFaultUnprotect
        /// `pks_update_exception(K, RW)` seen in this context.
        case exceptionUpdate
        /// `pks_update_protection(K, RW)` seen in this context outside a grant of its own.
        case pksSet
        var name: StaticString {
            switch self {
            case .grant: return "grant"
            case .relaxedFixup: return "relaxed_fixup"
            case .flagFaultUnprotect: return "flag_fault_unprotect"
            case .exceptionUpdate: return "exception_update"
            case .pksSet: return "pks_set"
            }
        }
        var bit: UInt8 { 1 << rawValue }
    }

    /// The set of reasons a context's key is RW (empty: AD).
    struct RWReasons: Equatable {
        var bits: UInt8 = 0
        var isEmpty: Bool { bits == 0 }
        func contains(_ r: RWCause) -> Bool { bits & r.bit != 0 }
        mutating func insert(_ r: RWCause) { bits |= r.bit }
        mutating func remove(_ r: RWCause) { bits &= ~r.bit }
        /// Setting K to AD (`pks_set_noaccess`, a revoke that brings `cnt` to 0) clears every reason but
        /// A2's unprotect, which only leaving the context undoes (INT).
        mutating func setAD() { bits &= RWCause.flagFaultUnprotect.bit }
        /// The first held reason in declaration order (the lowest bit).
        var first: RWCause? { isEmpty ? nil : RWCause(rawValue: UInt8(bits.trailingZeroBitCount)) }
    }

    /// Small fields first, so that the entry stays within the size docs/reliability.md budgets.
    struct ContextState {
        var kind: ContextKind
        var reasons = RWReasons()
        /// Names the next on-CPU segment: the reason that turned the key RW, or (once that reason is gone
        /// while others remain) the first remaining one in `RWCause` order.
        var openedBy = RWCause.grant
        /// Names the segment open now (fixed when it opened).
        var segmentReason = RWCause.grant
        var pid: Int32
        var comm: StringTable.ID
        var cpu: Int32
        /// Balanced grants this context made itself (the GRANTED window is open while > 0).
        var ownGrants: Int32 = 0
        var grantSite: StringTable.ID = 0
        var running = false
        var uncertain = false
        /// Task: its `pgmap_prot_count` is known exactly (INT, as highmem's kmap_local stack): after a
        /// user-mode fault or a syscall entry while holding nothing (a task in user mode holds no grant), or
        /// after `sched_process_fork` from a parent known exactly to hold nothing. Lost events undo it.
        var exact = false
        /// The trace lines of the events that opened the segment and the grant (`protreplay windows`); each
        /// sits in padding next to its time, so the entry stays at its documented size.
        var segmentLine: StoredLine = 0
        var segmentStart: UInt64?
        var grantLine: StoredLine = 0
        var grantOpen: UInt64 = 0
        var lastRevoke: UInt64?
        /// When this instance began (an IRQ instance's grants cannot predate it).
        var startNs: UInt64 = 0
        var rw: Bool { !reasons.isEmpty }

        /// One more grant of its own; true for the first, which opens the GRANTED window.
        mutating func takeGrant(open: UInt64, line: StoredLine, site: StringTable.ID) -> Bool {
            let first = ownGrants == 0
            if first { grantOpen = open; grantLine = line; grantSite = site }
            ownGrants += 1
            return first
        }

        /// A reason for the key to be RW; the first one opens a segment if the context is running.
        /// - Parameter line: the trace line of the event that made it RW.
        mutating func add(_ reason: RWCause, at ts: UInt64, line: StoredLine) {
            guard !reasons.contains(reason) else { return }
            if reasons.isEmpty {
                openedBy = reason
                if running { segmentStart = ts; segmentReason = reason; segmentLine = line }
            }
            reasons.insert(reason)
        }

        init(kind: ContextKind, pid: Int32, comm: StringTable.ID, cpu: Int32, running: Bool = false, startNs: UInt64 = 0) {
            self.kind = kind; self.pid = pid; self.comm = comm; self.cpu = cpu; self.running = running; self.startNs = startNs
        }
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
        var openLine: StoredLine = 0
    }

    private var contexts: [ContextInstance: ContextState] = [:]
    private var count: [PidKey: UInt32] = [:]
    private var localGrants: [PidKey: [LocalGrant]] = [:]
    private var pendingLocal: [ContextInstance: (ts: UInt64, page: UInt64, decided: Bool, line: StoredLine)] = [:]
    private var pendingHigh: [ContextInstance: UInt64] = [:]
    private var kmaps: [UInt64: [GlobalKmap]] = [:]   // by struct page *
    /// Per CPU: the stack of running context instances (bottom = the current task).
    private var cpuStacks: [Int32: [ContextInstance]] = [:]
    private var sawPksSet = false
    // A1 global unprotect.
    private var globalCount = 0
    private var globalOpen: UInt64?
    private var globalLagCPUs: [Int32: UInt64] = [:]   // CPUs not yet switched since the disable
    /// The lines of the events that opened the global window and (for every CPU at once) the lag windows.
    private var globalOpenLine: StoredLine = 0, globalLagLine: StoredLine = 0
    private var cpusSeen: Set<Int32> = []
    private var cpuNoted: [Bool] = []
    private var firstTimestamp: UInt64?
    private var lastTimestamp: UInt64 = 0

    private var grants = 0, revokes = 0, faultsObserved = 0, faultsImplied = 0, userPKFaults = 0, silentFixups = 0
    private var unresolvedFaults = 0, warnings = 0
    /// PK faults resolved with the x86_64 default direct-map base (no `page_offset_base` known).
    private var faultsOnDefaultBase = 0
    /// Context instances whose own GRANTED window is open (`ownGrants > 0`): grants are key-wide (§1.3),
    /// so any of them makes another context's access a hand-off.
    private var holdersWithGrants = 0

    /// The run's cap on live entries (`LiveStateLimit`): every map here asks it before taking a new key.
    /// `count` and `localGrants` hold no zero counts or empty lists, so they hold only live grants.
    var limit = LiveStateLimit()
    public func attach(_ limit: LiveStateLimit) { self.limit = limit }
    /// Live totals of the per-key lists, each capped like a map.
    private var localGrantEntries = 0, kmapHolds = 0
    /// kmap_local grants tracked per task: the kernel allows 16 (`KM_MAX_IDX`); deeper ones are refused.
    static let trackedLocalDepth = 64

    public var counters: [String: Int] {
        ["grants": grants, "revokes": revokes, "pk_faults_observed": faultsObserved, "accesses_implied": faultsImplied,
         "user_pk_faults": userPKFaults, "a1_silent_fixups": silentFixups, "unresolved_faults": unresolvedFaults,
         "warnings": warnings, "faults_on_default_direct_map_base": faultsOnDefaultBase]
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
                    pendingLocal[ctx.instance] = (e.timestamp, page, false, StoredLine(line: e.line))
                }
                if protected == .kmapped, let page { decideLocal(frame: pfn ?? resolver.pfn(forPage: page), e, ctx, emit) }
            case .kmapLocalPfn:
                if var p = pendingLocal[ctx.instance], !p.decided {
                    p.decided = true
                    pendingLocal[ctx.instance] = p
                    grantLocal(frame: pfn, open: p.ts, openLine: p.line, e, ctx, emit)
                } else if pendingLocal[ctx.instance] == nil {
                    grantLocal(frame: pfn, open: e.timestamp, openLine: StoredLine(line: e.line), e, ctx, emit)
                }
            case .kmapHigh:
                if let page { kmapGlobalCall(page: page, e, ctx, emit) }
            case .kunmapLocal: break
            }
        case let .kmapReturn(api, vaddr):
            switch api {
            case .kmapLocalPage:
                if let p = pendingLocal.removeValue(forKey: ctx.instance) {
                    if !p.decided { grantLocal(frame: resolver.pfn(forPage: p.page), open: p.ts, openLine: p.line, e, ctx, emit) }
                    touchAfterReturn(ctx, at: e.timestamp, e, emit)
                    // Changed in place (`values[index]`): no copy of the list.
                    if let li = localGrants.index(forKey: PidKey(ctx.pid)),
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
            grant(frameProtected: true, open: e.timestamp, openLine: StoredLine(line: e.line), e, ctx, emit)
        case .pgmapRevoke:
            revoke(e, ctx, emit)
        case let .pksSet(key, rw) where key == PKSModel.key:
            sawPksSet = true
            // Inside the context's own grant (`pgmap_set_readwrite` -> `pks_set_readwrite`) the RW is the grant's.
            let inGrant = (contexts[ctx.instance]?.ownGrants ?? 0) > 0
            if rw { addReason(ctx.instance, inGrant ? .grant : .pksSet, at: e.timestamp) } else { setAD(ctx.instance, at: e.timestamp, emit) }
        case let .pksExceptionUpdate(key, rw) where key == PKSModel.key:
            if rw { addReason(ctx.instance, .exceptionUpdate, at: e.timestamp) } else { setAD(ctx.instance, at: e.timestamp, emit) }
        case let .fault(address, _, code, user):
            if code & 0x20 != 0 { pkFault(address: address, code: code, user: user, e, ctx, emit) }
            if user || code & 0x4 != 0 {
                sawReturnToUser = true
                returnedToUser(pid: ctx.pid, at: e.timestamp, emit)
                if ctx.kind == .task { inUserMode(pid: ctx.pid) }
            }
        case let .syscall(enter):
            sawReturnToUser = true
            returnedToUser(pid: ctx.pid, at: e.timestamp, emit)
            if enter && ctx.kind == .task { inUserMode(pid: ctx.pid) }
        case let .contextSwitch(prev, _, _, next, nextComm):
            switchTasks(prev: prev, next: next, nextComm: nextComm, cpu: e.cpu, at: e.timestamp, emit)
        case let .taskFork(parent, child, childComm):
            if (count[PidKey(parent)] ?? 0) > 0 {
                emit.anomaly(anomaly(e, "fork_with_grant", "task \(parent) forked \(child) with pgmap_prot_count \(count[PidKey(parent)]!); whether the child inherits it is open (spec §10.4)"))
            }
            if let old = contexts[.task(child)], old.ownGrants > 0 { holdersWithGrants -= 1 }
            if contexts[.task(child)] != nil || admit(contexts.count, "contexts") {
                var c = ContextState(kind: .task, pid: child, comm: childComm, cpu: e.cpu)
                // The child's count is a copy of the parent's or 0 (open, §10.4): 0 either way when the parent's is.
                c.exact = (contexts[.task(parent)]?.exact ?? false) && count[PidKey(parent)] == nil
                c.startNs = e.timestamp
                contexts[.task(child)] = c
            }
        case let .taskExit(pid):
            if var c = contexts[.task(pid)] {
                closeSegment(&c, at: e.timestamp, cause: .exit, emit)
                if c.ownGrants > 0 { closeGrant(&c, .task(pid), at: e.timestamp, cause: .exit, emit) }
                contexts[.task(pid)] = nil
            }
            count[PidKey(pid)] = nil
            if let list = localGrants.removeValue(forKey: PidKey(pid)) { localGrantEntries -= list.count }
        default:
            break
        }
    }

    /// Makes sure the context and its CPU stack are known; the first event of a CPU names its task.
    private func note(_ ctx: ExecutionContext, at ts: UInt64) {
        if firstTimestamp == nil { firstTimestamp = ts }
        lastTimestamp = max(lastTimestamp, ts)
        let task = ContextInstance.task(ctx.pid)
        // One lookup for the task, most events' context (prctl(PR_SET_NAME) renames tasks mid-trace).
        if let i = contexts.index(forKey: task) {
            if ctx.instance == task && contexts.values[i].comm != ctx.comm { contexts.values[i].comm = ctx.comm }
        } else if admit(contexts.count, "contexts") {
            contexts[task] = ContextState(kind: .task, pid: ctx.pid, comm: ctx.comm, cpu: ctx.cpu)
        }
        // A flag per CPU in front of the set and the stacks: hashing the CPU on every event costs. A CPU's
        // stack is made here, at its first event (every caller notes before it touches `cpuStacks`).
        let cpuIndex = Int(ctx.cpu)
        var firstOnCPU = false
        if cpuIndex >= 0 {
            if cpuIndex >= cpuNoted.count { cpuNoted.append(contentsOf: repeatElement(false, count: cpuIndex + 1 - cpuNoted.count)) }
            if !cpuNoted[cpuIndex] { cpuNoted[cpuIndex] = true; cpusSeen.insert(ctx.cpu); firstOnCPU = true }
        } else {
            cpusSeen.insert(ctx.cpu)
            firstOnCPU = cpuStacks[ctx.cpu] == nil
        }
        if firstOnCPU {
            cpuStacks[ctx.cpu] = [task]
            contexts[task]?.running = true
        }
        guard ctx.instance != task else { return }
        if let i = contexts.index(forKey: ctx.instance) {
            if contexts.values[i].comm != ctx.comm { contexts.values[i].comm = ctx.comm }
        } else if admit(contexts.count, "contexts") {
            contexts[ctx.instance] = ContextState(kind: ctx.kind, pid: ctx.pid, comm: ctx.comm, cpu: ctx.cpu, running: true, startNs: ts)
        }
    }

    /// A grant by this context can be modelled: the context is tracked and its task's count has room.
    /// Returns where the context is and the task's count (nil while 0), each map looked up once.
    private func grantRoom(_ ctx: ExecutionContext) -> (context: Dictionary<ContextInstance, ContextState>.Index, count: UInt32?)? {
        guard let ci = contexts.index(forKey: ctx.instance) else { return nil }
        let counted = count[PidKey(ctx.pid)]
        guard counted != nil || admit(count.count, "grant_counts") else { return nil }
        return (ci, counted)
    }

    // MARK: Grants

    /// `kmap_local_page` with `--protect kmapped`: protected whatever the frame; with ranges, once the frame is known.
    private func decideLocal(frame: UInt64?, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard var p = pendingLocal[ctx.instance], !p.decided else { return }
        p.decided = true
        pendingLocal[ctx.instance] = p
        grantLocal(frame: frame, open: p.ts, openLine: p.line, e, ctx, emit)
    }

    private func grantLocal(frame: UInt64?, open: UInt64, openLine: StoredLine, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        let isProtected = protected.contains(pfn: frame)
        let depth = localGrants[PidKey(ctx.pid)]?.count
        guard depth != nil || admit(localGrants.count, "local_grants") else { return }
        guard (depth ?? 0) < PKSModel.trackedLocalDepth else {
            limit.refuse(name, "local_grant_depth", fixedLimit: PKSModel.trackedLocalDepth, noun: "kmap_local grants of one task")
            return
        }
        guard admit(localGrantEntries, "local_grant_entries") else { return }
        if isProtected && mode != .off && grantRoom(ctx) == nil { return }
        localGrants[PidKey(ctx.pid), default: []].append(LocalGrant(holder: ctx.instance, vaddr: nil, frame: frame, protected: isProtected))
        localGrantEntries += 1
        guard isProtected else { return }
        grant(frameProtected: true, open: open, openLine: openLine, e, ctx, emit)
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
    private func grant(frameProtected: Bool, open: UInt64, openLine: StoredLine, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard mode != .off, let (ci, counted) = grantRoom(ctx) else { return }
        grants += 1
        let old = counted ?? 0
        count[PidKey(ctx.pid)] = old &+ 1 == 0 ? nil : old &+ 1
        // In place (`values[index]`): `count` changed, `contexts` did not, so the index holds.
        if contexts.values[ci].takeGrant(open: open, line: openLine, site: e.site) { holdersWithGrants += 1 }
        if old == 0 && !sawPksSet { contexts.values[ci].add(.grant, at: open, line: openLine) }
    }

    /// `PGMAP_REVOKE`: `cnt[T]--` (u32); on reaching 0 the key becomes AD for this context.
    ///
    /// Whose grant it releases: the context's own (it holds one), else the one `grantHolder` names (a
    /// kmap_local found by address), else another context of the same task when `cnt[T] > 0` (the count is
    /// shared with the IRQs that interrupt the task): a revoke by another context than the granter's is
    /// `cross_ctx_release`, and the granter's windows stay open (E2).
    /// With `cnt[T] == 0`: if the task's count is known exactly the kernel wraps it (`counter_underflow`,
    /// 0xffffffff, and no AD: later grants never reach 0 -> 1), and if another context holds a grant this is
    /// E2's revoke of the maker's grant (`cross_ctx_release` too); otherwise the grant predates the trace
    /// (§3.4, left-censoring): the count stays 0, the key becomes AD, and, when no other context's grant
    /// explains the revoke, a left-censored GRANTED window closes here.
    private func revoke(_ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink, grantHolder: ContextInstance? = nil) {
        // A context not tracked (refused at the cap) had its grants refused too: nothing to revoke.
        guard mode != .off, var c = contexts[ctx.instance] else { return }
        revokes += 1
        let old = count[PidKey(ctx.pid)] ?? 0
        let exact = ctx.kind == .task ? c.exact : (contexts[.task(ctx.pid)]?.exact ?? false)
        let own = grantHolder == ctx.instance || (grantHolder == nil && c.ownGrants > 0)
        let otherGranter = !own && (grantHolder != nil || old > 0)
        if own, c.ownGrants > 0 {
            // The last one closes the GRANTED window (and sets ownGrants to 0).
            if c.ownGrants == 1 { closeGrant(&c, ctx.instance, at: e.timestamp, cause: .unmap, emit) } else { c.ownGrants -= 1 }
        } else if otherGranter {
            let makerPid = grantHolder.flatMap { contexts[$0]?.pid } ?? ctx.pid
            let whose = makerPid == ctx.pid ? "another context of task \(ctx.pid)" : "task \(makerPid)"
            emit.anomaly(anomaly(e, "cross_ctx_release", "released in \(ctx.kind.rawValue) context of task \(ctx.pid) a grant made by \(whose); the maker's grant leaks"))
        }
        c.lastRevoke = e.timestamp
        var reachesZero = false
        if old > 0 {
            let new = old - 1
            count[PidKey(ctx.pid)] = new == 0 ? nil : new
            reachesZero = new == 0
        } else if exact {
            if admit(count.count, "grant_counts") { count[PidKey(ctx.pid)] = 0xffff_ffff }
            emit.anomaly(anomaly(e, "counter_underflow", "pgmap_prot_count of task \(ctx.pid) wrapped to 0xffffffff (its count was known exactly to be 0)"))
            // E2 as the spec tells it: the revoker underflows while the maker's count stays > 0. A pgmap-level
            // revoke names no page, so the maker is any context holding a grant (grants are key-wide).
            if !own && !otherGranter && holdersWithGrants > 0,
               let maker = contexts.first(where: { $0.value.ownGrants > 0 && $0.key != ctx.instance })?.value {
                emit.anomaly(anomaly(e, "cross_ctx_release", "released in \(ctx.kind.rawValue) context of task \(ctx.pid), which held no grant, while task \(maker.pid) holds one; the maker's grant leaks"))
            }
        } else {
            // The grant predates the trace: the count it raised is the one coming back to 0 here.
            reachesZero = true
            if !own && !otherGranter {
                var w = ExposureWindow(model: name, layer: .granted, scope: c.kind == .task ? .task : .ctx, frame: nil, alias: "pks_key",
                                       api: "grant", holderPid: c.pid, holderComm: c.comm, holderContext: c.kind, cpu: ctx.cpu,
                                       openNs: max(ctx.cpuTraceStart, c.startNs), closeNs: e.timestamp, site: e.site, closeCause: .unmap)
                w.censoredLeft = true
                w.uncertain = c.uncertain
                emit.window(w)
            }
        }
        contexts[ctx.instance] = c
        if reachesZero && !sawPksSet { setAD(ctx.instance, at: e.timestamp, emit) }
    }

    /// `kunmap_local(vaddr)`: count-based (E3), so the order of unmaps does not matter; the grant is found by address.
    private func revokeLocal(vaddr: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        if let li = localGrants.index(forKey: PidKey(ctx.pid)),
           let i = localGrants.values[li].lastIndex(where: { $0.vaddr == vaddr }) ?? localGrants.values[li].lastIndex(where: { $0.vaddr == nil }) {
            let g = localGrants.values[li].remove(at: i)     // in place: no copy of the list
            localGrantEntries -= 1
            if localGrants.values[li].isEmpty { localGrants.remove(at: li) }
            if g.protected { revoke(e, ctx, emit, grantHolder: g.holder) }
            return
        }
        // Not this task's. On x86_64 (no HIGHMEM) kmap_local_page returns page_address(), the same for every
        // task: another task's grant of that address is a hand-off released here (E2); its entry stays, as
        // the kernel leaves the maker's count alone. (On i386 fixmap addresses are per-CPU slots every task reuses.)
        if resolver.profile.arch != .i386 {
            for (key, list) in localGrants where key.pid != ctx.pid {
                if let g = list.last(where: { $0.vaddr == vaddr }) {
                    if g.protected { revoke(e, ctx, emit, grantHolder: g.holder) }
                    return
                }
            }
        }
        // No grant seen: it predates the trace, or the trace cannot explain it (`revoke` tells which). With
        // `--protect RANGES` it is a protected frame's only if its direct-map address says so.
        var covered = true
        if case .ranges = protected {
            covered = protected.contains(pfn: resolver.profile.arch == .i386 ? nil : resolver.pfn(forDirectMapAddress: vaddr))
        }
        if covered { revoke(e, ctx, emit) }
    }

    // MARK: kmap() designs (§4.5)

    private func kmapGlobalCall(page: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        let frame = resolver.pfn(forPage: page)
        guard mode != .off, protected.contains(pfn: frame) else { return }
        let k = GlobalKmap(holder: ctx.instance, holderPid: ctx.pid, holderComm: ctx.comm, holderKind: ctx.kind, cpu: ctx.cpu,
                           open: e.timestamp, site: e.site, openLine: StoredLine(line: e.line))
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
                if globalOpen == nil { globalOpen = e.timestamp; globalOpenLine = StoredLine(line: e.line) }
                // A CPU still open from the last disable runs straight into this enable.
                for (cpu, lag) in globalLagCPUs.sorted(by: { $0.key < $1.key }) {
                    emitGlobal(open: lag, close: e.timestamp, scope: .cpu, cpu: cpu, cause: .unmap, api: "global_unprotect_lag", openLine: globalLagLine, emit)
                }
                globalLagCPUs.removeAll()
            }
        case .flagFault:
            break
        }
        if pendingHigh[ctx.instance] != nil || admit(pendingHigh.count, "pending_kmap_high") { pendingHigh[ctx.instance] = page }
    }

    private func kunmapGlobalCall(page: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard mode != .off else { return }
        guard var list = kmaps[page], !list.isEmpty else {
            // A kmap() from before the trace (§3.4). With A1/A2, where kmap() grants, that grant is a left-censored
            // window of the page from the first event on this CPU (Common rules, Censoring). A1's global cache
            // from before the trace is not reconstructed (the count of pre-trace kmap()s is unknown).
            if kmapGlobal != .unsupported, protected.contains(pfn: resolver.pfn(forPage: page)) {
                var w = ExposureWindow(model: name, layer: .granted, scope: .global, frame: frameRef(page), alias: "pks_key",
                                       api: kmapGlobal == .globalUnprotect ? "global_unprotect" : "kmap_flag",
                                       holderPid: -1, holderComm: 0, holderContext: .task, cpu: ctx.cpu,
                                       openNs: ctx.cpuTraceStart, closeNs: e.timestamp, site: e.site, closeCause: .unmap)
                w.censoredLeft = true
                emit.window(w)
            }
            return
        }
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
            var w = ExposureWindow(model: name, layer: .granted, scope: .global, frame: frameRef(page), alias: "pks_key",
                                   api: kmapGlobal == .globalUnprotect ? "global_unprotect" : "kmap_flag",
                                   holderPid: k.holderPid, holderComm: k.holderComm, holderContext: k.holderKind,
                                   cpu: k.cpu, openNs: k.open, closeNs: e.timestamp, site: k.site, closeCause: .unmap)
            w.openLine = k.openLine.line
            emit.window(w)
        }
        if kmapGlobal == .globalUnprotect {
            globalCount -= 1
            if globalCount == 0, let open = globalOpen {
                // Disabling rewrites the global cache; a CPU may keep the key until its next context switch.
                emitGlobal(open: open, close: e.timestamp, scope: .global, cpu: ctx.cpu, cause: .unmap, api: "global_unprotect",
                           openLine: globalOpenLine, emit)
                globalOpen = nil
                for cpu in cpusSeen { globalLagCPUs[cpu] = e.timestamp }
                globalLagLine = StoredLine(line: e.line)
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
        let frame = resolver.pfn(forDirectMapAddress: address)
        if frame == nil {
            // E13: never dropped silently. With `--protect kmapped` the PK bit alone says the frame carries the
            // key (INT): still an access, with no frame. With ranges the frame cannot be checked: not an access.
            unresolvedFaults += 1
            guard protected == .kmapped else { return }
        } else if resolver.directMapBaseDefaulted && resolver.profile.pageOffsetBase == nil {
            faultsOnDefaultBase += 1
        }
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
                addReason(ctx.instance, kmapGlobal == .flagFault ? .flagFaultUnprotect : .relaxedFixup, at: ts)
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
        if ctx.kind != .task, (count[PidKey(ctx.pid)] ?? 0) > 0 { return .irqShadow }
        let pageKmaps: [GlobalKmap]? = page.flatMap { kmaps[$0] } ?? frame.flatMap { f in
            kmaps.first { resolver.pfn(forPage: $0.key) == f }?.value
        }
        if let ks = pageKmaps, !ks.isEmpty {
            return ks.contains { $0.holder == ctx.instance } ? .globalKmap : .handoff(kmapped: true)
        }
        // PKS grants are key-wide (§1.3): any other context's open grant (kmap_local, or pgmap-level, which
        // carries no page) makes this a hand-off. (A kmap() flag of another page gives no context the key.)
        let ownHolds = (contexts[ctx.instance]?.ownGrants ?? 0) > 0 ? 1 : 0
        if holdersWithGrants - ownHolds > 0 { return .handoff(kmapped: false) }
        if let r = contexts[ctx.instance]?.lastRevoke, ts >= r, ts - r <= afterRevokeNs { return .afterRevoke }
        return .stray
    }

    // MARK: Effective windows

    /// Adds a reason for the context's key to be RW; the EFFECTIVE layer is the time it is RW and running on top of its CPU.
    /// - Parameter line: the trace line of the event that made it RW (default: the event being replayed).
    private func addReason(_ instance: ContextInstance, _ reason: RWCause, at ts: UInt64, line: StoredLine? = nil) {
        guard let i = contexts.index(forKey: instance) else { return }
        contexts.values[i].add(reason, at: ts, line: line ?? StoredLine(line: limit.line))
    }

    /// Changes the context's reasons with `change`; when none is left the key is AD and the open segment closes.
    private func dropReasons(_ instance: ContextInstance, at ts: UInt64, cause: CloseCause, _ emit: ObservationSink,
                             _ change: (inout RWReasons) -> Void) {
        guard let i = contexts.index(forKey: instance), contexts.values[i].rw else { return }
        // In place (`values[index]`); `closeSegment` does not touch `contexts`.
        change(&contexts.values[i].reasons)
        if contexts.values[i].reasons.isEmpty {
            closeSegment(&contexts.values[i], at: ts, cause: cause, emit)
        } else if !contexts.values[i].reasons.contains(contexts.values[i].openedBy), let next = contexts.values[i].reasons.first {
            contexts.values[i].openedBy = next
        }
    }

    /// The context sets K to AD (`pks_set_noaccess`, or the revoke that brings `cnt` to 0 when no PKS_SET probe exists).
    private func setAD(_ instance: ContextInstance, at ts: UInt64, _ emit: ObservationSink) {
        dropReasons(instance, at: ts, cause: .unmap, emit) { $0.setAD() }
    }

    private func setRunning(_ instance: ContextInstance, _ running: Bool, at ts: UInt64, cause: CloseCause, _ emit: ObservationSink) {
        guard var c = contexts[instance], c.running != running else { return }
        c.running = running
        if running {
            if c.rw { c.segmentStart = ts; c.segmentReason = c.openedBy; c.segmentLine = StoredLine(line: limit.line) }
        } else {
            closeSegment(&c, at: ts, cause: cause, emit)
        }
        contexts[instance] = c
    }

    private func closeSegment(_ c: inout ContextState, at ts: UInt64, cause: CloseCause, _ emit: ObservationSink, censored: Bool = false) {
        guard let s = c.segmentStart else { return }
        c.segmentStart = nil
        var w = ExposureWindow(model: name, layer: .effective, scope: c.kind == .task ? .task : .ctx, frame: nil, alias: "pks_key",
                               api: c.segmentReason.name, holderPid: c.pid, holderComm: c.comm, holderContext: c.kind, cpu: c.cpu,
                               openNs: s, closeNs: ts, site: c.grantSite, closeCause: cause)
        w.openLine = c.segmentLine.line
        w.censoredRight = censored
        // A2 with `--context-end return-to-user`, cut off by the end of the trace in a capture with no
        // event of a return to user (no `page_fault_user`, no syscall event): the event that would end the
        // unprotect cannot be in this trace (reporting conventions, "Unobserved closing events").
        let endUnobservable = censored && kmapGlobal == .flagFault && contextEnd == .returnToUser
            && c.reasons.contains(.flagFaultUnprotect) && !sawReturnToUser
        w.uncertain = c.uncertain || endUnobservable
        emit.window(w)
    }

    /// The trace has an event of a return to user mode (a user-mode fault or a syscall event).
    private var sawReturnToUser = false

    private func closeGrant(_ c: inout ContextState, _ instance: ContextInstance, at ts: UInt64, cause: CloseCause, _ emit: ObservationSink, censored: Bool = false) {
        var w = ExposureWindow(model: name, layer: .granted, scope: c.kind == .task ? .task : .ctx, frame: nil, alias: "pks_key",
                               api: "grant", holderPid: c.pid, holderComm: c.comm, holderContext: c.kind, cpu: c.cpu,
                               openNs: c.grantOpen, closeNs: ts, site: c.grantSite, closeCause: cause)
        w.openLine = c.grantLine.line
        w.censoredRight = censored
        w.uncertain = c.uncertain
        emit.window(w)
        if c.ownGrants > 0 { holdersWithGrants -= 1 }
        c.ownGrants = 0
    }

    private func emitGlobal(open: UInt64, close: UInt64, scope: Scope, cpu: Int32, cause: CloseCause, api: StaticString,
                            openLine: StoredLine = 0, _ emit: ObservationSink, censored: Bool = false) {
        var w = ExposureWindow(model: name, layer: .effective, scope: scope, frame: nil, alias: "pks_key", api: api,
                               holderPid: -1, holderComm: 0, holderContext: .task, cpu: cpu, openNs: open, closeNs: close,
                               site: 0, closeCause: cause)
        w.openLine = openLine.line
        w.censoredRight = censored
        emit.window(w)
    }

    // MARK: Contexts

    private func switchTasks(prev: Int32, next: Int32, nextComm: StringTable.ID, cpu: Int32, at ts: UInt64, _ emit: ObservationSink) {
        if let lagStart = globalLagCPUs.removeValue(forKey: cpu) {
            emitGlobal(open: lagStart, close: ts, scope: .cpu, cpu: cpu, cause: .schedOut, api: "global_unprotect_lag", openLine: globalLagLine, emit)
        }
        // Sched-out suspends the task's segment; its reasons stay (thread.pkrs follows the task, §4.1) except
        // A2's unprotect, undone when the context is left.
        setRunning(.task(prev), false, at: ts, cause: .schedOut, emit)
        if contextEnd == .schedOut { dropReasons(.task(prev), at: ts, cause: .schedOut, emit) { $0.remove(.flagFaultUnprotect) } }
        if contexts[.task(next)] == nil, admit(contexts.count, "contexts") {
            contexts[.task(next)] = ContextState(kind: .task, pid: next, comm: nextComm, cpu: cpu)
        }
        contexts[.task(next)]?.cpu = cpu
        cpuStacks[cpu] = [.task(next)]
        setRunning(.task(next), true, at: ts, cause: .schedOut, emit)
    }

    private func returnedToUser(pid: Int32, at ts: UInt64, _ emit: ObservationSink) {
        guard contextEnd == .returnToUser else { return }
        dropReasons(.task(pid), at: ts, cause: .contextEnd, emit) { $0.remove(.flagFaultUnprotect) }
    }

    /// The task ran in user mode: a task in user mode holds no grant (INT), so a count of 0 is now known exactly.
    private func inUserMode(pid: Int32) {
        guard count[PidKey(pid)] == nil, var c = contexts[.task(pid)], !c.exact else { return }
        c.exact = true
        contexts[.task(pid)] = c
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
        if let old = contexts[ctx.instance] {
            if old.ownGrants > 0 { holdersWithGrants -= 1 }
            contexts[ctx.instance] = ContextState(kind: ctx.kind, pid: ctx.pid, comm: ctx.comm, cpu: ctx.cpu, running: true, startNs: ts)
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
            c.exact = false
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
        holdersWithGrants = 0
        if let open = globalOpen {
            emitGlobal(open: open, close: ts, scope: .global, cpu: -1, cause: .traceEnd, api: "global_unprotect", openLine: globalOpenLine, emit, censored: true)
        }
        for (cpu, lag) in globalLagCPUs.sorted(by: { $0.key < $1.key }) {
            emitGlobal(open: lag, close: ts, scope: .cpu, cpu: cpu, cause: .traceEnd, api: "global_unprotect_lag", openLine: globalLagLine, emit, censored: true)
        }
        for page in kmaps.keys.sorted() where kmapGlobal != .unsupported {
            for k in kmaps[page]! {
                var w = ExposureWindow(model: name, layer: .granted, scope: .global, frame: frameRef(page), alias: "pks_key",
                                       api: kmapGlobal == .globalUnprotect ? "global_unprotect" : "kmap_flag",
                                       holderPid: k.holderPid, holderComm: k.holderComm, holderContext: k.holderKind,
                                       cpu: k.cpu, openNs: k.open, closeNs: ts, site: k.site, closeCause: .traceEnd)
                w.openLine = k.openLine.line
                w.censoredRight = true
                emit.window(w)
            }
        }
        if mode == .off, let first = firstTimestamp {
            // PKS off: nothing is protected, the key is reachable by everyone for the whole trace.
            emitGlobal(open: first, close: ts, scope: .global, cpu: -1, cause: .traceEnd, api: "pks_off", emit, censored: true)
        }
    }


}

