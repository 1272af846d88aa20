import TraceIngest
import EventModel

/// The two layers of exposure (spec "Reporting conventions"): what the API contract allows, and
/// what the modelled hardware state allows.
public enum WindowLayer: String, Sendable, CaseIterable {
    case granted, effective
    /// Exposure that is intended and not overexposure (direct-map removal: the owner's user mapping).
    case intended
}

/// Who can reach a frame during a window.
public enum Scope: String, Sendable, CaseIterable {
    case ctx, task, cpu, global, device
    /// Position in `allCases`.
    public var index: Int {
        switch self { case .ctx: return 0; case .task: return 1; case .cpu: return 2; case .global: return 3; case .device: return 4 }
    }
}

/// Kind of execution context (spec §1.4).
public enum ContextKind: String, Sendable { case task, softirq, hardirq, nmi }

/// Why a window ended.
public enum CloseCause: String, Sendable, CaseIterable {
    case unmap
    /// Popped by a `kunmap_local` that named another address (the kernel pops the top).
    case outOfOrderPop = "out_of_order_pop"
    case flush
    /// A pkmap flush the model inferred from the slot search wrapping or a slot being reused.
    case flushInferred = "flush_inferred"
    case schedOut = "sched_out"
    case exit
    /// Still open when the trace ended (right-censored).
    case traceEnd = "trace_end"
    /// An IRQ/exception started on the CPU and shadows the context (PKS: IRQs start with the key AD).
    case shadowed
    /// The context was left (IRQ exit, return to user): a temporary unprotect ends.
    case contextEnd = "context_end"
    /// A state change of the frame ended it (re-import, free, restore, ...).
    case stateChange = "state_change"

    /// Position in `allCases`.
    public var index: Int {
        switch self {
        case .unmap: return 0
        case .outOfOrderPop: return 1
        case .flush: return 2
        case .flushInferred: return 3
        case .schedOut: return 4
        case .exit: return 5
        case .traceEnd: return 6
        case .shadowed: return 7
        case .contextEnd: return 8
        case .stateChange: return 9
        }
    }
}

/// A context instance a window or access belongs to: a task, or one IRQ/softirq/NMI instance.
public enum ContextInstance: Hashable, Sendable {
    case task(Int32)
    case irq(UInt64)

    /// Both cases in one word (an IRQ instance with the top bit set): what the hash is computed from.
    /// Two instances never share it below 2^63 IRQ instances; equality stays the enum's own.
    @inline(__always)
    var hashWord: UInt64 {
        switch self {
        case let .task(pid): return UInt64(UInt32(bitPattern: pid))
        case let .irq(seq): return seq | 1 << 63
        }
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(hashWord) }

    /// The models look up per-context state on nearly every event (`[ContextInstance: ...]`): a
    /// multiply-xorshift mix of the word (murmur3's finalizer) with the table's per-process seed, instead
    /// of a full SipHash round per lookup (it was about 15% of a replay's time on the i386 capture).
    @inline(__always)
    public func _rawHashValue(seed: Int) -> Int { CheapHash.mix(hashWord, seed: seed) }
}

/// A task's pid as a dictionary key (`[PidKey: ...]`): the models look up per-task state on nearly every
/// event, and an `Int32` key costs a SipHash round per lookup (about 5% of the replaying thread on the
/// tiled i386 capture); this one is mixed like `ContextInstance`.
public struct PidKey: Hashable, Comparable, Sendable {
    public var pid: Int32
    @inlinable public init(_ pid: Int32) { self.pid = pid }
    public static func < (a: PidKey, b: PidKey) -> Bool { a.pid < b.pid }
    public func hash(into hasher: inout Hasher) { hasher.combine(pid) }
    @inlinable public func _rawHashValue(seed: Int) -> Int { CheapHash.mix(UInt64(UInt32(bitPattern: pid)), seed: seed) }
}

/// murmur3's 64-bit finalizer over one word and a table's per-process seed: enough for keys that are
/// small integers chosen by the kernel, not by an adversary of the hash table.
@usableFromInline
enum CheapHash {
    @inlinable @inline(__always)
    static func mix(_ word: UInt64, seed: Int) -> Int {
        var x = word ^ UInt64(bitPattern: Int64(seed))
        x ^= x >> 33
        x &*= 0xff51_afd7_ed55_8ccd
        x ^= x >> 33
        x &*= 0xc4ce_b9fe_1a85_ec53
        x ^= x >> 33
        return Int(bitPattern: UInt(truncatingIfNeeded: x))
    }
}

