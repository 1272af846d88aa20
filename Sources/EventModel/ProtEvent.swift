import TraceIngest

/// Which kmap-family API a `KMAP`/`KUNMAP` event came from (spec §2.2, §7).
public enum KmapAPI: UInt8, Sendable, CaseIterable {
    /// `kmap()` -> `kmap_high()` / `kunmap_high()`: a pkmap slot, global scope.
    case kmapHigh = 0
    /// `kmap_local_page()` / `kmap_atomic()` -> `__kmap_local_page_prot()`.
    case kmapLocalPage
    /// `__kmap_local_pfn_prot()`: the fixmap push itself (nested in `kmap_local_page` for highmem pages).
    case kmapLocalPfn
    /// `kunmap_local()` -> `kunmap_local_indexed()`.
    case kunmapLocal

    public var name: StaticString {
        switch self {
        case .kmapHigh: return "kmap_high"
        case .kmapLocalPage: return "kmap_local_page"
        case .kmapLocalPfn: return "kmap_local_pfn"
        case .kunmapLocal: return "kunmap_local"
        }
    }
}

/// get_user_pages flavours, classified by the API called (never by decoding FOLL_PIN; spec §2.5).
public enum GupAPI: UInt8, Sendable { case get, pin }

/// The unpin API a `GUP_RELEASE` came from (spec §2.2: `unpin_user_page(s)*`, `unpin_folio(s)`), which says
/// what its pointer is.
public enum GupReleaseAPI: UInt8, Sendable {
    /// `unpin_user_page(page)`, `unpin_folio(folio)`: one page (one reference).
    case page
    /// `unpin_user_pages(pages, npages)`, `unpin_user_pages_dirty_lock(pages, npages, make_dirty)`,
    /// `unpin_folios(folios, nfolios)`: the pointer is the `struct page **` array the pin call filled.
    case pages
    /// `unpin_user_page_range_dirty_lock(page, npages, make_dirty)`: `npages` consecutive pages from `page`.
    case range
}
public enum GupPath: UInt8, Sendable { case fast, slow, remote }

/// Hard interrupt, soft interrupt or NMI context.
public enum IRQKind: UInt8, Sendable, Comparable {
    case softirq = 1, hardirq = 2, nmi = 3
    public static func < (a: IRQKind, b: IRQKind) -> Bool { a.rawValue < b.rawValue }
    public var name: String {
        switch self { case .softirq: return "softirq"; case .hardirq: return "hardirq"; case .nmi: return "nmi" }
    }
}

/// A reference to a physical frame as the trace gave it: a pfn, or a `struct page *` still to be resolved.
public enum FrameRef: Hashable, Sendable {
    case pfn(UInt64)
    case page(UInt64)
}

