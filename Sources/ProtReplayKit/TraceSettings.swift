import TraceIngest
import EventModel
import Replay
import EventModel

/// How to read a trace and what to assume about the kernel it came from: the input format, a user probe
/// map, the kernel profile (arch, `struct page` layout, direct-map base) and the cap on live replay state.
/// The command line's `TraceOptions` fill it in; tests, fuzzers and benchmarks make one directly.
public struct TraceSettings: Sendable {
    /// Read the input as this format instead of detecting it from content.
    public var inputFormat: TraceFormat?
    /// Probe-map JSON that adds to or overrides the built-in rules.
    public var probeMap: String?
    /// Kernel symbols (`/proc/kallsyms` form) naming the bare addresses of `trace-cmd report` text without symbols.
    public var kallsyms: String?
    /// `x86_64`, `i386`, `s390x` (nil: inferred from the trace).
    public var arch: String?
    /// `struct page *` of pfn 0, hex.
    public var memMapBase: String?
    public var structPageSize: UInt64?
    /// Direct-map base, hex.
    public var pageOffsetBase: String?
    public var maxLiveEntries: Int = LiveStateLimit.defaultCap
    /// Text parsing workers (nil: `PROTREPLAY_READER_THREADS`, else one per CPU) and piece size (nil:
    /// `PROTREPLAY_PIECE_BYTES`, else 1 MiB).
    public var readerThreads: Int?
    public var pieceSize: Int?
    /// `--pid`/`--comm`/`--cpu`/`--time`: what the report credits and the events it counts as matching
    /// (the replay still sees every event). Nil or empty: everything.
    public var filter: EventFilter?
    /// `--by-phase`: split the report by workload phases (trace markers `wl phase NAME` ... `wl phase NAME done`).
    public var byPhase = false
    /// `--phase NAME`: credit only what falls inside that phase.
    public var onlyPhase: String?
    /// `--phase-marker`: the marker text that starts a phase name.
    public var phaseMarker = "wl phase "
    public var usesPhases: Bool { byPhase || onlyPhase != nil }
    /// How trace.dat records are read (`--reader`): decoded directly (default) or through libtracecmd's iteration.
    public var traceDatReader: TraceDatReaderKind = .direct

    public init(inputFormat: TraceFormat? = nil, readerThreads: Int? = nil, pieceSize: Int? = nil) {
        self.inputFormat = inputFormat
        self.readerThreads = readerThreads
        self.pieceSize = pieceSize
    }

    /// True when the user fixed the `struct page` layout (the trace must not override it).
    public var fixesLayout: Bool { memMapBase != nil || structPageSize != nil }

    /// The kernel profile these settings give.
    public func profile() throws -> KernelProfile {
        var p = KernelProfile()
        if let a = arch {
            guard let arch = KernelProfile.Arch(rawValue: a) else { throw ConfigurationError("--arch must be one of x86_64, i386, s390x") }
            p = KernelProfile(arch: arch)
        }
        if let b = memMapBase { p.memMapBase = try TraceSettings.hex(b, "--mem-map-base") }
        if let s = structPageSize { p.structPageSize = s }
        if let b = pageOffsetBase { p.pageOffsetBase = try TraceSettings.hex(b, "--page-offset-base") }
        if p.memMapBase != nil && p.structPageSize == nil { p.structPageSize = p.arch == .i386 ? 40 : 64 }
        return p
    }

    static func hex(_ s: String, _ flag: String) throws -> UInt64 {
        var t = Substring(s)
        if t.hasPrefix("0x") || t.hasPrefix("0X") { t = t.dropFirst(2) }
        guard let v = UInt64(t, radix: 16) else { throw ConfigurationError("\(flag): '\(s)' is not a hex number") }
        return v
    }
}

/// A setting or model option that is not valid: the command line reports it as a usage error.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
