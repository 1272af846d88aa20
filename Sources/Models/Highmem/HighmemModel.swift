import TraceIngest
import EventModel
import Replay

/// Variant D of the spec (§7): classic HIGHMEM kmap on i386.
///
/// * `kmap_high`/`kunmap_high`: a pkmap slot, GLOBAL scope. GRANTED from each map to its unmap;
///   EFFECTIVE from slot install until a flush clears the stale (count 1) slot.
/// * `kmap_local_page`/`kmap_atomic` on a highmem page: a fixmap slot pushed on the task's stack,
///   CTX scope. GRANTED from the API entry to the `kunmap_local`; EFFECTIVE only while the task is
///   on its CPU (the kernel clears the task's fixmap PTEs on sched-out). A lowmem page comes back
///   through the direct map: no slot, no window.
/// * `kunmap_local` always pops the top slot; naming another address is `out_of_order_unmap`.
///
///     wl-done-125 [000] ...1.  7.217363: kmap_local_page: (__kmap_local_page_prot+0x0/0x60) page=0xf6dfd788   <- window opens
///     wl-done-125 [000] ...1.  7.217423: kmap_local_pfn: (__kmap_local_pfn_prot+0x0/0x180) pfn=0x7fafd         <- slot pushed
///     wl-done-125 [000] ...11  7.217483: kmap_local_pfn_ret: (__kmap_local_page_prot+0x51/0x60 <- __kmap_local_pfn_prot) vaddr=0xfffbb000
///     wl-done-125 [000] ...11  7.217490: kunmap_local: (kunmap_local_indexed+0x0/0x110) vaddr=0xfffbbfa0  <- window closes
public final class HighmemModel: ProtectionModel, ModelSupport {
    public let name: StaticString = "highmem"
    public var options: [String: String] { [:] }
    let resolver: AddressResolver

    private var tasks: [PidKey: KmapLocalStack] = [:]
    private var pendingLocal: [ContextInstance: PendingLocalCall] = [:]
    /// Switches of a task while its `kmap_local_page` call is still pending (only such tasks have an entry).
    private var pendingSwitches: [ContextInstance: [PendingSwitch]] = [:]
    /// More switches within one pending call merge into the last off-CPU interval (its on-CPU time between is
    /// then not counted as effective).
    static let maximumPendingSwitches = 8
    private var pendingHigh: [ContextInstance: [UInt64]] = [:]
    private var pkmap = PkmapSlotTable()
    /// Addresses the kernel returned for fixmap slots: a `kunmap_local` of any other address that no
    /// outstanding lowmem mapping explains is still taken as a fixmap pop when the stack is non-empty.
    private var fixmapLow: UInt64 = .max
    private var fixmapHigh: UInt64 = 0
    /// Addresses the kernel returned for pkmap slots.
    private var pkmapLow: UInt64 = .max
    private var pkmapHigh: UInt64 = 0

    /// Events were lost somewhere in the trace (spec §8 E5): pkmap state is global, so any gap may hide a
    /// `kmap_high`, `kunmap_high` or flush.
    private var gapSeen = false
    /// The trace showed a pkmap flush (`__kmap_flush_unused`, `flush_all_zero_pkmaps`): without one the capture has
    /// no probe for the event that ends a stale slot's EFFECTIVE window.
    private var sawPkmapFlush = false

    private var kmapLocalLowmem = 0, kunmapLocalLowmem = 0, pkmapFlushes = 0, pkmapFlushesInferred = 0
    private var pkmapInstalls = 0, kmapLocalPushes = 0

    /// The run's cap on live entries (`LiveStateLimit`): every map here asks it before taking a new key.
    var limit = LiveStateLimit()
    public func attach(_ limit: LiveStateLimit) { self.limit = limit }
    /// Live totals of the per-task lists, each capped like a map: fixmap slots on all stacks, and
    /// outstanding lowmem mappings.
    private var localSlots = 0, lowmemMappings = 0
    /// Set once `tasks` / `pkmap_slots` refused a key: an unmap with no state may then be one whose map
    /// was refused, so its left-censored window is marked uncertain.
    private var tasksRefused = false, slotsRefused = false
    /// `kmap_high` calls in flight per context whose return is not seen yet; older ones are forgotten
    /// (their kretprobe was missed: returns always match the newest).
    static let maximumPendingHigh = 16


    /// A new task for `tasks`.
    @inline(__always)
    private func admitTask() -> Bool {
        if admit(tasks.count, "tasks") { return true }
        tasksRefused = true
        return false
    }

