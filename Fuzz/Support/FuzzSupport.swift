import Foundation
import TraceIngest
import EventModel
import Models
import ProtReplayKit
import CZstd

/// Runs the whole pipeline (read, normalize, replay through every model, fold) on fuzzer input.
/// Inputs are written to one scratch file per process, because readers take a path (mmap, libtracecmd).
public enum FuzzSupport {
    nonisolated(unsafe) static var callback: ((UnsafeRawPointer?, Int) -> Void)?

    /// Runs libFuzzer's driver (`LLVMFuzzerRunDriver`) with `test` as the per-input callback.
    public static func runDriver(_ test: @escaping (UnsafeRawPointer?, Int) -> Void) -> Int32 {
        callback = test
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            FuzzSupport.callback?(UnsafeRawPointer(data), size)
            return 0
        }
    }

    nonisolated(unsafe) static let path: String = {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("protreplay-fuzz-\(getpid())").path
        return p
    }()

    public static func run(_ data: UnsafeRawBufferPointer, format: TraceFormat?, kallsyms: String? = nil) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        if let base = data.baseAddress, data.count > 0 { _ = write(fd, base, data.count) }
        close(fd)
        replay(path: path, format: format, kallsyms: kallsyms)
    }

    static func replay(path: String, format: TraceFormat?, kallsyms: String? = nil) {
        // Text on two threads in small pieces: the cutting, the workers and the merge are fuzzed too.
        var settings = TraceSettings(inputFormat: format, readerThreads: 2, pieceSize: 4096)
        settings.kallsyms = kallsyms
        do {
            let pipeline = try Pipeline(path: path, settings: settings, selection: ModelConfiguration(model: "auto"))
            defer { _ = pipeline.report() }
            try pipeline.run()
        } catch {
            // Clear errors are the expected outcome for broken input; crashes are what we look for.
        }
    }

    /// Pipe-mode perf.data: the 16-byte pipe header (`PERFILE2`, size 16), then the input as the record stream.
    public static func perfPipe(_ data: UnsafeRawBufferPointer) {
        var bytes = Array("PERFILE2".utf8) + le(UInt64(16))
        bytes.append(contentsOf: data)
        bytes.withUnsafeBytes { run($0, format: .perfData) }
    }

    /// `perf record -z`: the input is the decompressed record stream, zstd-compressed here into
    /// COMPRESSED records of a pipe-mode file with one cpu-clock attribute
    /// (sample_type IP|TID|TIME|CALLCHAIN|CPU|PERIOD, sample_id_all).
    public static func perfZstd(_ data: UnsafeRawBufferPointer) {
        var bytes = Array("PERFILE2".utf8) + le(UInt64(16))
        var attr = [UInt8](repeating: 0, count: 128)
        attr.replaceSubrange(0..<4, with: le(UInt32(1)))           // PERF_TYPE_SOFTWARE
        attr.replaceSubrange(4..<8, with: le(UInt32(128)))         // size
        attr.replaceSubrange(24..<32, with: le(UInt64(0x1A7)))     // sample_type
        attr.replaceSubrange(40..<48, with: le(UInt64(1 << 18)))   // sample_id_all
        bytes += le(UInt32(64)) + le(UInt16(0)) + le(UInt16(8 + 128 + 8)) + attr + le(UInt64(1))   // HEADER_ATTR, id 1
        guard let cctx = ZSTD_createCStream() else { return }
        defer { ZSTD_freeCStream(cctx) }
        ZSTD_initCStream(cctx, 1)
        var input = ZSTD_inBuffer(src: data.baseAddress, size: data.count, pos: 0)
        var out = [UInt8](repeating: 0, count: 60000)
        var finished = false
        while !finished {
            let (produced, rc): (Int, Int) = out.withUnsafeMutableBytes { o in
                var ob = ZSTD_outBuffer(dst: o.baseAddress, size: o.count, pos: 0)
                let r = input.pos < input.size ? ZSTD_compressStream(cctx, &ob, &input) : ZSTD_endStream(cctx, &ob)
                return (ob.pos, r)
            }
            if ZSTD_isError(rc) != 0 { return }
            finished = input.pos == input.size && rc == 0
            if produced > 0 {
                bytes += le(UInt32(81)) + le(UInt16(0)) + le(UInt16(8 + produced))   // PERF_RECORD_COMPRESSED
                bytes += out[0..<produced]
            }
        }
        bytes += le(UInt32(68)) + le(UInt16(0)) + le(UInt16(8))   // FINISHED_ROUND
        bytes.withUnsafeBytes { run($0, format: .perfData) }
    }

    /// `--kallsyms`: the input as a kallsyms file, then the lookups the report reader does with it.
    public static func kallsyms(_ data: UnsafeRawBufferPointer) {
        guard let ks = try? KernelSymbols(text: Array(data)) else { return }
        for a: UInt64 in [0, 1, 0xffff_ffff_8100_0000, 0xffff_ffff_812d_2af0, .max] { _ = ks.symbol(at: a) }
        var pm = ProbeMap()
        pm.kernelSymbols = ks
        _ = pm.function(unresolved: 0xffff_ffff_812d_2af0, event: "handle_mm_fault", isReturn: false)
        // A report text line with a bare kprobe address, through the whole pipeline with these symbols
        // (written next to the scratch input, as `--kallsyms FILE`).
        let ksPath = path + ".kallsyms"
        let fd = open(ksPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        if let base = data.baseAddress, data.count > 0 { _ = write(fd, base, data.count) }
        close(fd)
        let line = Array("          init-1     [001]     5.009825: get_user_pages_fast:  (ffffffff812d2af0) start=0x1000 nr_pages=1 gup_flags=0x1 pages=0x0\n".utf8)
        line.withUnsafeBytes { run($0, format: .traceCmdReport, kallsyms: ksPath) }
    }

    /// perf.data read on one thread and cut into small chunks of ordered records decoded by two
    /// decoders in turn (what `ParallelIngest`'s workers do): the records, their comms,
    /// payloads and line numbers, and the error, must be the same. A difference traps.
    public static func perfChunks(_ data: UnsafeRawBufferPointer) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        if let base = data.baseAddress, data.count > 0 { _ = write(fd, base, data.count) }
        close(fd)
        guard let input = try? TraceInput(path: path, forcedFormat: .perfData) else { return }
        let names = StringTable()
        let one = RecordDigest(), many = RecordDigest()
        var oneError = "", manyError = ""
        do { try PerfDataReader(names: names).read(input, into: one) {} } catch { oneError = "\(error)" }
        // A chunk size from the input's first byte: 64...1087 bytes of records.
        let chunkBytes = 64 + Int(data.first ?? 0) * 4
        do {
            try PerfDataReader(names: names).withRecords(try TraceInput(path: path, forcedFormat: .perfData)) { records in
                let decoders = records.makeDecoders(2)
                let pool = (0..<3).map { _ in PerfRecordChunk() }
                var k = 0
                try records.forEachChunk(chunkBytes: chunkBytes, next: {
                    let c = pool[k % pool.count]
                    records.releaseMerged(c)
                    return c
                }, send: { chunk in
                    let d = decoders[k % decoders.count]
                    defer { many.lineBase += d.emitted; k += 1 }
                    try d.decode(chunk, into: many)
                })
            }
        } catch { manyError = "\(error)" }
        if one.digest != many.digest || one.count != many.count || oneError != manyError {
            fatalError("perf.data chunked differs from one thread: \(many.count) vs \(one.count) records, errors [\(manyError)] vs [\(oneError)]")
        }
    }

    /// A running hash of every record a reader gives (line numbers made absolute with `lineBase`).
    final class RecordDigest: RawEventSink {
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325
        var count = 0
        var lineBase = 0
        func mix(_ v: UInt64) { digest = (digest ^ v) &* 0x100_0000_01b3 }
        func mix(_ b: UnsafeRawBufferPointer) { mix(UInt64(b.count)); for x in b { mix(UInt64(x)) } }
        func consume(_ e: inout RawEvent) {
            count += 1
            mix(UInt64(e.kind.rawValue)); mix(UInt64(e.line + lineBase)); mix(UInt64(e.offset)); mix(e.timestamp)
            mix(UInt64(UInt32(bitPattern: e.cpu))); mix(UInt64(UInt32(bitPattern: e.pid))); mix(UInt64(e.name)); mix(e.lostCount)
            mix(UInt64(e.flags.bits) | UInt64(e.flags.preemptDepth) << 8 | UInt64(e.flags.migrateDepth) << 16)
            mix(e.comm); mix(e.payload)
        }
        func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) {
            count += 1
            mix(UInt64(line + lineBase)); mix(UInt64(offset)); mix(text)
        }
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    public static func probeMap(_ data: UnsafeRawBufferPointer) {
        var pm = ProbeMap()
        _ = try? pm.load(data: Data(data), path: "fuzz.json")
        _ = pm.rule(event: "kmap_high", function: "kmap_high", isReturn: false)
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32
