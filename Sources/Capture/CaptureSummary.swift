import EventModel
import Models
import Replay

/// What a finished recording can answer, in words: one headline (what this kernel offered), then per model
/// whether its essential events were recorded and what is missing (the requirement's own "without it").
///
///     no kprobes on this kernel (no kprobe_events): gup, kmap, wb, dmap probes unavailable; page faults, sched, irq recorded
///     highmem: cannot answer: no kmap_local grant is visible: fixmap windows cannot be measured
public enum CaptureSummary {
    public static func lines(_ r: Recorder.Result) -> [String] {
        var out: [String] = []
        let kinds = Dictionary(grouping: r.tracepoints, by: \.system).keys
        let recordedWords = ["exceptions": "page faults", "sched": "sched", "irq": "irq", "kmem": "page alloc/free"]
        let recorded = ["exceptions", "sched", "irq", "kmem"].filter(kinds.contains).compactMap { recordedWords[$0] }
        let unavailableGroups = orderedUnique(r.absent.map(\.group) + r.failed.map(\.0.group))
            .filter { g in !(r.loaded + r.existed).contains { $0.group == g } }
        if !r.hasKprobes {
            out.append("no kprobes on this kernel (no kprobe_events): \(unavailableGroups.joined(separator: ", ")) probes unavailable; "
                       + "\(recorded.joined(separator: ", ")) recorded")
        } else {
            out.append("\(r.loaded.count + r.existed.count) probes installed (\(r.existed.count) already defined, left in place), "
                       + "\(r.absent.count) not in this kernel, \(r.failed.count) rejected; \(r.tracepoints.count) tracepoints enabled; "
                       + (r.offsetsFromBTF ? "struct offsets from the kernel's BTF" : "no BTF: Debian 6.1 struct offsets"))
            for (p, why) in r.failed { out.append("  rejected: \(p.definition(for: ArchABI.named(r.arch) ?? .x86_64)): \(why)") }
        }
        if !r.missingTracepoints.isEmpty {
            out.append("tracepoints this kernel lacks: " + r.missingTracepoints.map(\.description).joined(separator: " "))
        }
        for (name, req) in ModelRegistry.all.map({ ($0.name, $0.requirements) }) where r.selection.models.contains(name) {
            let missing = req.needs.filter { !met($0, r) }
            let essential = missing.filter(\.essential)
            if let e = essential.first {
                out.append("\(name): cannot answer: \(e.withoutIt) (needs \(e.probes.map(\.description).joined(separator: " or ")))")
            } else if missing.isEmpty {
                out.append("\(name): every event it reads was recorded")
            } else {
                out.append("\(name): answers; missing: " + missing.map { $0.withoutIt }.joined(separator: "; "))
            }
        }
        let lost = r.lostPerCPU.reduce(0, +)
        if lost > 0 { out.append("LOST \(lost) events (ring-buffer overrun: raise --buffer-kb)") }
        return out
    }

    static func met(_ need: EventRequirement, _ r: Recorder.Result) -> Bool {
        let probes = r.loaded + r.existed
        return need.probes.contains { p in
            switch p {
            case let .kprobe(f): return probes.contains { $0.function == f && !$0.isReturn }
            case let .kretprobe(f): return probes.contains { $0.function == f && $0.isReturn }
            case let .tracepoint(t): return r.tracepoints.contains { $0.event == t }
            case let .tracepointPrefix(pre): return r.tracepoints.contains { $0.event.hasPrefix(pre) }
            }
        }
    }

    static func orderedUnique(_ a: [String]) -> [String] {
        var seen = Set<String>()
        return a.filter { seen.insert($0).inserted }
    }
}
