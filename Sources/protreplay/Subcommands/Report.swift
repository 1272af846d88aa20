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

    @Argument(help: "Trace: ftrace text, trace.dat, perf.data, perf script or trace-cmd report text (detected by content, each optionally LZ4-framed), or - for stdin.")
    var trace: String

    @Option(name: .long, help: "Output format: text, json, or html (one self-contained page; use with -o).")
    var format: String = "text"

    @Option(name: .shortAndLong, help: "Write the report to FILE instead of stdout.")
    var output: String?

    @Option(name: .long, help: "Write one CSV row per exposure window to FILE.")
    var windows: String?

    @Option(name: .long, help: "Write one CSV row per unprotected access to FILE.")
    var accesses: String?

    @Option(name: .customLong("fail-if"), help: ArgumentHelp(
        "CI gate: exit with status 3 and a one-line reason when CONDITION holds, e.g. 'unprotected_accesses.total>0' or 'exposure.effective.total_ns>+10%' (relative needs --baseline). Repeatable; grammar in docs/fleet.md.",
        valueName: "condition"))
    var failIf: [String] = []

    @Option(name: .long, help: "Saved JSON report that relative --fail-if thresholds compare against.")
    var baseline: String?

    @Flag(name: .long, help: "No progress line on stderr (it is shown only when stderr is a terminal).")
    var quiet = false

    @Flag(name: .long, help: "Stop with an error at the first malformed line (default: count, report the first few, go on).")
    var strict = false

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var selection: ModelSelection

    func validate() throws {
        guard ["text", "json", "html"].contains(format) else { throw ValidationError("--format must be text, json or html") }
        for f in failIf {
            do {
                let t = try Threshold(f)
                if t.isRelative && baseline == nil { throw ValidationError("--fail-if '\(f)' is relative: give --baseline FILE.json") }
            } catch let e as Threshold.ParseError { throw ValidationError(e.description) }
        }
    }

    func run() throws {
        let saved: SavedReport
        do {
            let report = try makeReport()
            saved = SavedReport(report)
            let text: String
            switch format {
            case "json": text = saved.json
            case "html": text = HTMLReport.render(saved)
            default: text = TextReport.render(report)
            }
            try Output.write(text, to: output)
        } catch let e as ValidationError {
            throw e
        } catch {
            Output.fail("\(error)")
            throw ExitCode(2)
        }
        try Gate.check(failIf, current: saved.document, baselinePath: baseline)
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
        var accessCSV: AccessCSVWriter?
        if let path = accesses {
            let w = try AccessCSVWriter(path: path, comms: pipeline.comms, symbols: pipeline.symbols)
            accessCSV = w
            pipeline.builder.accessObserver = { w.write($0) }
        }
        pipeline.builder.collectTimeline = format == "html"
        let progress = pipeline.showProgress(quiet: quiet, label: "protreplay: reading \(trace)")
        defer { progress?.finish() }
        try pipeline.run()
        csv?.flush()
        accessCSV?.flush()
        return pipeline.report()
    }
}

/// `--fail-if`: evaluates the conditions, prints one line per tripped condition, exits 3 if any tripped.
enum Gate {
    static let exitStatus: Int32 = 3

    static func check(_ conditions: [String], current: JSONValue, baselinePath: String?, label: String? = nil) throws {
        guard !conditions.isEmpty else { return }
        var baseline: JSONValue?
        if let b = baselinePath {
            do { baseline = try SavedReport(text: try Output.read(b), source: b).document } catch {
                Output.fail("--baseline: \(error)")
                throw ExitCode(2)
            }
        }
        try check(conditions, pairs: [(label, current)], baseline: baseline)
    }

    /// Checks every (label, document) against the baseline; prints the reasons; exits 3 if any tripped.
    static func check(_ conditions: [String], pairs: [(String?, JSONValue)], baseline: JSONValue?) throws {
        var reasons: [String] = []
        do {
            for c in conditions {
                let t = try Threshold(c)
                for (label, doc) in pairs { if let r = try t.check(doc, baseline: baseline, label: label) { reasons.append(r) } }
            }
        } catch {
            Output.fail("\(error)")
            throw ExitCode(2)
        }
        guard !reasons.isEmpty else { return }
        var err = StandardError()
        for r in reasons { print("protreplay: \(r)", to: &err) }
        throw ExitCode(exitStatus)
    }
}

enum Output {
    /// Reads a whole text file.
    static func read(_ path: String) throws -> String {
        guard let f = fopen(path, "rb") else { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: buf[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

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
