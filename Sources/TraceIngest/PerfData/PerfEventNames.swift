/// The name perf gives an event from its `perf_event_attr` alone (tools/perf/util/evsel.c
/// `evsel__name`), for files that carry no `HEADER_EVENT_DESC` name: `cycles`, `cpu-clock:u`,
/// `L1-dcache-load-misses`, `r3c`, `mem:0x1000:rw`.
enum PerfEventNames {
    static let hardware = ["cycles", "instructions", "cache-references", "cache-misses", "branches", "branch-misses",
                           "bus-cycles", "stalled-cycles-frontend", "stalled-cycles-backend", "ref-cycles"]
    static let software = ["cpu-clock", "task-clock", "page-faults", "context-switches", "cpu-migrations", "minor-faults",
                           "major-faults", "alignment-faults", "emulation-faults", "dummy", "bpf-output", "cgroup-switches"]
    static let cacheTypes = ["L1-dcache", "L1-icache", "LLC", "dTLB", "iTLB", "branch", "node"]
    static let cacheOps = [("load", "loads"), ("store", "stores"), ("prefetch", "prefetches")]

    /// - Parameter attr: the attribute's first bytes (type at 0, config at 8, flags at 40, bp_type at
    ///   52, bp_addr at 56); shorter input gives `unknown`.
    static func name(_ attr: UnsafeRawBufferPointer) -> String {
        guard attr.count >= 64 else { return "unknown" }
        let type = attr.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
        let config = attr.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let flags = attr.loadUnaligned(fromByteOffset: 40, as: UInt64.self)
        var base: String
        switch type {
        case 0: base = config < UInt64(hardware.count) ? hardware[Int(config)] : "unknown-hardware"
        case 1: base = config < UInt64(software.count) ? software[Int(config)] : "unknown-software"
        case 3:
            let t = Int(config & 0xff), op = Int((config >> 8) & 0xff), result = Int((config >> 16) & 0xff)
            guard t < cacheTypes.count, op < cacheOps.count, result < 2 else { base = "unknown-ext-hardware-cache-type"; break }
            base = result == 0 ? "\(cacheTypes[t])-\(cacheOps[op].1)" : "\(cacheTypes[t])-\(cacheOps[op].0)-misses"
        case 4: base = "r" + String(config, radix: 16)
        case 5:
            let bpType = attr.loadUnaligned(fromByteOffset: 52, as: UInt32.self)
            let addr = attr.loadUnaligned(fromByteOffset: 56, as: UInt64.self)
            var rwx = ""
            if bpType & 1 != 0 { rwx += "r" }
            if bpType & 2 != 0 { rwx += "w" }
            if bpType & 4 != 0 { rwx += "x" }
            return "mem:0x" + String(addr, radix: 16) + ":" + rwx
        case 2: return "tracepoint-\(config)"
        default: return "unknown attr type: \(type)"
        }
        // Modifiers (evsel__add_modifiers): which contexts are counted, then the precise level.
        let excludeUser = flags & (1 << 4) != 0, excludeKernel = flags & (1 << 5) != 0, excludeHV = flags & (1 << 6) != 0
        let precise = Int((flags >> 15) & 3)
        var mods = ""
        if excludeUser || excludeKernel || excludeHV {
            if !excludeKernel { mods += "k" }
            if !excludeUser { mods += "u" }
            if !excludeHV { mods += "h" }
        }
        mods += String(repeating: "p", count: precise)
        if !mods.isEmpty { base += ":" + mods }
        return base
    }
}
