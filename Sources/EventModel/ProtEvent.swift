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
    case gupAcquire(GupAPI, path: GupPath, start: UInt64, pages: UInt64, flags: UInt64)
    case gupReturn(GupAPI, path: GupPath, result: Int64)
    case pageAlloc(pfn: UInt64, order: UInt8)
    case pageFree(pfn: UInt64, order: UInt8)
    /// `tracing_mark_write` (user-space marker).
    case marker

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
}
