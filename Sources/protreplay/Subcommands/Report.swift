import ArgumentParser
import TraceIngest
import Reports
#if canImport(Glibc)
import Glibc
#endif

/// `protreplay report TRACE`: replay a trace through a model and print what it exposed.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a trace and report exposure windows, unprotected accesses and anomalies.")

    @Argument(help: "Trace file (ftrace text, optionally LZ4-framed), or - for stdin.")
    var trace: String

    @Option(name: .long, help: "Output format: text or json.")
    var format: String = "text"

    @Option(name: .shortAndLong, help: "Write the report to FILE instead of stdout.")
    var output: String?

    @Option(name: .long, help: "Write one CSV row per exposure window to FILE.")
    var windows: String?

    @Flag(name: .long, help: "Stop with an error at the first malformed line (default: count, report the first few, go on).")
    var strict = false

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var selection: ModelSelection

    func validate() throws {
        guard ["text", "json"].contains(format) else { throw ValidationError("--format must be text or json") }
    }

    func run() throws {
        do {
            let report = try makeReport()
            let text = format == "json" ? JSONReport.render(report) : TextReport.render(report)
            try Output.write(text, to: output)
        } catch let e as ValidationError {
            throw e
        } catch {
            Output.fail("\(error)")
            throw ExitCode(2)
        }
    }

    /// Reads the trace and folds it into a report (also used by the golden scenario tests).
    func makeReport() throws -> TraceReport {
        let pipeline = try Pipeline(path: trace, options: modelOptions, strict: strict, selection: selection)
        var csv: WindowCSVWriter?
        if let path = windows {
            let w = try WindowCSVWriter(path: path, comms: pipeline.comms, symbols: pipeline.symbols)
            csv = w
            pipeline.builder.windowObserver = { w.write($0) }
        }
        try pipeline.run()
        csv?.flush()
        return pipeline.report()
    }
}

enum Output {
    static func write(_ text: String, to path: String?) throws {
        guard let path else { print(text, terminator: ""); return }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { throw InputError.readFailed(path: path, reason: "write: " + String(cString: strerror(errno))) }
            off += n
        }
    }

    static func fail(_ message: String) {
        var err = StandardError()
        print("protreplay: error: \(message)", to: &err)
    }
}

struct StandardError: TextOutputStream {
    mutating func write(_ s: String) { fputs(s, stderr) }
}