/// The normalized vocabulary (spec §2.2): what happened, independent of the trace format.
public enum ProtEventKind: Sendable {
    /// `sched_switch`. `prevRunnable` is false when the previous task went to sleep (state other than R).
    case contextSwitch(prevPid: Int32, prevComm: StringTable.ID, prevRunnable: Bool, nextPid: Int32, nextComm: StringTable.ID)
    case taskMigrate(pid: Int32, fromCPU: Int32, toCPU: Int32)
    case taskFork(parentPid: Int32, childPid: Int32, childComm: StringTable.ID)
    case taskExit(pid: Int32)
    case irqEnter(IRQKind, vector: Int32)
    case irqExit(IRQKind, vector: Int32)
    /// `page_fault_user` / `page_fault_kernel` (x86 `error_code` bits in spec §2.6).
    case fault(address: UInt64, ip: UInt64, errorCode: UInt64, user: Bool)
    /// Entry of a kmap-family call. `page` is a `struct page *`, `pfn` when the probe gave it.
    case kmap(KmapAPI, page: UInt64?, pfn: UInt64?)
    /// kretprobe of a kmap-family call: the returned virtual address.
    case kmapReturn(KmapAPI, vaddr: UInt64)
    /// `kunmap_high(page)`.
    case kunmapHigh(page: UInt64)
    /// `kunmap_local_indexed(vaddr)`.
    case kunmapLocal(vaddr: UInt64)
    /// `__kmap_flush_unused` / `flush_all_zero_pkmaps`: every count-1 pkmap slot is cleared.
    case pkmapFlush
    /// Entry of a gup API call: `array` is its `struct page **pages` argument (0 when the probe does not give it),
    /// which an `unpin_user_pages(pages, npages)` later names.
    case gupAcquire(GupAPI, path: GupPath, start: UInt64, pages: UInt32, flags: UInt32, array: UInt64 = 0)
    case gupReturn(GupAPI, path: GupPath, result: Int64)
    case pageAlloc(pfn: UInt64, order: UInt8)
    case pageFree(pfn: UInt64, order: UInt8)
    /// `tracing_mark_write` (user-space marker). `phase`: with a phase marker prefix set
    /// (`EventNormalizer.phaseMarker`, `wl phase `), the text after it (`sendfile`, `sendfile done`)
    /// interned in the symbol table; 0 for any other marker. Untrusted text: escape it when shown.
    case marker(phase: StringTable.ID)
    /// One page taken inside a gup call (`try_grab_folio`/`try_grab_page`): `flags` are the FOLL_* flags
    /// the kernel passed (FOLL_PIN or FOLL_GET), `refs` the references taken.
    case gupPage(page: UInt64, refs: UInt32, flags: UInt64)
    /// Entry of an unpin API call (spec §2.2 `GUP_RELEASE`, api unpin): `pointer` is a `struct page *`
    /// (`.page`, `.range`) or the `struct page **` array (`.pages`); `count` the pages it releases.
    case gupRelease(GupReleaseAPI, pointer: UInt64, count: UInt32, dirty: Bool)
    /// References dropped by `gup_put_folio` (FOLL_PIN: an unpin; FOLL_GET: a put). The unpin APIs call it
    /// (unless inlined, as on s390x), as do gup's own error paths.
    case gupPut(page: UInt64, refs: UInt32, flags: UInt64)
    /// What a page-table walk inside gup saw (`follow_page_pte`, `vm_normal_page` probes): the VMA's
    /// `vm_flags` and, when probed, the pte value and whether its special bit is set.
    case gupPte(vmFlags: UInt64?, special: Bool?, pte: UInt64?)
    /// `__folio_start_writeback(folio)` / `folio_end_writeback(folio)`.
    case writebackStart(folio: UInt64)
    case writebackEnd(folio: UInt64)
    /// `set_direct_map_invalid_noflush(page)` (valid false) / `set_direct_map_default_noflush(page)` (valid true).
    case directMap(page: UInt64, valid: Bool)
    case directMapReturn(valid: Bool, result: Int64)
    /// `flush_tlb_kernel_range(start, end)`.
    case tlbFlushKernelRange(start: UInt64, end: UInt64)
    case secretmemMmap(start: UInt64, end: UInt64)
    case secretmemFault(address: UInt64)
    case secretmemFree(folio: UInt64)
    /// s390 `arch_make_page_accessible(page)` / `arch_make_folio_accessible(folio)`, and its return.
    case makeAccessible(page: UInt64)
    case makeAccessibleReturn(result: Int64)
    /// s390 `gmap_make_secure`/`gmap_convert_to_secure` return (import), `uv_destroy_*`/`gmap_destroy_page`.
    case makeSecureReturn(result: Int64)
    case uvDestroy(page: UInt64?)
    /// I/O submission of a page to a device (`bio_add_page`, `bio_add_folio`).
    case ioSubmit(page: UInt64)
    /// A page-cache page handed to a socket or device by the zero-copy splice/sendfile path (`pipe_to_sendpage`).
    case spliceZeroCopy(page: UInt64)
    /// PKS series: `__pgmap_set_readwrite` / `__pgmap_set_noaccess` (V9/V10 names).
    case pgmapGrant
    case pgmapRevoke
    /// PKS series: `pks_update_protection(pkey, prot)` / `pks_update_exception(regs, pkey, prot)`;
    /// `readWrite` when prot is PKEY_READ_WRITE (0).
    case pksSet(key: UInt32, readWrite: Bool)
    case pksExceptionUpdate(key: UInt32, readWrite: Bool)
    /// A syscall boundary (`sys_enter_*`, `sys_exit_*`): the task was in user mode just before / is about to return.
    case syscall(enter: Bool)