    /// A new page for `pkmap.slots`.
    @inline(__always)
    private func admitSlot() -> Bool {
        if admit(pkmap.slots.count, "pkmap_slots") { return true }
        slotsRefused = true
        return false
    }
    public var counters: [String: Int] {
        ["kmap_local_lowmem": kmapLocalLowmem, "kunmap_local_lowmem": kunmapLocalLowmem, "pkmap_flushes": pkmapFlushes,
         "pkmap_flushes_inferred": pkmapFlushesInferred, "pkmap_installs": pkmapInstalls, "kmap_local_pushes": kmapLocalPushes]
    }
    /// Spec §7.4. Only `use_after_unmap` is visible without ACCESS instrumentation (a not-present fault).
    public let accessClasses = ["use_after_unmap", "stale_pkmap", "alias_confusion", "cross_ctx_local"]
    /// Spec §7.3 and §8.
    public let anomalyKinds = ["out_of_order_unmap", "migrate_with_local_kmap", "leaked_across_irq_exit", "kmap_local_overflow",
                               "cross_ctx_local", "unmatched_release", "fork_with_local_kmap", "exit_with_local_kmap",
                               "pkmap_slot_conflict"]

    public init(resolver: AddressResolver) {
        self.resolver = resolver
    }

    private static let tags: Set<ProtEventTag> = [.contextSwitch, .taskMigrate, .taskFork, .taskExit, .fault,
                                                  .kmap, .kmapReturn, .kunmapHigh, .kunmapLocal, .pkmapFlush]
    public func wants(_ tag: ProtEventTag) -> Bool { HighmemModel.tags.contains(tag) }

    public private(set) var applicable = false

    public func apply(_ e: ProtEvent, in ctx: ExecutionContext, emit: ObservationSink) {
        switch e.kind {
        case .kmap, .kunmapLocal, .kunmapHigh: applicable = true
        default: break
        }
        switch e.kind {
        case let .kmap(api, page, pfn):
            switch api {
            case .kmapHigh: if let page { kmapHigh(page: page, e, ctx) }
            case .kmapLocalPage:
                if let page {
                    let old = pendingLocal[ctx.instance]
                    if let old, !old.pushed { kmapLocalLowmem += 1 }
                    if old != nil || admit(pendingLocal.count, "pending_kmap_local") {
                        pendingLocal[ctx.instance] = PendingLocalCall(openNs: e.timestamp, page: page, openLine: StoredLine(line: e.line))
                    }
                    pendingSwitches[ctx.instance] = nil
                }
            case .kmapLocalPfn: if let pfn { pushLocal(pfn: pfn, e, ctx, emit) }
            case .kunmapLocal: break
            }
        case let .kmapReturn(api, vaddr):
            kmapReturn(api, vaddr: vaddr, e, ctx, emit)
        case let .kunmapHigh(page):
            kunmapHigh(page: page, e, ctx, emit)
        case let .kunmapLocal(vaddr):
            kunmapLocal(vaddr: vaddr, e, ctx, emit)
        case .pkmapFlush:
            sawPkmapFlush = true
            flushPkmaps(at: e.timestamp, cause: .flush, emit)
            pkmap.flushObservedSinceInstall = true
        case let .contextSwitch(prevPid, _, _, nextPid, _):
            switchTasks(prev: prevPid, next: nextPid, cpu: e.cpu, at: e.timestamp, line: e.line, emit)
        case let .taskMigrate(pid, from, to):
            if var t = tasks[PidKey(pid)], !t.entries.isEmpty, !t.migrationReported {
                t.migrationReported = true
                tasks[PidKey(pid)] = t
                emit.anomaly(anomaly(e, "migrate_with_local_kmap", "task \(pid) migrated from CPU \(from) to \(to) holding \(t.entries.count) kmap_local slot(s)"))
            }
        case let .taskFork(parent, child, _):
            if let t = tasks[PidKey(parent)], !t.entries.isEmpty {
                emit.anomaly(anomaly(e, "fork_with_local_kmap", "task \(parent) forked \(child) holding \(t.entries.count) kmap_local slot(s); kmap_local_fork resets the child"))
            }
            if let old = tasks[PidKey(child)] {
                localSlots -= old.entries.count
                lowmemMappings -= old.lowmemOutstanding.count
            } else if !admitTask() {
                break
            }
            var c = KmapLocalStack()
            c.exact = true
            tasks[PidKey(child)] = c
        case let .taskExit(pid):
            taskExit(pid: pid, e, emit)
        case let .fault(address, _, errorCode, user):
            fault(address: address, errorCode: errorCode, user: user, e, ctx, emit)
        default:
            break
        }
    }

