import TraceIngest

/// The real sample traces, loaded once (outside any measured region) and cut into slices of exactly
/// `Samples.eventsPerIteration` trace events, so that one benchmark iteration handles one slice and
/// its malloc count reads as "mallocs per 1000 events".
public enum Samples {
    /// Trace events (event lines: tracepoints, kprobes, syscalls, markers) per benchmark iteration.
    /// `<stack trace>` entries, their ` => frame` lines and header or lost-event lines ride along in
    /// the slice of the event they follow.
    public static let eventsPerIteration = 1000

    /// `SampleTraces/real/` of the main repository (this file is `Benchmarks/Support/Samples.swift`).
    public static var realDirectory: String {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/SampleTraces/real"
    }

    /// 6.1 x86_64 workload, ftrace text (`trace`, 0.77 MB, ~6 k events, no HIGHMEM).
    public static let x86_64 = "6.1.0-56-amd64-x86_64-workload/trace"
    /// 6.1 i386 PAE HIGHMEM workload, ftrace text compressed (`trace.lz4`, 2.4 MB, ~18 k events, kmap-heavy).
    public static let i386 = "6.1.0-50-686-pae-i386-workload/trace.lz4"
}

/// One sample trace's text in memory (decompressed if needed) and its slices.
public final class TextSample {
    public let name: String
    /// The text; never freed (lives as long as the benchmark process).
    public let bytes: UnsafeRawBufferPointer
    /// Byte ranges of `bytes`, each holding exactly `Samples.eventsPerIteration` event lines (the tail
    /// that does not fill a slice is left out).
    public let slices: [Range<Int>]
    /// Event lines in the whole sample.
    public let events: Int

    /// Reads `Samples.realDirectory + "/" + relativePath` through the library's own input code
    /// (mmap or LZ4 frames) and finds the slice boundaries with one parse.
    public init(_ relativePath: String) throws {
        name = relativePath
        let input = try TraceInput(path: Samples.realDirectory + "/" + relativePath)
        var text: [UInt8] = []
        try input.forEachChunk { chunk, _ in text.append(contentsOf: chunk) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: text.count, alignment: 16)
        text.withUnsafeBytes { buffer.copyMemory(from: $0) }
        bytes = UnsafeRawBufferPointer(buffer)

        let offsets = EventOffsets()
        FtraceTextReader(names: StringTable()).read(bytes, offset: 0, into: offsets)
        events = offsets.offsets.count
        var cuts: [Int] = stride(from: 0, to: offsets.offsets.count, by: Samples.eventsPerIteration).map { offsets.offsets[$0] }
        if offsets.offsets.count % Samples.eventsPerIteration == 0 { cuts.append(bytes.count) }
        slices = zip(cuts, cuts.dropFirst()).map { $0..<$1 }
        precondition(!slices.isEmpty, "\(relativePath): fewer than \(Samples.eventsPerIteration) events")
    }

    public func slice(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[slices[i]])
    }
}

/// Byte offset of every event line.
private final class EventOffsets: RawEventSink {
    var offsets: [Int] = []
    func consume(_ event: inout RawEvent) { if event.kind == .event { offsets.append(event.offset) } }
    func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) {}
}

/// A reader's sink that only counts (the parser benchmarks).
public final class CountingRawSink: RawEventSink {
    public private(set) var events = 0
    public private(set) var other = 0
    public private(set) var malformed = 0
    public init() {}
    public func consume(_ event: inout RawEvent) {
        if event.kind == .event { events += 1 } else { other += 1 }
    }
    public func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) { malformed += 1 }
}
