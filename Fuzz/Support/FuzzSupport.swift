import Foundation
import TraceIngest
import EventModel
import Models
import ProtReplayKit

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

    public static func run(_ data: UnsafeRawBufferPointer, format: TraceFormat?) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        if let base = data.baseAddress, data.count > 0 { _ = write(fd, base, data.count) }
        close(fd)
        replay(path: path, format: format)
    }

    static func replay(path: String, format: TraceFormat?) {
        // Text on two threads in small pieces: the cutting, the workers and the merge are fuzzed too.
        let settings = TraceSettings(inputFormat: format, readerThreads: 2, pieceSize: 4096)
        do {
            let pipeline = try Pipeline(path: path, settings: settings, selection: ModelConfiguration(model: "auto"))
            defer { _ = pipeline.report() }
            try pipeline.run()
        } catch {
            // Clear errors are the expected outcome for broken input; crashes are what we look for.
        }
    }

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