    // MARK: kmap_local

    private func pushLocal(pfn: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        var openNs = e.timestamp
        var openLine = StoredLine(line: e.line)
        var api = KmapAPI.kmapLocalPfn
        var offCPU: [PendingSwitch] = []
        if var p = pendingLocal[ctx.instance], !p.pushed {
            p.pushed = true
            offCPU = pendingSwitches.removeValue(forKey: ctx.instance) ?? []
            pendingLocal[ctx.instance] = p
            openNs = p.openNs
            openLine = p.openLine
            api = .kmapLocalPage
        }
        // Checked before the task gets a stack: a refused push leaves no empty stack behind.
        let key = PidKey(ctx.pid)
        let existing = tasks.index(forKey: key)
        if existing == nil { guard admitTask() else { return } }
        guard (existing.map { tasks.values[$0].entries.count } ?? 0) < KmapLocalStack.trackedDepth else {
            limit.refuse(name, "kmap_local_depth", fixedLimit: KmapLocalStack.trackedDepth, noun: "kmap_local slots on one task's stack")
            return
        }
        guard admit(localSlots, "kmap_local_slots") else { return }
        // On-CPU pieces that ended before the push (switched away between the call's entry and here).
        var segmentStart = openNs
        for off in offCPU {
            var piece = window(.effective, scope: .ctx, frame: .pfn(pfn), alias: "fixmap_kmap", api: api.name,
                               pid: ctx.pid, comm: ctx.comm, kind: ctx.kind, cpu: off.cpu,
                               open: segmentStart, close: off.out, site: e.site, cause: .schedOut)
            // The first piece opens at the call's entry; later ones at switches whose lines are not kept.
            if segmentStart == openNs { piece.openLine = openLine.line }
            emit.window(piece)
            segmentStart = off.back ?? e.timestamp
        }
        let entry = KmapLocalEntry(pfn: pfn, vaddr: nil, holder: ctx.instance, holderKind: ctx.kind, holderPid: ctx.pid,
                                   holderComm: ctx.comm, cpu: ctx.cpu, api: api, openNs: openNs, site: e.site,
                                   segmentStart: segmentStart, openLine: openLine,
                                   // The current piece's opening line is known when it is the entry's.
                                   segmentLine: segmentStart == openNs ? openLine : 0)
        if existing == nil { tasks[key] = KmapLocalStack() }
        // Pushed in place (`values[index]`, one access): no copy of the stack, no retain of its arrays.
        let depth = tasks.values[existing ?? tasks.index(forKey: key)!].push(entry, cpu: ctx.cpu)
        localSlots += 1
        kmapLocalPushes += 1
        if depth > KmapLocalStack.maximumDepth {
            emit.anomaly(anomaly(e, "kmap_local_overflow", "task \(ctx.pid) holds \(depth) kmap_local slots; KM_MAX_IDX allows \(KmapLocalStack.maximumDepth) (the kernel BUGs)"))
        }
    }

    private func kmapReturn(_ api: KmapAPI, vaddr: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        switch api {
        case .kmapLocalPfn:
            // Changed in place (`values[index]`): no copy of the task's arrays.
            // (A mutating method: reading `values[ti]` would copy the stack and retain its arrays.)
            guard let ti = tasks.index(forKey: PidKey(ctx.pid)),
                  tasks.values[ti].returnedPfn(holder: ctx.instance, vaddr: vaddr & ~0xfff, site: e.site) else { return }
            fixmapLow = min(fixmapLow, vaddr & ~0xfff)
            fixmapHigh = max(fixmapHigh, vaddr & ~0xfff)
        case .kmapLocalPage:
            pendingSwitches[ctx.instance] = nil
            guard let p = pendingLocal.removeValue(forKey: ctx.instance) else { return }
            guard let ti = tasks.index(forKey: PidKey(ctx.pid)) else {
                if !p.pushed { noteLowmem(ctx.pid, vaddr) }
                return
            }
            if p.pushed {
                tasks.values[ti].returnedPage(holder: ctx.instance, openNs: p.openNs, vaddr: vaddr & ~0xfff, site: e.site)
            } else {
                kmapLocalLowmem += 1
                if admit(lowmemMappings, "lowmem_mappings") {
                    lowmemMappings += tasks.values[ti].noteLowmem(vaddr)
                }
            }
        case .kmapHigh:
            guard var list = pendingHigh.removeValue(forKey: ctx.instance), !list.isEmpty else { return }
            let page = list.removeLast()
            pendingHigh[ctx.instance] = list.isEmpty ? nil : list
            kmapHighReturned(page: page, vaddr: vaddr & ~0xfff, e, ctx, emit)
        case .kunmapLocal:
            break
        }
    }