/// One interval during which a frame (or a key) was reachable (spec §1.6 `ExposureWindow`).
public struct ExposureWindow: @unchecked Sendable {
    public var model: StaticString
    public var layer: WindowLayer
    public var scope: Scope
    /// The frame, when the window is per frame.
    public var frame: FrameRef?
    /// `pkmap`, `fixmap_kmap`, `direct`, ...
    public var alias: StaticString
    /// The API that opened it (`kmap_high`, `kmap_local_page`, ...).
    public var api: StaticString
    public var holderPid: Int32
    public var holderComm: StringTable.ID
    public var holderContext: ContextKind
    public var cpu: Int32
    public var openNs: UInt64
    public var closeNs: UInt64
    public var site: StringTable.ID
    public var closeCause: CloseCause
    public var censoredLeft = false
    public var censoredRight = false
    public var uncertain = false
    /// Trace line (record index for binary input) of the event that opened the window: 0 when the model
    /// does not record it or the window opened before the capture (left-censored).
    public var openLine = 0
    /// Trace line of the event being replayed when the window closed (the unmap, the `sched_switch`, the
    /// first event outside an IRQ, ...) if the window ends at that event's timestamp: 0 when the trace end
    /// closed it or the model emitted it later (a piece dated at an earlier switch).
    public var closeLine = 0

    public var durationNs: UInt64 { closeNs >= openNs ? closeNs - openNs : 0 }
    public var censored: Bool { censoredLeft || censoredRight }

    public init(model: StaticString, layer: WindowLayer, scope: Scope, frame: FrameRef?, alias: StaticString, api: StaticString,
                holderPid: Int32, holderComm: StringTable.ID, holderContext: ContextKind, cpu: Int32,
                openNs: UInt64, closeNs: UInt64, site: StringTable.ID, closeCause: CloseCause) {
        self.model = model; self.layer = layer; self.scope = scope; self.frame = frame; self.alias = alias
        self.api = api; self.holderPid = holderPid; self.holderComm = holderComm; self.holderContext = holderContext
        self.cpu = cpu; self.openNs = openNs; self.closeNs = closeNs; self.site = site; self.closeCause = closeCause
    }
}

/// An access to a protected frame without a grant (spec §1.6 `AccessRecord`).
public struct AccessRecord: @unchecked Sendable {
    public enum Outcome: String, Sendable, CaseIterable {
        case blocked, fixedUp = "fixed_up", silent, ioErrorExpected = "io_error_expected", unknown
    }
    public var model: StaticString
    public var timestamp: UInt64
    public var line: Int
    public var cpu: Int32
    public var pid: Int32
    public var comm: StringTable.ID
    public var context: ContextKind
    public var address: UInt64
    public var frame: FrameRef?
    public var write: Bool
    /// Sub-class in lower snake case (`use_after_unmap`, `handoff`, `sendfile_hole`, ...).
    public var accessClass: StaticString
    public var outcome: Outcome
    public var site: StringTable.ID
    public var uncertain: Bool

    public init(model: StaticString, timestamp: UInt64, line: Int, cpu: Int32, pid: Int32, comm: StringTable.ID,
                context: ContextKind, address: UInt64, frame: FrameRef?, write: Bool, accessClass: StaticString,
                outcome: Outcome, site: StringTable.ID, uncertain: Bool) {
        self.model = model; self.timestamp = timestamp; self.line = line; self.cpu = cpu; self.pid = pid
        self.comm = comm; self.context = context; self.address = address; self.frame = frame; self.write = write
        self.accessClass = accessClass; self.outcome = outcome; self.site = site; self.uncertain = uncertain
    }
}

/// Something the trace shows that the kernel's rules say should not happen (spec §7.3, §8).
public struct Anomaly: @unchecked Sendable {
    public var model: StaticString
    public var timestamp: UInt64
    public var line: Int
    public var cpu: Int32
    public var pid: Int32
    /// Lower snake case: `out_of_order_unmap`, `migrate_with_local_kmap`, ...
    public var kind: String
    public var detail: String

    public init(model: StaticString, timestamp: UInt64, line: Int, cpu: Int32, pid: Int32, kind: String, detail: String) {
        self.model = model; self.timestamp = timestamp; self.line = line; self.cpu = cpu; self.pid = pid
        self.kind = kind; self.detail = detail
    }
}

/// Receives what the models observe.
public protocol ObservationSink: AnyObject {
    func window(_ window: ExposureWindow)
    func access(_ access: AccessRecord)
    func anomaly(_ anomaly: Anomaly)
}