    /// A small tag for table lookups ("does this model want this kind?").
    public var tag: ProtEventTag {
        switch self {
        case .contextSwitch: return .contextSwitch
        case .taskMigrate: return .taskMigrate
        case .taskFork: return .taskFork
        case .taskExit: return .taskExit
        case .irqEnter: return .irqEnter
        case .irqExit: return .irqExit
        case .fault: return .fault
        case .kmap: return .kmap
        case .kmapReturn: return .kmapReturn
        case .kunmapHigh: return .kunmapHigh
        case .kunmapLocal: return .kunmapLocal
        case .pkmapFlush: return .pkmapFlush
        case .gupAcquire: return .gupAcquire
        case .gupReturn: return .gupReturn
        case .pageAlloc: return .pageAlloc
        case .pageFree: return .pageFree
        case .marker: return .marker
        case .gupPage: return .gupPage
        case .gupRelease: return .gupRelease
        case .gupPte: return .gupPte
        case .writebackStart: return .writebackStart
        case .writebackEnd: return .writebackEnd
        case .directMap: return .directMap
        case .directMapReturn: return .directMapReturn
        case .tlbFlushKernelRange: return .tlbFlushKernelRange
        case .secretmemMmap: return .secretmemMmap
        case .secretmemFault: return .secretmemFault
        case .secretmemFree: return .secretmemFree
        case .makeAccessible: return .makeAccessible
        case .makeAccessibleReturn: return .makeAccessibleReturn
        case .makeSecureReturn: return .makeSecureReturn
        case .uvDestroy: return .uvDestroy
        case .ioSubmit: return .ioSubmit
        case .spliceZeroCopy: return .spliceZeroCopy
        case .pgmapGrant: return .pgmapGrant
        case .pgmapRevoke: return .pgmapRevoke
        case .pksSet: return .pksSet
        case .pksExceptionUpdate: return .pksExceptionUpdate
        case .syscall: return .syscall
        case .gupPut: return .gupPut
        }
    }
}

/// Tags of `ProtEventKind`, also the names used in the probe map (`"maps_to"`).
public enum ProtEventTag: String, Sendable, CaseIterable {
    /// Position in `allCases`, for table lookups on the hot path.
    @inline(__always)
    public var ordinal: Int {
        switch self {
        case .contextSwitch: return 0
        case .taskMigrate: return 1
        case .taskFork: return 2
        case .taskExit: return 3
        case .irqEnter: return 4
        case .irqExit: return 5
        case .fault: return 6
        case .kmap: return 7
        case .kmapReturn: return 8
        case .kunmapHigh: return 9
        case .kunmapLocal: return 10
        case .pkmapFlush: return 11
        case .gupAcquire: return 12
        case .gupReturn: return 13
        case .pageAlloc: return 14
        case .pageFree: return 15
        case .marker: return 16
        case .gupPage: return 17
        case .gupRelease: return 18
        case .gupPte: return 19
        case .writebackStart: return 20
        case .writebackEnd: return 21
        case .directMap: return 22
        case .directMapReturn: return 23
        case .tlbFlushKernelRange: return 24
        case .secretmemMmap: return 25
        case .secretmemFault: return 26
        case .secretmemFree: return 27
        case .makeAccessible: return 28
        case .makeAccessibleReturn: return 29
        case .makeSecureReturn: return 30
        case .uvDestroy: return 31
        case .ioSubmit: return 32
        case .spliceZeroCopy: return 33
        case .pgmapGrant: return 34
        case .pgmapRevoke: return 35
        case .pksSet: return 36
        case .pksExceptionUpdate: return 37
        case .syscall: return 38
        case .gupPut: return 39
        }
    }

