import ArgumentParser
import EventModel
import TraceIngest
import Replay

/// Options shared by the subcommands that replay a trace.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Probe-map JSON that adds to or overrides the built-in rules (docs/probe-map.md).")
    var probeMap: String?

    @Option(name: .long, help: ArgumentHelp("Kernel symbols (/proc/kallsyms of the traced kernel) to name the bare addresses trace-cmd report prints without symbols.", valueName: "file"))
    var kallsyms: String?

    @Option(name: .long, help: "Architecture of the traced kernel: x86_64, i386, s390x (default: inferred from the trace).")
    var arch: String?

    @Option(name: .long, help: "struct page * of pfn 0 (vmemmap_base on x86_64, mem_map on i386), hex. Default: from the trace.")
    var memMapBase: String?

    @Option(name: .long, help: "sizeof(struct page) in bytes. Default: from the trace (64 on x86_64).")
    var structPageSize: UInt64?

    @Option(name: .long, help: "Direct-map base (page_offset_base on x86_64), hex.")
    var pageOffsetBase: String?

    @Option(name: .long, help: ArgumentHelp(
        "Read the input as this format instead of detecting it from content: trace.dat, perf.data, ftrace-text, trace-cmd-report, perf-script.",
        valueName: "format"))
    var formatIn: String?

    @Option(name: .long, help: ArgumentHelp(
        "Most entries each map of live replay state may hold (tasks, frames, pkmap slots, calls in flight, ...; docs/reliability.md). At the cap new keys are counted in state_cap_refusals and not modelled, with one warning on stderr.",
        valueName: "n"))
    var maxLiveEntries: Int = LiveStateLimit.defaultCap

    func validate() throws {
        guard maxLiveEntries >= 1 else { throw ValidationError("--max-live-entries must be at least 1") }
    }

    /// `--format-in`, parsed; nil means detect from content.
    func inputFormat() throws -> TraceFormat? {
        guard let f = formatIn else { return nil }
        guard let format = TraceFormat(optionName: f) else {
            throw ValidationError("--format-in must be one of \(TraceFormat.optionNames)")
        }
        return format
    }

    var fixesLayout: Bool { memMapBase != nil || structPageSize != nil }

    func profile() throws -> KernelProfile {
        var p = KernelProfile()
        if let a = arch {
            guard let arch = KernelProfile.Arch(rawValue: a) else {
                throw ValidationError("--arch must be one of x86_64, i386, s390x")
            }
            p = KernelProfile(arch: arch)
        }
        if let b = memMapBase { p.memMapBase = try parseHex(b, "--mem-map-base") }
        if let s = structPageSize { p.structPageSize = s }
        if let b = pageOffsetBase { p.pageOffsetBase = try parseHex(b, "--page-offset-base") }
        if p.memMapBase != nil && p.structPageSize == nil { p.structPageSize = p.arch == .i386 ? 40 : 64 }
        return p
    }

    private func parseHex(_ s: String, _ flag: String) throws -> UInt64 {
        var t = Substring(s)
        if t.hasPrefix("0x") || t.hasPrefix("0X") { t = t.dropFirst(2) }
        guard let v = UInt64(t, radix: 16) else { throw ValidationError("\(flag): '\(s)' is not a hex number") }
        return v
    }
}
