import CTraceCmdWrite
import Foundation

/// Set by SIGINT/SIGTERM/SIGHUP; the recording loop polls it, stops, and restores tracefs.
nonisolated(unsafe) private var stopSignal: Int32 = 0

/// `protreplay record`: installs what the chosen models need on this kernel, records in a private tracefs
/// instance while CMD runs (or until Ctrl-C or `duration`), streams the per-CPU buffers to a trace.dat (through
/// libtracecmd) or ftrace text, and restores tracefs on every path out.
public struct Recorder {
    public enum OutputFormat: String, Sendable { case traceDat = "trace.dat", text }

    public struct Options: Sendable {
        public var models: [String] = ["auto"]
        public var output = "trace.dat"
        public var format: OutputFormat = .traceDat
        public var duration: Double?
        public var bufferKB = 16384
        public var command: [String] = []
        public var progress = false
        public init() {}
    }

    /// What a recording installed, recorded and lost.
    public struct Result: Sendable {
        public var kernel = "", arch = ""
        public var hasKprobes = false
        /// Struct offsets came from /sys/kernel/btf/vmlinux (else the built-in Debian 6.1 table).
        public var offsetsFromBTF = false
        public var selection: CaptureSelection
        public var loaded: [CaptureProbe] = [], existed: [CaptureProbe] = []
        public var absent: [CaptureProbe] = [], failed: [(CaptureProbe, String)] = []
        public var tracepoints: [Tracepoint] = [], missingTracepoints: [Tracepoint] = []
        public var bytes = 0
        public var lostPerCPU: [Int] = []
        /// The signal that stopped the recording (SIGINT, SIGTERM), if one did.
        public var signal: Int32?
        /// CMD's exit status (or 128+signal).
        public var commandStatus: Int32?
        public var seconds = 0.0
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    /// Records. `log` gets progress and setup messages (stderr).
    public func run(log: (String) -> Void) throws -> Result {
        let abi = try KernelHost.abi()
        let (_, release) = KernelHost.uname()
        let selection = try CaptureSelection(models: options.models, kernel: KernelVersion(parsing: release))
        var result = Result(selection: selection)
        result.kernel = release; result.arch = abi.name

        let session = try TracefsSession()
        Self.installSignalHandlers()
        defer { session.close(); Self.restoreSignalHandlers() }
        result.hasKprobes = session.hasKprobes

        // Struct offsets from this kernel's BTF when it has one (else Debian 6.1's layout, ArchABI's width).
        let offsets = (try? BTF(path: "/sys/kernel/btf/vmlinux")).map { $0.structOffsets(for: StructMember.all) }
        result.offsetsFromBTF = offsets != nil
        // Probes: only those whose function this kernel has; the rest are reported absent.
        if session.hasKprobes {
            let functions = KernelHost.probeableFunctions(tracingDir: session.tracingDir)
            for p in selection.probes {
                guard functions.contains(p.function) else { result.absent.append(p); continue }
                var outcome = session.addKprobe(group: p.group, event: p.event, definition: p.definition(for: abi, offsets: offsets))
                if case .failed = outcome, p.readsSymbols {
                    // Kernels without CONFIG_KALLSYMS_ALL reject @SYM fetchargs: the probe without them still
                    // gives the call (the pfn then comes from calibration, docs/capturing.md).
                    outcome = session.addKprobe(group: p.group, event: p.event, definition: p.definition(for: abi, offsets: offsets, withoutSymbols: true))
                }
                switch outcome {
                case .added: result.loaded.append(p)
                case .existed: result.existed.append(p)
                case let .failed(why): result.failed.append((p, why))
                }
            }
            for p in result.loaded + result.existed where !session.enable(p.group, p.event) {
                result.failed.append((p, "cannot enable"))
            }
            result.loaded.removeAll { p in result.failed.contains { $0.0 == p } }
            result.existed.removeAll { p in result.failed.contains { $0.0 == p } }
        } else {
            result.absent = selection.probes
        }
        for t in selection.tracepoints {
            if session.eventExists(t.system, t.event) && session.enable(t.system, t.event) {
                result.tracepoints.append(t)
            } else {
                result.missingTracepoints.append(t)
            }
        }
        // The clock every CPU agrees on, and room for the names of short-lived tasks.
        session.write("trace_clock", "global")
        session.raiseTopLevel("saved_cmdlines_size", atLeast: 4096)
        if !session.setBufferSize(kb: options.bufferKB) {
            log("warning: cannot set buffer_size_kb to \(options.bufferKB)")
        }

        let sink: CaptureSink = options.format == .text
            ? try TextSink(session: session, output: options.output)
            : try TraceDatSink(session: session, output: options.output)
        defer { sink.discard() }

        let start = Date()
        session.traceOn()
        var child: pid_t = 0
        if !options.command.isEmpty {
            child = try Self.spawn(options.command)
        }
        var lastProgress = Date.distantPast
        var childStatus: Int32?
        var termSent: Date?
        while true {
            let moved = try sink.poll()
            result.bytes = sink.bytes
            if child > 0 && childStatus == nil {
                var st: Int32 = 0
                if waitpid(child, &st, WNOHANG) == child {
                    childStatus = (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
                }
            }
            if childStatus != nil { break }
            if stopSignal != 0 {
                if child == 0 { break }
                // CMD got SIGINT from the terminal as well; a SIGTERM sent to us alone is passed on.
                if termSent == nil { kill(child, stopSignal == SIGINT ? SIGINT : SIGTERM); termSent = Date() }
                else if Date().timeIntervalSince(termSent!) > 3 { kill(child, SIGKILL) }
            }
            if let d = options.duration, Date().timeIntervalSince(start) >= d {
                if child == 0 { break }
                if termSent == nil { kill(child, SIGTERM); termSent = Date() }
            }
            if options.progress && Date().timeIntervalSince(lastProgress) > 0.5 {
                lastProgress = Date()
                log(String(format: "\rrecording: %.1f s, %.1f MB", Date().timeIntervalSince(start), Double(sink.bytes) / 1e6))
            }
            if !moved { usleep(50_000) }
        }
        session.traceOff()
        try sink.finish()
        result.bytes = sink.bytes
        result.seconds = Date().timeIntervalSince(start)
        result.commandStatus = childStatus
        result.signal = stopSignal == 0 ? nil : stopSignal
        result.lostPerCPU = session.lostPerCPU()
        if options.progress { log("\n") }
        return result
    }

    static func spawn(_ argv: [String]) throws -> pid_t {
        var pid: pid_t = 0
        let cargs = argv.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        let rc = posix_spawnp(&pid, argv[0], nil, nil, cargs, environ)
        guard rc == 0 else { throw CaptureError.command("\(argv[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    static func installSignalHandlers() {
        stopSignal = 0
        for s in [SIGINT, SIGTERM, SIGHUP] {
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { stopSignal = $0 }
            sigemptyset(&sa.sa_mask)
            sigaction(s, &sa, nil)
        }
    }

    static func restoreSignalHandlers() {
        for s in [SIGINT, SIGTERM, SIGHUP] { signal(s, SIG_DFL) }
    }
}

/// Where the per-CPU buffers go while recording.
protocol CaptureSink: AnyObject {
    /// Moves what is ready; true if anything moved.
    func poll() throws -> Bool
    /// Drains the rest and writes the output file.
    func finish() throws
    /// Removes temporary files (after finish, or on error).
    func discard()
    var bytes: Int { get }
}

/// trace.dat: per-CPU raw sub-buffers (`per_cpu/cpuN/trace_pipe_raw`) streamed to temporary files beside the
/// output, then written with libtracecmd (headers, event formats, kallsyms, printk formats, cmdlines, CPU data),
/// the calls `trace-cmd record` makes.
final class TraceDatSink: CaptureSink {
    let output: String
    var readers: [OpaquePointer] = []
    var files: [String] = []
    var fds: [Int32] = []
    var buffer: UnsafeMutableRawPointer
    var bytes = 0

    init(session: TracefsSession, output: String) throws {
        self.output = output
        buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
        for cpu in 0..<session.cpuCount {
            guard let r = tracefs_cpu_open(session.handle, Int32(cpu), true) else { continue }
            let path = output + ".cpu\(cpu)"
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0 else {
                tracefs_cpu_close(r)
                throw CaptureError.output("\(path): \(String(cString: strerror(errno)))")
            }
            readers.append(r); files.append(path); fds.append(fd)
        }
        guard !readers.isEmpty else { throw CaptureError.tracefs("cannot open any per_cpu/cpuN/trace_pipe_raw") }
        let size = Int(tracefs_cpu_read_size(readers[0]))
        if size > 1 << 16 { buffer.deallocate(); buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16) }
    }

    func poll() throws -> Bool {
        var moved = false
        for (i, r) in readers.enumerated() {
            // Through a pipe with splice: only full sub-buffers move (a plain read would hand over every
            // partly filled page, mostly empty, at each poll); flush() takes the partial ones at the end.
            let n = tracefs_cpu_buffered_read(r, buffer, true)
            if n > 0 { try writeAll(fds[i], Int(n)); moved = true }
        }
        return moved
    }

    private func writeAll(_ fd: Int32, _ n: Int) throws {
        var off = 0
        while off < n {
            let w = write(fd, buffer + off, n - off)
            if w < 0 { if errno == EINTR { continue }; throw CaptureError.output(String(cString: strerror(errno))) }
            off += w
        }
        bytes += n
    }

    func finish() throws {
        for (i, r) in readers.enumerated() {
            while true {
                let n = tracefs_cpu_flush(r, buffer)
                if n <= 0 { break }
                try writeAll(fds[i], Int(n))
            }
            tracefs_cpu_close(r)
            close(fds[i])
        }
        readers.removeAll(); fds.removeAll()
        guard let out = tracecmd_output_create(output) else {
            throw CaptureError.output("\(output): cannot create (\(String(cString: strerror(errno))))")
        }
        tracecmd_set_quiet(out, true)
        // The instance records with the global clock; without this the file would say the top level's.
        tracecmd_set_out_clock(out, "global")
        var ok = tracecmd_output_write_headers(out, nil) == 0
        ok = ok && tracecmd_write_cmdlines(out) == 0
        ok = ok && tracecmd_write_cpus(out, Int32(files.count)) == 0
        tracecmd_add_option(out, UInt16(PROTREPLAY_TRACECMD_OPTION_TRACECLOCK), 0, nil)
        let u = KernelHost.uname()
        // As `trace-cmd record` writes it: sysname release version machine (`trace-cmd report --uname`).
        let uname = "Linux \(u.release) \(KernelHost.kernelVersionString()) \(u.machine)"
        _ = uname.withCString { tracecmd_add_option(out, UInt16(PROTREPLAY_TRACECMD_OPTION_UNAME), Int32(strlen($0) + 1), $0) }
        ok = ok && tracecmd_write_options(out) == 0
        let cfiles = files.map { strdup($0) }
        defer { cfiles.forEach { free($0) } }
        ok = ok && cfiles.withUnsafeBufferPointer { tracecmd_write_cpu_data(out, Int32(files.count), $0.baseAddress, nil) } == 0
        tracecmd_output_close(out)
        guard ok else { throw CaptureError.output("\(output): libtracecmd could not write the trace.dat") }
    }

    func discard() {
        for r in readers { tracefs_cpu_close(r) }
        readers.removeAll()
        for fd in fds { close(fd) }
        fds.removeAll()
        for f in files { unlink(f) }
        files.removeAll()
        buffer.deallocate()
        buffer = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
    }
}
