import ArgumentParser
import Capture
import Foundation

/// `protreplay record [-- CMD ARGS...]`: capture on this kernel with what it offers, then report.
struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record a trace on this kernel (kprobes and tracepoints the models need), then report on it.",
        discussion: """
        Records in a private tracefs instance (instances/protreplay-PID) and restores tracefs on exit, also on
        error, Ctrl-C and SIGTERM. Needs root. Without CMD, records until Ctrl-C or --duration.
        Examples:
          protreplay record -o t.dat -- dd if=/dev/zero of=f bs=1M count=16 conv=fsync
          protreplay record --model highmem --duration 10 -o idle.dat
        """)

    @Option(name: .long, help: "Model(s) to capture for: highmem, pks, s390pv, directmap, comma-separated, or auto (all).")
    var model: String = "auto"

    @Option(name: .shortAndLong, help: "Output file.")
    var output: String = "trace.dat"

    @Option(name: .long, help: "Stop after this many seconds (with CMD: CMD gets SIGTERM).")
    var duration: Double?

    @Option(name: .long, help: "Ring buffer per CPU, in KB.")
    var bufferKb: Int = 16384

    @Option(name: .long, help: "Output format: trace.dat (libtracecmd) or text (ftrace text).")
    var formatOut: String = "trace.dat"

    @Flag(name: .long, help: "Only record; do not print the report afterwards.")
    var noReport = false

    @Flag(name: .long, help: "No progress line and no capture summary on stderr.")
    var quiet = false

    @Argument(parsing: .postTerminator, help: "Command to run while recording.")
    var command: [String] = []

    func run() throws {
        var options = Recorder.Options()
        guard let fmt = Recorder.OutputFormat(rawValue: formatOut) else {
            throw ValidationError("--format-out must be trace.dat or text")
        }
        options.models = model.split(separator: ",").map(String.init)
        options.output = output; options.format = fmt; options.duration = duration
        options.bufferKB = bufferKb; options.command = command
        options.progress = !quiet && isatty(2) != 0
        let result: Recorder.Result
        do {
            result = try Recorder(options: options).run { fputs($0, stderr) }
        } catch {
            Output.fail("\(error)")
            throw ExitCode(2)
        }
        if !quiet {
            fputs("protreplay record: \(output): \(result.bytes) bytes of ring buffer in \(String(format: "%.1f", result.seconds)) s"
                  + " on \(result.kernel) (\(result.arch))\n", stderr)
            for line in CaptureSummary.lines(result) { fputs("  " + line + "\n", stderr) }
        }
        if !noReport {
            let report = try Report.parse([output, "--model", model] + (quiet ? ["--quiet"] : []))
            try report.run()
        }
        if let s = result.signal { throw ExitCode(128 + s) }
        if let status = result.commandStatus, status != 0 { throw ExitCode(status) }
    }
}
