import TraceIngest
import EventModel

/// Replays normalized events in order through one or more protection models (spec §3).
///
/// Keeps, per CPU, the current task (from `sched_switch`, else the event's pid) and a stack of
/// IRQ/softirq/NMI instances built from the flag column (`d.h1.`) and from irq/softirq events.
/// Each event reaches the models with the innermost context instance it ran in.
public final class ReplayEngine: ProtEventSink {
    public let models: [ProtectionModel]
    public let sink: ObservationSink

    /// Counters about the replay itself, for the data-quality section.
    public struct Stats: Sendable {
        public var eventsUsed = 0
        public var firstTimestamp: UInt64?
        public var lastTimestamp: UInt64 = 0
        /// Events whose timestamp is lower than the previous event's (kept in file order).
        public var timestampsBackwards = 0
        /// Events on a CPU number above `maximumCPUs` (not replayed; also counted as used/ignored/unmapped).
        public var cpuOutOfRange = 0
        public var cpusSeen = 0
        public var contextSwitches = 0
        /// The live-state cap and what it refused (`LiveStateLimit`).
        public var liveState = LiveStateLimit.Summary()
    }
    private var counts = Stats()
    public var stats: Stats {
        var s = counts
        s.liveState = limit.summary
        return s
    }
    /// Shared with every model: the cap on live entries per map, and the refusals.
    public let limit: LiveStateLimit

    /// IRQ/softirq/NMI instances nested on one CPU beyond this are not tracked (real nesting is at most
    /// softirq < hardirq < NMI; deeper stacks only come from entry events without exits and no flag column).
    public static let maximumIRQDepth = 16

    /// CPU numbers above this are treated as corrupt input.
    public static let maximumCPUs = 8192

    struct IRQFrame {
        var kind: IRQKind
        var seq: UInt64
        /// An explicit handler-entry event opened this instance.
        var explicit: Bool
    }

    struct CPUState {
        var seen = false
        var currentPid: Int32 = -1
        var currentComm: StringTable.ID = 0
        var irqs: [IRQFrame] = []
        var traceStart: UInt64 = 0
        var lastTimestamp: UInt64 = 0
        var restartPending = false
    }

    private var cpus: [CPUState] = []
    private var irqSeq: UInt64 = 0
    /// Per tag ordinal: is the event used (by the engine or a model), and which models want it.
    private var wanted: [Bool]
    /// The models that want each kind: `wantingModels[modelsFor[tag ordinal]]`, one flat constant array.
    /// Unmanaged: a model taken out of an array of references is retained and released around every
    /// call (about 8% of the replaying thread on the tiled i386 capture); `modelBoxes` keeps them alive.
    private let wantingModels: [Unmanaged<ModelBox>]
    private let modelsFor: [Range<Int>]
    /// Every model, for the IRQ instances' starts and ends (as frequent as events on an IRQ-heavy CPU).
    private let everyModel: [Unmanaged<ModelBox>]
    private let modelBoxes: [ModelBox]

    /// A model behind a `let`: called through a guaranteed reference to its box, it is borrowed, not retained.
    private final class ModelBox {
        let model: ProtectionModel
        init(_ model: ProtectionModel) { self.model = model }
    }

    /// The kinds the engine or a model consumes: everything else need not be decoded.
    public var wantedTags: Set<ProtEventTag> {
        Set(ProtEventTag.allCases.filter { wanted[$0.ordinal] })
    }

    public init(models: [ProtectionModel], sink: ObservationSink, limit: LiveStateLimit = LiveStateLimit()) {
        self.models = models
        self.sink = sink
        self.limit = limit
        for m in models { m.attach(limit) }
        let engineTags: Set<ProtEventTag> = [.contextSwitch, .irqEnter, .irqExit, .taskMigrate, .taskFork, .taskExit]
        wanted = ProtEventTag.allCases.map { tag in engineTags.contains(tag) || models.contains { $0.wants(tag) } }
        let boxes = models.map(ModelBox.init)
        var flat: [Unmanaged<ModelBox>] = []
        modelsFor = ProtEventTag.allCases.map { tag in
            let start = flat.count
            flat += boxes.filter { $0.model.wants(tag) }.map { Unmanaged.passUnretained($0) }
            return start..<flat.count
        }
        modelBoxes = boxes
        wantingModels = flat
        everyModel = boxes.map { Unmanaged.passUnretained($0) }
    }

