/// The text `protreplay probes` prints: probe definitions for another machine, the tracepoints to enable and a
/// ready `trace-cmd record` command line, generated from `CaptureCatalog` for one arch.
public struct ProbeScript: Sendable {
    public enum Format: String, CaseIterable, Sendable {
        /// Lines for `/sys/kernel/tracing/kprobe_events`.
        case kprobeEvents = "kprobe-events"
        /// `perf probe --add` commands.
        case perfProbe = "perf-probe"
        /// A shell script: `echo ... >> kprobe_events`, then `trace-cmd record`.
        case traceCmd = "trace-cmd"
    }

    public let abi: ArchABI
    public let selection: CaptureSelection
    public let offsets: StructOffsets?
    /// Functions the target kernel has (from `--btf`); nil when unknown.
    public let kernelFunctions: Set<String>?

    public init(abi: ArchABI, selection: CaptureSelection, offsets: StructOffsets? = nil, kernelFunctions: Set<String>? = nil) {
        self.abi = abi; self.selection = selection; self.offsets = offsets; self.kernelFunctions = kernelFunctions
    }

    /// The probes to print: those whose function the target kernel has, when that is known.
    public var probes: [CaptureProbe] {
        guard let kernelFunctions else { return selection.probes }
        return selection.probes.filter { kernelFunctions.contains($0.function) }
    }

    /// Probes left out because the target kernel's BTF has no such function.
    public var absentFromKernel: [CaptureProbe] {
        guard let kernelFunctions else { return [] }
        return selection.probes.filter { !kernelFunctions.contains($0.function) }
    }

    /// The `trace-cmd record` line: every probe event and tracepoint by name, global clock, 16 MB per CPU.
    public var traceCmdRecordLine: String {
        let events = probes.map { "\($0.group):\($0.event)" } + selection.tracepoints.map(\.description)
        return "trace-cmd record -C global -b 16384 " + events.map { "-e \($0)" }.joined(separator: " ") + " -- ./my-workload"
    }

    public func render(_ format: Format) -> String {
        var out: [String] = []
        let header = "# protreplay probes: arch \(abi.name), models \(selection.models.joined(separator: ","))"
            + (offsets == nil ? "; struct offsets: Debian 6.1 \(abi.is64Bit ? "LP64" : "ILP32") (pass --btf for your kernel's)" : "; struct offsets from BTF")
        out.append(header)
        if kernelFunctions == nil {
            out.append("# A function your kernel lacks (inline, renamed) is rejected when written; the others still load.")
        }
        for p in absentFromKernel { out.append("# not in this kernel's BTF: \(p.function) (\(p.group)/\(p.event))") }
        for (model, point) in selection.notInCatalog {
            out.append("# \(model) reads \(point), which protreplay's capture catalog does not install")
        }
        switch format {
        case .kprobeEvents:
            out.append(contentsOf: probes.map { $0.definition(for: abi, offsets: offsets) })
            out.append("# tracepoints to enable (echo 1 > events/SYSTEM/EVENT/enable):")
            out.append(contentsOf: selection.tracepoints.map { "# \($0)" })
            out.append("# " + traceCmdRecordLine)
        case .perfProbe:
            out.append("# raw fetchargs (registers, +OFFS(...), @SYM): no debuginfo needed; a perf that rejects them takes the kprobe-events form")
            for p in probes {
                let spec = "\(p.group):\(p.event)=\(p.function)\(p.isReturn ? "%return" : "") \(p.argumentList(for: abi, offsets: offsets))"
                out.append("perf probe --add '\(spec.trimmingTrailingSpace)'")
            }
            let events = probes.map { "\($0.group):\($0.event)" } + selection.tracepoints.map(\.description)
            out.append("perf record " + events.map { "-e \($0)" }.joined(separator: " ") + " -a -- ./my-workload")
        case .traceCmd:
            out.append("set -e")
            out.append("cd /sys/kernel/tracing")
            for p in probes { out.append("echo '\(p.definition(for: abi, offsets: offsets))' >> kprobe_events") }
            out.append(traceCmdRecordLine)
            let names: [String] = probes.map { $0.group + "/" + $0.event }
            if !names.isEmpty {
                let loop: String = "for e in " + names.joined(separator: " ") + "; do echo \"-:$e\" >> kprobe_events; done"
                out.append("# afterwards, remove the probes: " + loop)
            }
        }
        return out.joined(separator: "\n") + "\n"
    }
}

extension String {
    var trimmingTrailingSpace: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
