#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The trace-flags column as the kernel records it (`d.h1.`): irqs-off, need-resched,
/// hardirq/softirq/NMI, preempt depth and migrate-disable depth. `include/linux/trace_events.h`.
public struct TraceFlags: Equatable, Sendable {
    public var bits: UInt8 = 0
    public var preemptDepth: UInt8 = 0
    public var migrateDepth: UInt8 = 0
    /// False when the trace has no flag column (`irq-info` off): context is then unknown.
    public var present = false

    public static let irqsOff: UInt8 = 0x01
    public static let needResched: UInt8 = 0x04
    public static let hardirq: UInt8 = 0x08
    public static let softirq: UInt8 = 0x10
    public static let nmi: UInt8 = 0x40
    public static let bhOff: UInt8 = 0x80

    public init() {}
    public init(bits: UInt8, preemptDepth: UInt8 = 0, migrateDepth: UInt8 = 0) {
        self.bits = bits; self.preemptDepth = preemptDepth; self.migrateDepth = migrateDepth; present = true
    }
    public var inHardirq: Bool { bits & TraceFlags.hardirq != 0 }
    public var inSoftirq: Bool { bits & TraceFlags.softirq != 0 }
    public var inNMI: Bool { bits & TraceFlags.nmi != 0 }
}

/// What a raw record is, before any meaning is given to it.
public enum RawRecordKind: UInt8, Sendable {
    /// An event line: tracepoint, kprobe, kretprobe, syscall, marker, function tracer.
    case event
    /// `<stack trace>` / `<user stack trace>` entry: attaches to the event before it.
    case stackTrace
    /// One ` => symbol` line of a stack trace (payload = the symbol text).
    case stackFrame
    /// `CPU:1 [LOST 1234 EVENTS]`: `lostCount` events are missing on `cpu` before the next one.
    case lostEvents
    /// `##### CPU 1 buffer started ####`: the data for `cpu` starts here (older entries were overwritten).
    case bufferStarted
}

/// A field of a binary record as its payload text prints it (`pfn=0x1a2b`), given by the readers that
/// decode records from their format (trace.dat, perf.data): the number the printed value reads as
/// (`Fields.parseInteger`), so that the text need not be parsed back, nor even printed. Labels are
/// the decoder's and valid only during the sink call.
public struct RawField {
    /// How the value is printed.
    public enum Form: UInt8 {
        /// `0x1a2b`
        case hex
        /// `6699`
        case decimal
        /// `-12`: `value` is its two's complement.
        case negativeDecimal
        /// Not a number (`Fields.parseInteger` of the text is nil): a string, an array, a symbol, a field
        /// the record is too short for.
        case other
    }
    /// What the payload prints before `=` (`pfn`; the print format's label, not always the field's name).
    public var label: UnsafeRawBufferPointer
    /// `Fields.parseInteger` of the printed value (0 for `.other`).
    public var value: UInt64
    public var form: Form

    public init(label: UnsafeRawBufferPointer, value: UInt64, form: Form) {
        self.label = label; self.value = value; self.form = form
    }

    public var isNumber: Bool { form != .other }

    /// The form and value of a printed number (`Fields.parseInteger`), `.other` when it is none.
    public static func reading(_ text: UnsafeRawBufferPointer) -> (form: Form, value: UInt64) {
        guard let v = Fields.parseInteger(text) else { return (.other, 0) }
        if text.first == UInt8(ascii: "-") { return (.negativeDecimal, v) }
        return (text.count > 1 && text[1] | 0x20 == UInt8(ascii: "x") ? .hex : .decimal, v)
    }

    /// The first field printed under `label`, from the start of `fields` (print order).
    @inline(__always)
    public static func first(_ label: UnsafeRawBufferPointer, in fields: UnsafeBufferPointer<RawField>) -> RawField? {
        for f in fields where f.label.count == label.count && memcmp(f.label.baseAddress!, label.baseAddress!, label.count) == 0 { return f }
        return nil
    }
}

/// One record of a trace, as a reader saw it. Text fields borrow the reader's buffer and are valid
/// only during the sink call.
///
///     wl-done-125     [000] ...1.     7.217363: kmap_local_page: (__kmap_local_page_prot+0x0/0x60) page=0xf6dfd788
///     comm      pid    cpu  flags     timestamp  name             payload
public struct RawEvent {
    public var kind: RawRecordKind = .event
    /// 1-based line number for text formats, record index for binary ones.
    public var line: Int = 0
    /// Byte offset of the record in the (decompressed) input.
    public var offset: Int = 0
    public var timestamp: UInt64 = 0
    public var cpu: Int32 = 0
    public var pid: Int32 = 0
    /// The `(  TGID)` column with `record-tgid`; -1 when absent.
    public var tgid: Int32 = -1
    public var flags = TraceFlags()
    /// Interned event name (`page_fault_user`, `kmap_local_page`, `sys_enter_memfd_secret`, ...).
    public var name: StringTable.ID = 0
    public var comm = UnsafeRawBufferPointer(start: nil, count: 0)
    public var payload = UnsafeRawBufferPointer(start: nil, count: 0)
    /// The payload's fields in print order (`RawField`), from the binary readers; empty for text and for
    /// payloads that are not `label=value` fields (sched_switch, markers, stack frames). A binary reader
    /// leaves `payload` empty when the sink does not read the text of the event (`readsPayloadText`).
    public var fields = UnsafeBufferPointer<RawField>(start: nil, count: 0)
    /// For `.lostEvents`: the number printed, 0 if the kernel did not say.
    public var lostCount: UInt64 = 0
    /// For `.stackTrace`: true for `<user stack trace>`.
    public var userStack = false

    public init() {}
}

/// Receives raw records from a reader, in file order.
public protocol RawEventSink: AnyObject {
    func consume(_ event: inout RawEvent)
    /// Whether the sink reads the payload text of the events called `name`, beyond their `fields`:
    /// when false, binary readers need not print it. Nil: not known yet (asked again at the next
    /// event of that name). Every sink but the normalizer reads it.
    func readsPayloadText(of name: StringTable.ID) -> Bool?
    /// A line that could not be parsed. `text` borrows the reader's buffer.
    func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer)
}

extension RawEventSink {
    public func readsPayloadText(of name: StringTable.ID) -> Bool? { true }
}