    public func consume(_ event: ProtEvent) {
        let cpu = Int(event.cpu)
        guard cpu >= 0 && cpu < ReplayEngine.maximumCPUs else { counts.cpuOutOfRange += 1; return }
        let ts = event.timestamp
        advance(cpu: cpu, pid: event.pid, timestamp: ts, flags: event.flags, line: event.line)
        if event.comm != 0 { cpus[cpu].currentComm = event.comm }
        let ordinal = event.kind.tag.ordinal
        let used = wanted[ordinal]
        if used { counts.eventsUsed += 1 }
        switch event.kind {
        case let .irqEnter(kind, _):
            if let top = cpus[cpu].irqs.last, top.kind == kind, !top.explicit, event.flags.present {
                cpus[cpu].irqs[cpus[cpu].irqs.count - 1].explicit = true
            } else {
                if let top = cpus[cpu].irqs.last, top.kind == kind { popIRQ(cpu: cpu, at: ts, line: event.line) }
                pushIRQ(cpu: cpu, kind: kind, explicit: true, at: ts, pid: event.pid)
            }
        default: break
        }
        let ctx = context(cpu: cpu, event: event)
        if used {
            for i in modelsFor[ordinal] { wantingModels[i]._withUnsafeGuaranteedRef { $0.model.apply(event, in: ctx, emit: sink) } }
        }
        switch event.kind {
        case let .irqExit(kind, _):
            if let i = cpus[cpu].irqs.lastIndex(where: { $0.kind == kind }) {
                while cpus[cpu].irqs.count > i { popIRQ(cpu: cpu, at: ts, line: event.line) }
            }
        case let .contextSwitch(_, _, _, nextPid, nextComm):
            counts.contextSwitches += 1
            cpus[cpu].currentPid = nextPid
            cpus[cpu].currentComm = nextComm
        default: break
        }
    }

    /// An event no model uses still moves time and context forward: the trace's first and last
    /// timestamps, the CPU's start, and the IRQ instances its flags show.
    public func tick(cpu: Int32, pid: Int32, timestamp: UInt64, flags: TraceFlags, line: Int) {
        let c = Int(cpu)
        guard c >= 0 && c < ReplayEngine.maximumCPUs else { counts.cpuOutOfRange += 1; return }
        advance(cpu: c, pid: pid, timestamp: timestamp, flags: flags, line: line)
    }

    /// The line of the event being replayed (0 while `finish` closes what the trace end leaves open):
    /// the closing line of the windows emitted now.
    public private(set) var line = 0
    /// The timestamp of the event being replayed.
    public private(set) var timestamp: UInt64 = 0

    private func advance(cpu: Int, pid: Int32, timestamp ts: UInt64, flags: TraceFlags, line: Int) {
        limit.line = line
        self.line = line
        self.timestamp = ts
        if cpu >= cpus.count { cpus.append(contentsOf: repeatElement(CPUState(), count: cpu + 1 - cpus.count)) }
        if counts.firstTimestamp == nil { counts.firstTimestamp = ts }
        if ts < counts.lastTimestamp { counts.timestampsBackwards += 1 } else { counts.lastTimestamp = ts }
        if !cpus[cpu].seen || cpus[cpu].restartPending {
            if !cpus[cpu].seen { counts.cpusSeen += 1 }
            cpus[cpu].seen = true
            cpus[cpu].restartPending = false
            cpus[cpu].traceStart = ts
        }
        cpus[cpu].lastTimestamp = ts
        // Context: the flag column first (explicit irq events adjust it in `consume`).
        if flags.present { reconcile(cpu: cpu, flags: flags, pid: pid, at: ts, line: line) }
        // `common_pid` is always `current` (the interrupted task in IRQ context).
        cpus[cpu].currentPid = pid
    }

    private func context(cpu: Int, event: ProtEvent) -> ExecutionContext {
        // Field by field: a copy of the whole `CPUState` would retain and release its IRQ stack per event.
        let pid = event.pid
        let comm = event.comm != 0 ? event.comm : cpus[cpu].currentComm
        let traceStart = cpus[cpu].traceStart
        if let top = cpus[cpu].irqs.last {
            let kind: ContextKind = top.kind == .nmi ? .nmi : (top.kind == .hardirq ? .hardirq : .softirq)
            return ExecutionContext(cpu: Int32(cpu), pid: pid, comm: comm, kind: kind, instance: .irq(top.seq), cpuTraceStart: traceStart)
        }
        return ExecutionContext(cpu: Int32(cpu), pid: pid, comm: comm, kind: .task, instance: .task(pid), cpuTraceStart: traceStart)
    }