    private func noteLowmem(_ pid: Int32, _ vaddr: UInt64) {
        kmapLocalLowmem += 1
        guard admitTask(), admit(lowmemMappings, "lowmem_mappings") else { return }
        var t = KmapLocalStack()
        lowmemMappings += t.noteLowmem(vaddr)
        tasks[PidKey(pid)] = t
    }

    private func kunmapLocal(vaddr: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        let key = PidKey(ctx.pid)
        if let ti = tasks.index(forKey: key) {
            // Changed in place (`values[index]`, one access): no copy of the stack, no retain of its arrays.
            // (`unmapLocal` must not touch `tasks` while it holds the entry.)
            unmapLocal(vaddr: vaddr, from: &tasks.values[ti], existed: true, e, ctx, emit)
        } else {
            // What an empty stack answers; the task is kept (the unmap taught something about it) if the cap admits it.
            var t = KmapLocalStack()
            unmapLocal(vaddr: vaddr, from: &t, existed: false, e, ctx, emit)
            if admitTask() { tasks[key] = t }
        }
    }

    /// `kunmap_local(vaddr)` on the task's stack `t` (an empty one when the task has none, `existed` false).
    private func unmapLocal(vaddr: UInt64, from t: inout KmapLocalStack, existed: Bool, _ e: ProtEvent, _ ctx: ExecutionContext,
                            _ emit: ObservationSink) {
        let address = vaddr & ~0xfff
        // A lowmem mapping: kunmap_local_indexed returns early, nothing is popped.
        let tookLowmem = t.takeLowmem(address)
        if tookLowmem { lowmemMappings -= 1 }
        if tookLowmem || (!t.entries.contains { $0.vaddr == address } && isLowmem(address)) {
            kunmapLocalLowmem += 1
            return
        }
        guard let top = t.entries.popLast() else {
            // No slot: left-censored if it may predate the trace, else an anomaly.
            if t.exact && !t.crossedGap {
                emit.anomaly(anomaly(e, "unmatched_release", "kunmap_local(\(hexString(vaddr))) by task \(ctx.pid) with an empty kmap_local stack"))
            } else {
                var w = window(.granted, scope: .ctx, frame: nil, alias: "fixmap_kmap", api: KmapAPI.kmapLocalPage.name,
                               pid: ctx.pid, comm: ctx.comm, kind: ctx.kind, cpu: ctx.cpu,
                               open: ctx.cpuTraceStart, close: e.timestamp, site: e.site, cause: .unmap)
                w.censoredLeft = true
                w.uncertain = t.crossedGap || (!existed && tasksRefused)
                emit.window(w)
            }
            return
        }
        localSlots -= 1
        var cause = CloseCause.unmap
        if let v = top.vaddr, v != address {
            cause = .outOfOrderPop
            emit.anomaly(anomaly(e, "out_of_order_unmap", "kunmap_local(\(hexString(vaddr))) but the top slot is \(hexString(v)); the kernel pops the top"))
        }
        if top.holder != ctx.instance {
            emit.anomaly(anomaly(e, "cross_ctx_local", "kunmap_local in \(ctx.kind.rawValue) context pops a slot mapped in \(top.holderKind.rawValue) context"))
        }
        closeLocal(top, at: e.timestamp, cause: cause, emit)
        if t.entries.isEmpty { t.migrationReported = false }
    }

    /// Emits the GRANTED window of a slot and its last EFFECTIVE segment.
    private func closeLocal(_ entry: KmapLocalEntry, at ts: UInt64, cause: CloseCause, censored: Bool = false, _ emit: ObservationSink) {
        var g = window(.granted, scope: .ctx, frame: .pfn(entry.pfn), alias: "fixmap_kmap", api: entry.api.name,
                       pid: entry.holderPid, comm: entry.holderComm, kind: entry.holderKind, cpu: entry.cpu,
                       open: entry.openNs, close: ts, site: entry.site, cause: cause)
        g.censoredRight = censored
        g.censoredLeft = entry.censoredLeft
        g.uncertain = entry.uncertain
        g.openLine = entry.openLine.line
        emit.window(g)
        if let s = entry.segmentStart {
            var w = g
            w.layer = .effective
            w.openNs = s
            w.openLine = entry.segmentLine.line
            emit.window(w)
        }
    }

