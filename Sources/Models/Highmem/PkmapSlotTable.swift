import TraceIngest
import EventModel
import Replay

/// One `kmap()` grant on a pkmap slot, from `kmap_high` to the `kunmap_high` that releases it.
struct PkmapGrant {
    var holder: ContextInstance
    var holderKind: ContextKind
    var holderPid: Int32
    var holderComm: StringTable.ID
    var cpu: Int32
    var openNs: UInt64
    var site: StringTable.ID
    var uncertain = false
    var censoredLeft = false
    /// Trace line of the `kmap_high` (0: before the trace).
    var openLine: StoredLine = 0
}

/// A pkmap slot as `mm/highmem.c` keeps it (`pkmap_count`): count 0 = free and flushed, 1 = no users
/// but still mapped (stale until the next flush), n = n-1 users.
struct PkmapSlot {
    var page: UInt64
    var vaddr: UInt64?
    var count: Int
    var grants: [PkmapGrant] = []
    /// EFFECTIVE window: from slot install to flush.
    var installNs: UInt64
    var installer: PkmapGrant
    var effectiveCensoredLeft = false
    var uncertain = false
    /// The count is known exactly (the slot was installed in the trace from a flushed state);
    /// false when users may predate the trace.
    var exact: Bool
    /// Trace line of the `kmap_high` that installed the slot (0: before the trace).
    var installLine: StoredLine = 0
}

/// The pkmap slot table, keyed by `struct page *` (both `kmap_high` and `kunmap_high` name the page),
/// with the reverse map vaddr -> page for slots whose address the kretprobe gave.
struct PkmapSlotTable {
    var slots: [UInt64: PkmapSlot] = [:]
    var pageAtVaddr: [UInt64: UInt64] = [:]
    /// Address of the last newly installed slot: the slot search is linear, so a new slot at a lower
    /// address means the search wrapped, and `flush_all_zero_pkmaps()` ran.
    var lastInstallVaddr: UInt64?
    /// A `flush_all_zero_pkmaps`/`__kmap_flush_unused` event was seen since the last new slot: the flush a
    /// wrapped search runs is then observed, not to be inferred again at the `kmap_high` return.
    var flushObservedSinceInstall = false
    /// Pages whose slot a flush cleared: their next install starts from an exact count of 0.
    var flushedPages: Set<UInt64> = []
    /// Grants held over all slots (capped like a map: `LiveStateLimit`).
    var liveGrants = 0
}