    /// Brings the CPU's IRQ stack in line with what the flags say the event ran in
    /// (`s` softirq, `h` hardirq, `H` hardirq inside softirq, `z`/`Z` NMI).
    private func reconcile(cpu: Int, flags: TraceFlags, pid: Int32, at ts: UInt64, line: Int) {
        @inline(__always) func required(_ kind: IRQKind) -> Bool {
            switch kind {
            case .softirq: return flags.inSoftirq
            case .hardirq: return flags.inHardirq
            case .nmi: return flags.inNMI
            }
        }
        // Pop instances the flags say we have left (innermost first).
        while let top = cpus[cpu].irqs.last, !required(top.kind) { popIRQ(cpu: cpu, at: ts, line: line) }
        // Push the ones the flags show and the stack lacks, outermost first.
        for kind in ReplayEngine.irqKindsOutermostFirst where required(kind) && !cpus[cpu].irqs.contains(where: { $0.kind == kind }) {
            if let top = cpus[cpu].irqs.last, top.kind > kind { continue }
            pushIRQ(cpu: cpu, kind: kind, explicit: false, at: ts, pid: pid)
        }
    }

    private static let irqKindsOutermostFirst: [IRQKind] = [.softirq, .hardirq, .nmi]

    private func pushIRQ(cpu: Int, kind: IRQKind, explicit: Bool, at ts: UInt64, pid: Int32) {
        guard cpus[cpu].irqs.count < ReplayEngine.maximumIRQDepth else {
            // The event runs in the innermost instance already tracked.
            limit.refuse("replay", "irq_depth", fixedLimit: ReplayEngine.maximumIRQDepth, noun: "nested irq instances on one CPU")
            return
        }
        irqSeq += 1
        cpus[cpu].irqs.append(IRQFrame(kind: kind, seq: irqSeq, explicit: explicit))
        // Field by field, as in `context`: a copy of the `CPUState` would retain its IRQ stack.
        let ckind: ContextKind = kind == .nmi ? .nmi : (kind == .hardirq ? .hardirq : .softirq)
        let ctx = ExecutionContext(cpu: Int32(cpu), pid: pid, comm: cpus[cpu].currentComm, kind: ckind,
                                   instance: .irq(irqSeq), cpuTraceStart: cpus[cpu].traceStart)
        for m in everyModel { m._withUnsafeGuaranteedRef { $0.model.contextStarted(ctx, at: ts, emit: sink) } }
    }

    private func popIRQ(cpu: Int, at ts: UInt64, line: Int) {
        guard let top = cpus[cpu].irqs.popLast() else { return }
        let kind: ContextKind = top.kind == .nmi ? .nmi : (top.kind == .hardirq ? .hardirq : .softirq)
        let ctx = ExecutionContext(cpu: Int32(cpu), pid: cpus[cpu].currentPid, comm: cpus[cpu].currentComm, kind: kind,
                                   instance: .irq(top.seq), cpuTraceStart: cpus[cpu].traceStart)
        for m in everyModel { m._withUnsafeGuaranteedRef { $0.model.contextEnded(ctx, at: ts, line: line, emit: sink) } }
    }

    public func lost(cpu: Int32, count: UInt64, line: Int) {
        let c = Int(cpu)
        let ts = c >= 0 && c < cpus.count ? cpus[c].lastTimestamp : counts.lastTimestamp
        for m in models { m.eventsLost(cpu: cpu, at: ts) }
        // What the CPU was running across the gap is unknown: IRQ instances are dropped.
        if c >= 0 && c < cpus.count { cpus[c].irqs.removeAll() }
    }

    public func bufferStarted(cpu: Int32, line: Int) {
        let c = Int(cpu)
        guard c >= 0 && c < ReplayEngine.maximumCPUs else { return }
        if c >= cpus.count { cpus.append(contentsOf: repeatElement(CPUState(), count: c + 1 - cpus.count)) }
        cpus[c].restartPending = true
    }

    /// Ends the replay: models close what is open at the last event's timestamp.
    public func finish() {
        line = 0
        for m in models { m.finish(at: counts.lastTimestamp, emit: sink) }
    }
}