    private func isLowmem(_ address: UInt64) -> Bool {
        if address >= fixmapLow && address <= fixmapHigh { return false }
        if resolver.profile.arch == .i386 {
            // i386 3G/1G: the direct map ends at high_memory (at most 896 MiB above PAGE_OFFSET).
            return address >= 0xC000_0000 && address < 0xF800_0000
        }
        return false
    }

    // MARK: pkmap

    private func kmapHigh(page: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext) {
        let grant = PkmapGrant(holder: ctx.instance, holderKind: ctx.kind, holderPid: ctx.pid, holderComm: ctx.comm,
                               cpu: ctx.cpu, openNs: e.timestamp, site: e.site, openLine: StoredLine(line: e.line))
        let existing = pkmap.slots[page]
        guard existing != nil || admitSlot(), admit(pkmap.liveGrants, "pkmap_grants") else { return }
        if let existing, existing.count >= 1 {
            pkmap.slots[page]!.count += 1
            pkmap.slots[page]!.grants.append(grant)
        } else {
            // A new slot: count 1 (mapped, no users) then +1 for this user.
            if let existing { pkmap.liveGrants -= existing.grants.count }
            let exact = pkmap.flushedPages.remove(page) != nil
            var slot = PkmapSlot(page: page, vaddr: nil, count: 2, installNs: e.timestamp, installer: grant, exact: exact, installLine: StoredLine(line: e.line))
            slot.grants = [grant]
            pkmap.slots[page] = slot
            pkmapInstalls += 1
        }
        pkmap.liveGrants += 1
        if pendingHigh[ctx.instance] == nil {
            guard admit(pendingHigh.count, "pending_kmap_high") else { return }
            pendingHigh[ctx.instance] = [page]
        } else {
            pendingHigh[ctx.instance]!.append(page)
            if pendingHigh[ctx.instance]!.count > HighmemModel.maximumPendingHigh { pendingHigh[ctx.instance]!.removeFirst() }
        }
    }

    private func kmapHighReturned(page: UInt64, vaddr: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard var slot = pkmap.slots[page] else { return }
        // The kretprobe's caller is exact; it replaces a site taken from a stack trace.
        if e.site != 0, let i = slot.grants.lastIndex(where: { $0.holder == ctx.instance }) {
            slot.grants[i].site = e.site
            if slot.installer.openNs == slot.grants[i].openNs && slot.installer.holder == ctx.instance { slot.installer.site = e.site }
        }
        let newlyInstalled = slot.vaddr == nil && slot.installNs == slot.installer.openNs && slot.installer.holder == ctx.instance
        pkmapLow = min(pkmapLow, vaddr)
        pkmapHigh = max(pkmapHigh, vaddr)
        if slot.vaddr == nil {
            slot.vaddr = vaddr
            pkmap.slots[page] = slot
            if newlyInstalled {
                // The slot search wrapped (new slot below the previous one), or reused a stale slot:
                // either way flush_all_zero_pkmaps() ran inside this call.
                var flushed = false
                if let other = pkmap.pageAtVaddr[vaddr], other != page {
                    flushed = true
                    if let o = pkmap.slots[other], o.count > 1 {
                        emit.anomaly(anomaly(e, "pkmap_slot_conflict", "kmap_high returned \(hexString(vaddr)) which still maps another page with \(o.count - 1) user(s)"))
                    }
                }
                if let last = pkmap.lastInstallVaddr, vaddr <= last { flushed = true }
                // A flush probe that fired inside this call (map_new_virtual -> flush_all_zero_pkmaps) already
                // cleared the stale slots; inferring it again would count one flush twice.
                if flushed && !pkmap.flushObservedSinceInstall {
                    flushPkmaps(at: e.timestamp, cause: .flushInferred, except: page, emit)
                }
                pkmap.lastInstallVaddr = vaddr
                pkmap.flushObservedSinceInstall = false
            }
            if pkmap.pageAtVaddr[vaddr] != nil || admit(pkmap.pageAtVaddr.count, "pkmap_addresses") { pkmap.pageAtVaddr[vaddr] = page }
        } else {
            pkmap.slots[page] = slot
        }
    }

