import ArgumentParser
import Capture
import Foundation

/// `protreplay probes`: the probe definitions, tracepoints and `trace-cmd record` line for another machine.
struct Probes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the kprobe definitions, tracepoints and a trace-cmd record line for capturing on another machine.",
        discussion: """
        Generated from the capture catalog the probe map reads, with the argument registers of --arch.
        Examples:
          protreplay probes --arch i386 --model highmem
          protreplay probes --arch s390x --model s390pv --format trace-cmd > capture.sh
          protreplay probes --btf /sys/kernel/btf/vmlinux --model auto
        """)

    @Option(help: "Target arch: \(ArchABI.all.map(\.name).joined(separator: ", ")) (default: this machine's).")
    var arch: String?

    @Option(help: "Target kernel version (leaves out functions known to be renamed or removed by then).")
    var kernel: String?

    @Option(name: .customLong("model"), help: "Model(s) to capture for, comma-separated, or auto (all).")
    var models: String = "auto"

    @Option(help: "The target kernel's BTF (/sys/kernel/btf/vmlinux): struct offsets and which functions exist.")
    var btf: String?

    @Option(help: "kprobe-events, perf-probe or trace-cmd.")
    var format: String = "kprobe-events"

    func run() throws {
        do {
            let abi = try arch.map { try ArchABI.named($0).orThrow(CaptureError.unknownArch($0)) } ?? KernelHost.abi()
            guard let fmt = ProbeScript.Format(rawValue: format) else {
                throw ValidationError("--format must be one of " + ProbeScript.Format.allCases.map(\.rawValue).joined(separator: ", "))
            }
            let version = kernel.flatMap(KernelVersion.init(parsing:))
            let selection = try CaptureSelection(models: models.split(separator: ",").map(String.init), kernel: version)
            var offsets: StructOffsets?, functions: Set<String>?
            if let btf {
                let types = try BTF(path: btf)
                offsets = types.structOffsets(for: StructMember.all)
                functions = types.functionNames
            }
            print(ProbeScript(abi: abi, selection: selection, offsets: offsets, kernelFunctions: functions).render(fmt), terminator: "")
        } catch let e as ValidationError {
            throw e
        } catch {
            Output.fail("\(error)")
            throw ExitCode(2)
        }
    }
}

extension Optional {
    func orThrow(_ e: @autoclosure () -> Error) throws -> Wrapped {
        guard let v = self else { throw e() }
        return v
    }
}
