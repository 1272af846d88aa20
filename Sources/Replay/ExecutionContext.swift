import TraceIngest
import EventModel

/// Where an event ran: CPU, current task, and the innermost context instance (spec §1.4).
public struct ExecutionContext: Sendable {
    public var cpu: Int32
    /// The current task (in IRQ context, the interrupted one).
    public var pid: Int32
    public var comm: StringTable.ID
    public var kind: ContextKind
    public var instance: ContextInstance
    /// Timestamp at which this CPU's data starts (first event, or after `buffer started`).
    public var cpuTraceStart: UInt64

    public init(cpu: Int32, pid: Int32, comm: StringTable.ID, kind: ContextKind, instance: ContextInstance, cpuTraceStart: UInt64) {
        self.cpu = cpu; self.pid = pid; self.comm = comm; self.kind = kind; self.instance = instance
        self.cpuTraceStart = cpuTraceStart
    }
}