    private func kunmapHigh(page: UInt64, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        guard var slot = pkmap.slots[page], slot.count >= 2, !slot.grants.isEmpty else {
            if let slot = pkmap.slots[page], slot.exact {
                emit.anomaly(anomaly(e, "unmatched_release", "kunmap_high(\(hexString(page))) on a slot with no users"))
                return
            }
            // The kmap() happened before the trace: a left-censored grant; the slot stays stale after this.
            var g = window(.granted, scope: .global, frame: frame(page), alias: "pkmap", api: KmapAPI.kmapHigh.name,
                           pid: ctx.pid, comm: ctx.comm, kind: ctx.kind, cpu: ctx.cpu,
                           open: ctx.cpuTraceStart, close: e.timestamp, site: 0, cause: .unmap)
            g.censoredLeft = true
            g.uncertain = pkmap.slots[page] == nil && slotsRefused
            emit.window(g)
            let grant = PkmapGrant(holder: ctx.instance, holderKind: ctx.kind, holderPid: ctx.pid, holderComm: ctx.comm,
                                   cpu: ctx.cpu, openNs: ctx.cpuTraceStart, site: 0)
            guard pkmap.slots[page] != nil || admitSlot() else { return }
            var slot = pkmap.slots[page] ?? PkmapSlot(page: page, vaddr: nil, count: 1, installNs: ctx.cpuTraceStart, installer: grant, exact: false)
            if slot.grants.isEmpty {
                slot.count = 1
                slot.effectiveCensoredLeft = true
            }
            pkmap.slots[page] = slot
            return
        }
        // Release the caller's own grant if it has one, else the oldest (any task may kunmap).
        let i = slot.grants.firstIndex { $0.holder == ctx.instance } ?? slot.grants.firstIndex { $0.holderPid == ctx.pid } ?? 0
        let grant = slot.grants.remove(at: i)
        pkmap.liveGrants -= 1
        slot.count -= 1
        var g = window(.granted, scope: .global, frame: frame(page), alias: "pkmap", api: KmapAPI.kmapHigh.name,
                       pid: grant.holderPid, comm: grant.holderComm, kind: grant.holderKind, cpu: grant.cpu,
                       open: grant.openNs, close: e.timestamp, site: grant.site, cause: .unmap)
        g.openLine = grant.openLine.line
        g.uncertain = grant.uncertain
        g.censoredLeft = grant.censoredLeft
        emit.window(g)
        // Count 1: the PTE stays until the next flush (the EFFECTIVE window stays open, stale).
        pkmap.slots[page] = slot
    }

    /// `flush_all_zero_pkmaps()`: every count-1 slot is cleared and its EFFECTIVE window closes.
    private func flushPkmaps(at ts: UInt64, cause: CloseCause, except: UInt64? = nil, _ emit: ObservationSink) {
        if cause == .flush { pkmapFlushes += 1 } else { pkmapFlushesInferred += 1 }
        for (page, slot) in pkmap.slots.sorted(by: { $0.key < $1.key }) where slot.count <= 1 && page != except {
            // An inferred flush is one no probe showed (a `flush_all_zero_pkmaps` probe would have closed the slot
            // first): the window ends where the model's rule puts it, uncertain (reporting conventions).
            var closing = slot
            if cause == .flushInferred { closing.uncertain = true }
            emitPkmapEffective(closing, close: ts, cause: cause, censored: false, emit)
            pkmap.slots[page] = nil
            pkmap.liveGrants -= slot.grants.count
            if let v = slot.vaddr, pkmap.pageAtVaddr[v] == page { pkmap.pageAtVaddr[v] = nil }
            if pkmap.flushedPages.contains(page) || admit(pkmap.flushedPages.count, "flushed_pages") { pkmap.flushedPages.insert(page) }
        }
    }

    private func emitPkmapEffective(_ slot: PkmapSlot, close: UInt64, cause: CloseCause, censored: Bool, _ emit: ObservationSink) {
        let i = slot.installer
        var w = window(.effective, scope: .global, frame: frame(slot.page), alias: "pkmap", api: KmapAPI.kmapHigh.name,
                       pid: i.holderPid, comm: i.holderComm, kind: i.holderKind, cpu: i.cpu,
                       open: slot.installNs, close: close, site: i.site, cause: cause)
        w.censoredLeft = slot.effectiveCensoredLeft
        w.censoredRight = censored
        w.openLine = slot.installLine.line
        w.uncertain = slot.uncertain
        emit.window(w)
    }

    // MARK: Scheduling and lifecycle

