import EventModel
import Models
import Replay

/// A tracepoint to enable: `exceptions:page_fault_user`.
public struct Tracepoint: Hashable, Sendable, CustomStringConvertible {
    public let system: String, event: String
    public init(_ system: String, _ event: String) { self.system = system; self.event = event }
    public var description: String { system + ":" + event }
}

/// What a capture for some models needs: the catalog's kprobes whose functions the models' requirements
/// name (plus the context probes tagged for them), and their tracepoints plus the context every replay uses.
public struct CaptureSelection: Sendable {
    public let models: [String]
    public let probes: [CaptureProbe]
    public let tracepoints: [Tracepoint]
    /// Requirements none of whose kprobes the catalog has (the first is named; said rather than dropped silently).
    public let notInCatalog: [(model: String, probe: ProbePoint)]

    /// The models `--model` may name (`auto`: all of them).
    public static var modelNames: [String] { ModelRegistry.names }

    /// The system of every tracepoint a requirement names (requirements give bare event names).
    public static let tracepointSystems: [String: String] = [
        "sched_switch": "sched", "sched_migrate_task": "sched", "sched_process_fork": "sched", "sched_process_exit": "sched",
        "sched_process_exec": "sched", "sched_process_free": "sched", "sched_wakeup": "sched",
        "irq_handler_entry": "irq", "irq_handler_exit": "irq", "softirq_entry": "irq", "softirq_exit": "irq",
        "page_fault_user": "exceptions", "page_fault_kernel": "exceptions",
        "mm_page_alloc": "kmem", "mm_page_free": "kmem", "mm_page_free_batched": "kmem",
    ]

    /// Recorded for every model: who runs where, faults, the page allocator, and the marker writes.
    public static let contextTracepoints: [Tracepoint] = [
        .init("sched", "sched_switch"), .init("sched", "sched_wakeup"), .init("sched", "sched_migrate_task"),
        .init("sched", "sched_process_fork"), .init("sched", "sched_process_exec"), .init("sched", "sched_process_exit"),
        .init("irq", "irq_handler_entry"), .init("irq", "irq_handler_exit"), .init("irq", "softirq_entry"), .init("irq", "softirq_exit"),
        .init("exceptions", "page_fault_user"), .init("exceptions", "page_fault_kernel"),
        .init("kmem", "mm_page_alloc"), .init("kmem", "mm_page_free"),
    ]

    /// - Parameters:
    ///   - models: model names, or `["auto"]` for all.
    ///   - kernel: leave out probes on functions known not to exist in this version.
    public init(models requested: [String], kernel: KernelVersion? = nil) throws {
        let known = Self.modelNames
        let names = requested.isEmpty || requested.contains("auto") ? known : requested
        for n in names where !known.contains(n) {
            throw CaptureError.unknownModel(n, known: known)
        }
        models = names
        var functions: [String: Set<Bool>] = [:]   // function -> {isReturn} the requirements name
        var tps: [Tracepoint] = Self.contextTracepoints
        var missing: [(String, ProbePoint)] = []
        for (name, req) in ModelRegistry.all.map({ ($0.name, $0.requirements) }) where names.contains(name) {
            let points = req.needs.flatMap(\.probes) + req.mechanism
            for p in points {
                switch p {
                case let .kprobe(f): functions[f, default: []].insert(false)
                case let .kretprobe(f): functions[f, default: []].insert(true)
                case let .tracepoint(t):
                    if let sys = Self.tracepointSystems[t] {
                        if !tps.contains(Tracepoint(sys, t)) { tps.append(Tracepoint(sys, t)) }
                    } else if !missing.contains(where: { $0.1 == p }) { missing.append((name, p)) }
                case .tracepointPrefix:
                    // sys_enter_*/sys_exit_* (PKS --context-end return-to-user): every syscall is too costly to
                    // record by default; page_fault_user is recorded and gives returns to user mode too.
                    if !missing.contains(where: { $0.1 == p }) { missing.append((name, p)) }
                }
            }
            // A need none of whose kprobes the catalog has (alternatives count: kmap_flush_unused or __kmap_flush_unused).
            for points in req.needs.map(\.probes) + [req.mechanism] {
                let kprobes = points.filter { if case .kprobe = $0 { return true }; if case .kretprobe = $0 { return true }; return false }
                let covered = kprobes.contains { p in
                    CaptureCatalog.probes.contains { c in
                        switch p {
                        case let .kprobe(f): return c.function == f && !c.isReturn
                        case let .kretprobe(f): return c.function == f && c.isReturn
                        default: return false
                        }
                    }
                }
                if !kprobes.isEmpty && !covered && !kprobes.allSatisfy({ k in missing.contains { $0.1 == k } }) {
                    missing.append((name, kprobes[0]))
                }
            }
        }
        // A named function brings all its catalog probes (entry and return): the models read both sides.
        probes = CaptureCatalog.probes.filter { p in
            (functions[p.function] != nil || !p.alsoFor.isDisjoint(with: names)) && p.exists(in: kernel)
        }
        tracepoints = tps
        notInCatalog = missing
    }

    /// The kprobe groups (for `trace-cmd record -e GROUP`): enabling one event at a time is safer, since a
    /// group-wide `events/s390/enable` would also switch on the kernel's own `s390:*` tracepoints.
    public var probeEvents: [String] { probes.map { $0.group + ":" + $0.event } }
}

/// Errors of the capture layer, worded for the user.
public enum CaptureError: Error, CustomStringConvertible {
    case unknownModel(String, known: [String])
    case unknownArch(String)
    case noTracefs
    case tracefs(String)
    case output(String)
    case command(String)

    public var description: String {
        switch self {
        case let .unknownModel(m, known): return "unknown model '\(m)' (known: \(known.joined(separator: ", ")), auto)"
        case let .unknownArch(a):
            return "unknown arch '\(a)' (known: \(ArchABI.all.map(\.name).joined(separator: ", ")))"
        case .noTracefs: return "tracefs is not mounted or not accessible (need root: mount -t tracefs nodev /sys/kernel/tracing)"
        case let .tracefs(s): return "tracefs: " + s
        case let .output(s): return "output: " + s
        case let .command(s): return "command: " + s
        }
    }
}
