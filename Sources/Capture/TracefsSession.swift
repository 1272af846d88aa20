import CTraceCmdWrite
import Foundation

/// A recording session in tracefs that leaves tracefs as it found it.
///
/// Events are enabled in a private instance (`instances/protreplay-<pid>`), so the top level's `set_event`,
/// `tracing_on`, `current_tracer` and buffers are never touched. The global things a capture changes are
/// `kprobe_events` (the session adds only probes that do not exist yet, and removes exactly those) and
/// `saved_cmdlines_size` (raised, written back). `close()`
/// undoes everything (instance first, since a kprobe enabled anywhere cannot be removed) and is idempotent;
/// the recorder calls it on success, on error and after SIGINT/SIGTERM.
public final class TracefsSession {
    public let tracingDir: String
    public let instanceName: String
    private var instance: OpaquePointer?
    /// `group/event` of the kprobes this session created (removed on close).
    public private(set) var addedProbes: [String] = []
    /// Whether this kernel has kprobe events at all (`kprobe_events` exists: CONFIG_KPROBE_EVENTS).
    public let hasKprobes: Bool
    /// Top-level files changed, with the value to write back on close.
    private var topLevelRestores: [(file: String, original: String)] = []
    private var closed = false

    /// Creates the instance. - Throws: `CaptureError.noTracefs` without a mounted, writable tracefs.
    public init(name: String = "protreplay-\(getpid())") throws {
        guard let dir = tracefs_tracing_dir(), access(dir, W_OK) == 0 else { throw CaptureError.noTracefs }
        tracingDir = String(cString: dir)
        instanceName = name
        hasKprobes = tracefs_file_exists(nil, "kprobe_events")
        if tracefs_instance_exists(name) {
            throw CaptureError.tracefs("instance \(name) exists already (another protreplay record?)")
        }
        guard let inst = tracefs_instance_create(name) else {
            throw CaptureError.tracefs("cannot create instance \(name): \(String(cString: strerror(errno)))")
        }
        instance = inst
        // A fresh instance records nothing until told; keep it off until start().
        tracefs_trace_off(inst)
    }

    deinit { close() }

    /// The instance handle (for per-CPU readers).
    var handle: OpaquePointer? { instance }

    /// The directory of the instance (`/sys/kernel/tracing/instances/protreplay-123`).
    public var instanceDir: String { tracingDir + "/instances/" + instanceName }

    /// Writes an instance file (`trace_clock`, `buffer_size_kb`, `events/sched/sched_switch/enable`).
    @discardableResult
    public func write(_ file: String, _ value: String) -> Bool {
        tracefs_instance_file_write(instance, file, value) >= 0
    }

    public func read(_ file: String) -> String? {
        var size: Int32 = 0
        guard let p = tracefs_instance_file_read(instance, file, &size) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Whether `system:event` exists (tracepoints and kprobe events alike).
    public func eventExists(_ system: String, _ event: String) -> Bool {
        tracefs_dir_exists(nil, "events/\(system)/\(event)")
    }

    public func enable(_ system: String, _ event: String) -> Bool {
        write("events/\(system)/\(event)/enable", "1")
    }

    public enum ProbeOutcome: Equatable { case added, existed, failed(String) }

    /// Adds a kprobe definition to the global `kprobe_events`, unless an event of that name exists already
    /// (then it is used as it is and left in place).
    public func addKprobe(group: String, event: String, definition: String) -> ProbeOutcome {
        guard hasKprobes else { return .failed("no kprobe_events") }
        if eventExists(group, event) { return .existed }
        tracefs_error_clear(nil)
        if tracefs_instance_file_append(nil, "kprobe_events", definition + "\n") < 0 {
            let why = String(cString: strerror(errno))
            var detail = ""
            if let e = tracefs_error_last(nil) { detail = String(cString: e).split(separator: "\n").first.map { ": " + $0 } ?? ""; free(e) }
            return .failed(why + detail)
        }
        addedProbes.append(group + "/" + event)
        return .added
    }

    /// Raises a numeric top-level setting to at least `value` (`saved_cmdlines_size`: with the default 128 entries
    /// a busy machine evicts the names of short-lived tasks before the trace is written, and they print as
    /// `<...>`); the original is written back on close.
    @discardableResult
    public func raiseTopLevel(_ file: String, atLeast value: Int) -> Bool {
        var size: Int32 = 0
        guard let p = tracefs_instance_file_read(nil, file, &size) else { return false }
        let original = String(cString: p).trimmingCharacters(in: .whitespacesAndNewlines)
        free(p)
        guard let current = Int(original), current < value else { return true }
        guard tracefs_instance_file_write(nil, file, String(value)) >= 0 else { return false }
        topLevelRestores.append((file, original))
        return true
    }

    public func setBufferSize(kb: Int) -> Bool { tracefs_instance_set_buffer_size(instance, kb, -1) >= 0 }

    public func traceOn() { tracefs_trace_on(instance) }
    public func traceOff() { tracefs_trace_off(instance) }

    /// Number of per-CPU buffers of the instance (possible CPUs).
    public var cpuCount: Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: instanceDir + "/per_cpu")) ?? []
        return entries.filter { $0.hasPrefix("cpu") }.count
    }

    /// `overrun` + `dropped events` per CPU after a run (all zero means nothing was lost).
    public func lostPerCPU() -> [Int] {
        (0..<cpuCount).map { cpu in
            guard let s = read("per_cpu/cpu\(cpu)/stats") else { return 0 }
            var lost = 0
            for line in s.split(separator: "\n") where line.hasPrefix("overrun:") || line.hasPrefix("dropped events:") {
                lost += Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
            }
            return lost
        }
    }

    /// Stops recording, destroys the instance (which disables every event it enabled), then removes the kprobes
    /// this session added. Safe to call more than once.
    public func close() {
        guard !closed else { return }
        closed = true
        if let inst = instance {
            tracefs_trace_off(inst)
            tracefs_instance_destroy(inst)
            tracefs_instance_free(inst)
            instance = nil
        }
        for name in addedProbes.reversed() {
            tracefs_instance_file_append(nil, "kprobe_events", "-:" + name + "\n")
        }
        addedProbes.removeAll()
        for (file, original) in topLevelRestores.reversed() { tracefs_instance_file_write(nil, file, original) }
        topLevelRestores.removeAll()
    }
}