    private func switchTasks(prev: Int32, next: Int32, cpu: Int32, at ts: UInt64, line: Int, _ emit: ObservationSink) {
        // A kmap_local_page call not yet known to be highmem (its nested push has not come): remember the switch.
        if let p = pendingLocal[.task(prev)], !p.pushed {
            if let i = pendingSwitches.index(forKey: .task(prev)) {
                if pendingSwitches.values[i].count < HighmemModel.maximumPendingSwitches {
                    pendingSwitches.values[i].append(PendingSwitch(out: ts, back: nil, cpu: cpu))
                } else {
                    pendingSwitches.values[i][pendingSwitches.values[i].count - 1].back = nil   // merged
                }
            } else if admit(pendingSwitches.count, "pending_switches") {
                pendingSwitches[.task(prev)] = [PendingSwitch(out: ts, back: nil, cpu: cpu)]
            }
        }
        if let i = pendingSwitches.index(forKey: .task(next)), let last = pendingSwitches.values[i].indices.last,
           pendingSwitches.values[i][last].back == nil {
            pendingSwitches.values[i][last].back = ts
        }
        if var t = tasks.removeValue(forKey: PidKey(prev)) {     // out of the map while it changes: no copy-on-write
            for i in t.entries.indices {
                if let s = t.entries[i].segmentStart {
                    let en = t.entries[i]
                    var w = window(.effective, scope: .ctx, frame: .pfn(en.pfn), alias: "fixmap_kmap", api: en.api.name,
                                   pid: en.holderPid, comm: en.holderComm, kind: en.holderKind, cpu: cpu,
                                   open: s, close: ts, site: en.site, cause: .schedOut)
                    w.uncertain = en.uncertain
                    w.censoredLeft = en.censoredLeft && s == en.openNs
                    w.openLine = en.segmentLine.line
                    emit.window(w)
                    t.entries[i].segmentStart = nil
                }
            }
            t.onCPU = nil
            t.lastCPU = cpu
            tasks[PidKey(prev)] = t
        }
        if var t = tasks.removeValue(forKey: PidKey(next)) {
            if !t.entries.isEmpty, let last = t.lastCPU, last != cpu, !t.migrationReported {
                t.migrationReported = true
                emit.anomaly(Anomaly(model: name, timestamp: ts, line: line, cpu: cpu, pid: next, kind: "migrate_with_local_kmap",
                                     detail: "task \(next) holding \(t.entries.count) kmap_local slot(s) ran on CPU \(last), now on CPU \(cpu)"))
            }
            for i in t.entries.indices { t.entries[i].segmentStart = ts; t.entries[i].segmentLine = StoredLine(line: line) }
            t.onCPU = cpu
            t.lastCPU = cpu
            tasks[PidKey(next)] = t
        }
    }

    private func taskExit(pid: Int32, _ e: ProtEvent, _ emit: ObservationSink) {
        guard let t = tasks.removeValue(forKey: PidKey(pid)) else { return }
        localSlots -= t.entries.count
        lowmemMappings -= t.lowmemOutstanding.count
        if !t.entries.isEmpty {
            emit.anomaly(anomaly(e, "exit_with_local_kmap", "task \(pid) exited holding \(t.entries.count) kmap_local slot(s)"))
            for entry in t.entries.reversed() { closeLocal(entry, at: e.timestamp, cause: .exit, emit) }
        }
    }

    private func fault(address: UInt64, errorCode: UInt64, user: Bool, _ e: ProtEvent, _ ctx: ExecutionContext, _ emit: ObservationSink) {
        if user {
            // In user mode the task holds no kmap_local slot: its stack is now known exactly.
            if ctx.kind == .task, var t = tasks[PidKey(ctx.pid)], t.entries.isEmpty {
                t.exact = true
                t.crossedGap = false
                tasks[PidKey(ctx.pid)] = t
            } else if ctx.kind == .task, tasks[PidKey(ctx.pid)] == nil, admitTask() {
                var t = KmapLocalStack()
                t.exact = true
                tasks[PidKey(ctx.pid)] = t
            }
            return
        }
        // A not-present kernel fault on a kmap address with no live mapping: use after unmap (spec §7.4).
        guard errorCode & 0x1 == 0 else { return }
        let page = address & ~0xfff
        let inFixmap = page >= fixmapLow && page <= fixmapHigh
        let inPkmap = page >= pkmapLow && page <= pkmapHigh
        guard inFixmap || inPkmap else { return }
        let pkmapPage = pkmap.pageAtVaddr[page]
        if let p = pkmapPage, let s = pkmap.slots[p], s.count >= 1 { return }
        let t = tasks[PidKey(ctx.pid)]
        if inFixmap, let t, t.entries.contains(where: { $0.vaddr == page }) { return }
        // E5: "no live mapping" rests on the slot table (global: any gap) or on the task's stack (a gap on its CPU
        // since it was last known exactly; a task first seen after a gap may hold slots pushed in it).
        var crossedGap = false
        if inPkmap { crossedGap = gapSeen }
        if inFixmap { crossedGap = crossedGap || (t.map { $0.crossedGap } ?? gapSeen) }
        emit.access(AccessRecord(model: name, timestamp: e.timestamp, line: e.line, cpu: ctx.cpu, pid: ctx.pid, comm: ctx.comm,
                                 context: ctx.kind, address: address, frame: pkmapPage.map(frame), write: errorCode & 0x2 != 0,
                                 accessClass: "use_after_unmap", outcome: .unknown, site: e.site, uncertain: crossedGap))
    }

