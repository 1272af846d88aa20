import CTraceCmd
import EventModel
import Foundation
import TraceIngest

/// A trace.dat read record by record without decoding, by protreplay's direct reader and by
/// libtracecmd's iteration (the `iterate trace.dat` benchmarks): both open the file, read every CPU's
/// pages, merge the CPUs in timestamp order and hand each record over; neither decodes a field.
public enum TraceDatIteration {
    /// `PROTREPLAY_BENCH_DAT`, else `bench-data/bench-60.none.dat`, else the largest trace.dat sample.
    public static func file() -> String {
        if let p = ProcessInfo.processInfo.environment["PROTREPLAY_BENCH_DAT"] { return p }
        let root = String(Samples.realDirectory.dropLast("/SampleTraces/real".count))
        let bench = root + "/bench-data/bench-60.none.dat"
        if FileManager.default.fileExists(atPath: bench) { return bench }
        return root + "/SampleTraces/real/6.12.107+deb12-amd64-x86_64-compare/trace.dat"
    }

    /// Records handed out by the direct reader (copied into pieces, the pieces given back at once),
    /// opened as `protreplay report` opens it: only the formats the default probe map reads parsed.
    public static func protreplay(_ path: String) throws -> Int {
        let reader = TraceDatReader(names: StringTable())
        let reads = ProbeMap().tracepointFieldReader(wantedTags: nil)
        reader.eventsWanted = { _, name in reads(name) }
        var records = 0
        _ = try reader.readInPieces(try TraceInput(path: path)) { pieces in
            try pieces.forEachPiece { piece in
                records += piece.count
                piece.releaseLater()
            }
        }
        return records
    }

    /// Records handed out by `tracecmd_iterate_events_multi` over the top buffer and every instance,
    /// with a callback that only counts (the C floor of `scripts/bench`).
    public static func libtracecmd(_ path: String) -> Int {
        guard let top = tracecmd_open(path, Int32(TRACECMD_FL_LOAD_NO_PLUGINS.rawValue)) else { return 0 }
        var handles: [OpaquePointer?] = [top]
        for i in 0..<max(0, tracecmd_buffer_instances(top)) { handles.append(tracecmd_buffer_instance_handle(top, i)) }
        var count = 0
        withUnsafeMutablePointer(to: &count) { counter in
            _ = handles.withUnsafeMutableBufferPointer { hs in
                tracecmd_iterate_events_multi(hs.baseAddress, Int32(hs.count), { _, _, _, ctx in
                    ctx!.assumingMemoryBound(to: Int.self).pointee += 1
                    return 0
                }, counter)
            }
        }
        for h in handles.reversed() { tracecmd_close(h) }
        return count
    }
}