    case contextSwitch = "CTX_SWITCH"
    case taskMigrate = "TASK_MIGRATE"
    case taskFork = "TASK_FORK"
    case taskExit = "TASK_EXIT"
    case irqEnter = "IRQ_ENTER"
    case irqExit = "IRQ_EXIT"
    case fault = "FAULT"
    case kmap = "KMAP"
    case kmapReturn = "KMAP_RET"
    case kunmapHigh = "KUNMAP_HIGH"
    case kunmapLocal = "KUNMAP_LOCAL"
    case pkmapFlush = "PKMAP_FLUSH"
    case gupAcquire = "GUP_ACQUIRE"
    case gupReturn = "GUP_RET"
    case pageAlloc = "PAGE_ALLOC"
    case pageFree = "PAGE_FREE"
    case marker = "MARKER"
    case gupPage = "GUP_PAGE"
    case gupRelease = "GUP_RELEASE"
    case gupPte = "GUP_PTE"
    case writebackStart = "WB_START"
    case writebackEnd = "WB_END"
    case directMap = "DMAP_SET"
    case directMapReturn = "DMAP_SET_RET"
    case tlbFlushKernelRange = "TLB_FLUSH_KRANGE"
    case secretmemMmap = "SECRETMEM_MMAP"
    case secretmemFault = "SECRETMEM_FAULT"
    case secretmemFree = "SECRETMEM_FREE"
    case makeAccessible = "UV_MAKE_ACCESSIBLE"
    case makeAccessibleReturn = "UV_MAKE_ACCESSIBLE_RET"
    case makeSecureReturn = "UV_MAKE_SECURE_RET"
    case uvDestroy = "UV_DESTROY"
    case ioSubmit = "IO_SUBMIT"
    case spliceZeroCopy = "SPLICE_ZC"
    case pgmapGrant = "PGMAP_GRANT"
    case pgmapRevoke = "PGMAP_REVOKE"
    case pksSet = "PKS_SET"
    case pksExceptionUpdate = "PKS_EXC_UPDATE"
    case syscall = "SYSCALL"
    case gupPut = "GUP_PUT"
}

/// One normalized event with its envelope (spec §2.1).
public struct ProtEvent: Sendable {
    /// Line number (text) or record index (binary) of the source record.
    public var line: Int
    public var timestamp: UInt64
    public var cpu: Int32
    /// `common_pid`: in IRQ context this is the interrupted task.
    public var pid: Int32
    public var comm: StringTable.ID
    public var flags: TraceFlags
    /// Call site: the kretprobe's caller, or the first stack-trace frame outside the probed function.
    public var site: StringTable.ID
    public var kind: ProtEventKind

    public init(line: Int, timestamp: UInt64, cpu: Int32, pid: Int32, comm: StringTable.ID,
                flags: TraceFlags, site: StringTable.ID = 0, kind: ProtEventKind) {
        self.line = line; self.timestamp = timestamp; self.cpu = cpu; self.pid = pid; self.comm = comm
        self.flags = flags; self.site = site; self.kind = kind
    }
}

/// Receives normalized events (and stream markers) in trace order.
public protocol ProtEventSink: AnyObject {
    func consume(_ event: ProtEvent)
    /// `count` events were lost on `cpu` after `afterTimestamp` (0 if the count is unknown).
    func lost(cpu: Int32, count: UInt64, line: Int)
    /// The ring buffer for `cpu` starts here; earlier data was overwritten.
    func bufferStarted(cpu: Int32, line: Int)
    /// An event that is read but not used (unmapped, ignored, undecodable): it still moves time and,
    /// through its flags, the CPU's context.
    func tick(cpu: Int32, pid: Int32, timestamp: UInt64, flags: TraceFlags, line: Int)
    /// Something the trace taught about the address layout, at the point it was read.
    func addressFact(_ fact: AddressFact)
}

extension ProtEventSink {
    /// Sinks that do not resolve addresses ignore address facts.
    public func addressFact(_ fact: AddressFact) {}
}