    public func contextEnded(_ ctx: ExecutionContext, at ts: UInt64, line: Int, emit: ObservationSink) {
        pendingLocal[ctx.instance] = nil
        pendingSwitches[ctx.instance] = nil
        pendingHigh[ctx.instance] = nil
        guard let t = tasks[PidKey(ctx.pid)], t.entries.contains(where: { $0.holder == ctx.instance }) else { return }
        emit.anomaly(Anomaly(model: name, timestamp: ts, line: line, cpu: ctx.cpu, pid: ctx.pid, kind: "leaked_across_irq_exit",
                             detail: "\(ctx.kind.rawValue) context ended with kmap_local slot(s) it pushed still on task \(ctx.pid)'s stack"))
    }

    public func eventsLost(cpu: Int32, at timestamp: UInt64) {
        gapSeen = true
        for (pid, var t) in tasks where t.onCPU == cpu || t.lastCPU == cpu {
            for i in t.entries.indices { t.entries[i].uncertain = true }
            t.crossedGap = true
            t.exact = false
            tasks[pid] = t
        }
        for (page, var slot) in pkmap.slots {
            slot.uncertain = true
            slot.exact = false
            for i in slot.grants.indices { slot.grants[i].uncertain = true }
            pkmap.slots[page] = slot
        }
    }

    public func finish(at ts: UInt64, emit: ObservationSink) {
        for pid in tasks.keys.sorted() {
            for entry in tasks[pid]!.entries.reversed() { closeLocal(entry, at: ts, cause: .traceEnd, censored: true, emit) }
        }
        tasks.removeAll()
        localSlots = 0
        lowmemMappings = 0
        for page in pkmap.slots.keys.sorted() {
            let slot = pkmap.slots[page]!
            for gr in slot.grants {
                var g = window(.granted, scope: .global, frame: frame(page), alias: "pkmap", api: KmapAPI.kmapHigh.name,
                               pid: gr.holderPid, comm: gr.holderComm, kind: gr.holderKind, cpu: gr.cpu,
                               open: gr.openNs, close: ts, site: gr.site, cause: .traceEnd)
                g.censoredRight = true
                g.openLine = gr.openLine.line
                g.censoredLeft = gr.censoredLeft
                g.uncertain = gr.uncertain
                emit.window(g)
            }
            // A stale slot (no users) would end at a flush; with no flush probe in the capture one may have gone unseen.
            var closing = slot
            if slot.count <= 1 && !sawPkmapFlush { closing.uncertain = true }
            emitPkmapEffective(closing, close: ts, cause: .traceEnd, censored: true, emit)
        }
        pkmap.slots.removeAll()
        pkmap.liveGrants = 0
    }

    // MARK: Helpers

    private func frame(_ page: UInt64) -> FrameRef {
        if let pfn = resolver.pfn(forPage: page) { return .pfn(pfn) }
        return .page(page)
    }

    private func window(_ layer: WindowLayer, scope: Scope, frame: FrameRef?, alias: StaticString, api: StaticString, pid: Int32,
                        comm: StringTable.ID, kind: ContextKind, cpu: Int32, open: UInt64, close: UInt64,
                        site: StringTable.ID, cause: CloseCause) -> ExposureWindow {
        ExposureWindow(model: name, layer: layer, scope: scope, frame: frame, alias: alias, api: api, holderPid: pid,
                       holderComm: comm, holderContext: kind, cpu: cpu, openNs: open, closeNs: close, site: site, closeCause: cause)
    }

}

