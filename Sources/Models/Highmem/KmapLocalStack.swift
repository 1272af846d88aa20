import TraceIngest
import EventModel
import Replay

/// One fixmap slot pushed by `__kmap_local_pfn_prot` on a task's kmap_local stack (spec §7.2).
struct KmapLocalEntry {
    var pfn: UInt64
    var vaddr: UInt64?
    var holder: ContextInstance
    var holderKind: ContextKind
    var holderPid: Int32
    var holderComm: StringTable.ID
    var cpu: Int32
    var api: KmapAPI
    var openNs: UInt64
    var site: StringTable.ID
    /// Start of the current on-CPU segment (the EFFECTIVE layer), nil while the task is off-CPU.
    var segmentStart: UInt64?
    var uncertain = false
    var censoredLeft = false
    /// Trace lines of the opening event and of the event that started the current segment (0: unknown).
    var openLine: StoredLine = 0
    var segmentLine: StoredLine = 0
}

/// A task's kmap_local state: the LIFO stack of fixmap slots (`current->kmap_ctrl`), and the
/// lowmem mappings that `__kmap_local_page_prot` answered from the direct map (no slot, no window,
/// but their `kunmap_local` must not pop the stack).
struct KmapLocalStack {
    var entries: [KmapLocalEntry] = []
    var lowmemOutstanding: [UInt64] = []
    /// True when the stack is known to be exactly what the trace shows (the task was forked in the
    /// trace, or was seen in user mode with nothing mapped); false when entries may predate the trace.
    var exact = false
    var onCPU: Int32?
    var lastCPU: Int32?
    var migrationReported = false
    /// Lost events on this task's CPU since its last consistent state.
    var crossedGap = false

    static let lowmemMemory = 64
    /// `KM_MAX_IDX` without `CONFIG_DEBUG_KMAP_LOCAL`: at most 15 live slots per task (spec §2.4).
    static let maximumDepth = 15
    /// Slots tracked per task: past `maximumDepth` the kernel has BUGged; deeper pushes are counted as
    /// refused (`LiveStateLimit`), not modelled.
    static let trackedDepth = 64

    /// Pushes a slot the task mapped on `cpu`; returns the stack's new depth.
    mutating func push(_ entry: KmapLocalEntry, cpu: Int32) -> Int {
        if onCPU == nil { onCPU = cpu }
        lastCPU = cpu
        entries.append(entry)
        return entries.count
    }

    /// Remembers a lowmem mapping; returns how many entries the list grew by (0 when it forgot the oldest).
    @discardableResult
    mutating func noteLowmem(_ vaddr: UInt64) -> Int {
        lowmemOutstanding.append(vaddr & ~0xfff)
        if lowmemOutstanding.count > KmapLocalStack.lowmemMemory {
            lowmemOutstanding.removeFirst()
            return 0
        }
        return 1
    }

    /// `__kmap_local_pfn_prot` returned `vaddr` (page-aligned) in `holder`: the newest slot it pushed
    /// without an address gets it, and the call site if it has none. False when there is no such slot.
    mutating func returnedPfn(holder: ContextInstance, vaddr: UInt64, site: StringTable.ID) -> Bool {
        guard let i = entries.lastIndex(where: { $0.holder == holder && $0.vaddr == nil }) else { return false }
        entries[i].vaddr = vaddr
        if entries[i].site == 0 && entries[i].api == .kmapLocalPfn { entries[i].site = site }
        return true
    }

    /// `__kmap_local_page_prot` returned `vaddr` (page-aligned) for the slot `holder` pushed at `openNs`:
    /// the return's call site (when known) replaces the slot's, and the slot gets the address if it has none.
    mutating func returnedPage(holder: ContextInstance, openNs: UInt64, vaddr: UInt64, site: StringTable.ID) {
        guard let i = entries.lastIndex(where: { $0.holder == holder && $0.openNs == openNs }) else { return }
        if site != 0 { entries[i].site = site }
        if entries[i].vaddr == nil { entries[i].vaddr = vaddr }
    }

    /// Removes a lowmem mapping with this (page-aligned) address; true if there was one.
    mutating func takeLowmem(_ pageAddress: UInt64) -> Bool {
        guard let i = lowmemOutstanding.lastIndex(of: pageAddress) else { return false }
        lowmemOutstanding.remove(at: i)
        return true
    }
}

/// A `kmap_local_page()` call in flight in one context: entry seen, return not yet.
struct PendingLocalCall {
    var openNs: UInt64
    var page: UInt64
    var openLine: StoredLine = 0
    /// The nested `__kmap_local_pfn_prot` ran: the page is highmem and a slot was pushed.
    var pushed = false
}

/// A switch away from a task (and the switch back) between a `kmap_local_page` entry and its nested push: the
/// window opens at the entry, so its first on-CPU pieces end there once the page turns out to be highmem
/// (spec E8). On PREEMPT_RT the call is preemptible before migrate_disable() (6.1-rt capture: 12 such switches).
struct PendingSwitch {
    var out: UInt64
    var back: UInt64?
    var cpu: Int32
}
