import XCTest
import Foundation
@testable import TraceIngest

/// The direct trace.dat decoder (`RingBufferCPU`, `RingBufferMerge`) against libtracecmd, the
/// reference: every trace.dat under SampleTraces/ read both ways gives the same records.
final class TraceDatDirectTests: XCTestCase {
    /// Every record as both readers hand it over, offsets included (they count in the file for
    /// uncompressed data; compressed data has reader-specific offsets and is compared without them).
    struct Full: Equatable, CustomStringConvertible {
        var kind: RawRecordKind, name: String, ts: UInt64, cpu: Int32, pid: Int32, tgid: Int32, comm: String, payload: String
        var flags: TraceFlags, lost: UInt64, line: Int, userStack: Bool, offset: Int
        var description: String { "\(kind) \(name) ts=\(ts) cpu=\(cpu) pid=\(pid) comm=\(comm) lost=\(lost) off=\(offset) [\(payload)]" }
    }

    final class Sink: RawEventSink {
        let names: StringTable
        let withOffsets: Bool
        var records: [Full] = []
        func copy() -> Sink {
            let s = Sink(names: names, withOffsets: withOffsets)
            s.records = records
            s.malformed = malformed
            return s
        }
        /// Added to line numbers (records of a piece are numbered from 1).
        var lineBase = 0
        var malformed: [String] = []
        init(names: StringTable, withOffsets: Bool) { self.names = names; self.withOffsets = withOffsets }
        func consume(_ e: inout RawEvent) {
            records.append(Full(kind: e.kind, name: e.name == 0 ? "" : names.string(e.name), ts: e.timestamp, cpu: e.cpu, pid: e.pid, tgid: e.tgid,
                                comm: String(decoding: e.comm, as: UTF8.self), payload: String(decoding: e.payload, as: UTF8.self),
                                flags: e.flags, lost: e.lostCount, line: e.line + lineBase, userStack: e.userStack, offset: withOffsets ? e.offset : 0))
        }
        func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) { malformed.append("\(line): \(reason)") }
    }

    /// Every trace.dat of the repository (real captures and tool samples, `.lz4` ones too).
    static func samples() -> [String] {
        let root = ingestRepoRoot.appendingPathComponent("SampleTraces")
        var out: [String] = []
        let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
        while let u = e?.nextObject() as? URL {
            if u.lastPathComponent.hasSuffix(".dat") || u.lastPathComponent.hasSuffix(".dat.lz4") { out.append(u.path) }
        }
        return out.sorted()
    }

    func read(_ path: String, _ kind: TraceDatReaderKind, oneThread: Bool, withOffsets: Bool, metadataHere: Bool = false,
              eventsWanted: ((String, String) -> Bool)? = nil) throws -> (Sink, TraceDatReader) {
        if oneThread { setenv("PROTREPLAY_READER_THREADS", "1", 1) }
        defer { if oneThread { unsetenv("PROTREPLAY_READER_THREADS") } }
        let names = StringTable()
        let sink = Sink(names: names, withOffsets: withOffsets)
        let reader = TraceDatReader(names: names, kind: kind)
        reader.parseMetadataHere = metadataHere
        reader.eventsWanted = eventsWanted
        try reader.read(try TraceInput(path: path), into: sink) {}
        return (sink, reader)
    }

    /// The reference for a file the installed libtracecmd cannot open: Debian's libtracecmd has no zlib,
    /// and `same-buffer.v7-zlib.dat` is `trace-cmd convert --compression zlib` of `same-buffer.v7-zstd.dat`
    /// (SampleTraces/tools/README.md), so libtracecmd's reading of the zstd file is the reference for both.
    static func reference(_ path: String) -> String {
        path.hasSuffix("/same-buffer.v7-zlib.dat") ? path.replacingOccurrences(of: "v7-zlib", with: "v7-zstd") : path
    }

    func testEverySampleReadsTheSameBothWays() throws {
        let files = Self.samples()
        XCTAssertGreaterThanOrEqual(files.count, 10, "\(files)")
        XCTAssertTrue(files.contains { $0.hasSuffix("/same-buffer.v7-zlib.dat") }, "\(files)")
        for path in files {
            let name = path.replacingOccurrences(of: ingestRepoRoot.path + "/", with: "")
            let refPath = Self.reference(path)
            for oneThread in [false, true] {
                let compressed = try read(refPath, .libtracecmd, oneThread: true, withOffsets: false).1.compression != "none"
                let (ref, refReader) = try read(refPath, .libtracecmd, oneThread: oneThread, withOffsets: !compressed)
                let (direct, directReader) = try read(path, .direct, oneThread: oneThread, withOffsets: !compressed)
                XCTAssertEqual(refReader.readerUsed, .libtracecmd, name)
                XCTAssertEqual(directReader.readerUsed, .direct, "\(name): fell back to libtracecmd")
                XCTAssertEqual(directReader.metadataParsedHere, directReader.compression == "zlib", name)
                // The metadata parsed here instead of by libtracecmd (`TraceDatMetadata`, what zlib files
                // need and what leaving formats out needs): the same records from every file, version 6
                // or 7, whatever its compression.
                let (own, ownReader) = try read(path, .direct, oneThread: oneThread, withOffsets: !compressed, metadataHere: true)
                XCTAssertTrue(ownReader.metadataParsedHere, name)
                for (how, got, gotReader) in [("direct", direct, directReader), ("direct, metadata parsed here", own, ownReader)] {
                    XCTAssertEqual(gotReader.records, refReader.records, "\(name) \(how)")
                    XCTAssertEqual(gotReader.instances, refReader.instances, "\(name) \(how)")
                    assertSame(got, ref, "\(name) \(how) oneThread=\(oneThread)")
                }
                // Only sched_switch's fields wanted: every other format is left out but ftrace's own
                // (markers, stack traces) and the kprobes' (whose payload names the probed function).
                // Their records keep name, time, CPU, pid, comm and flags; only the payload is gone.
                let (some, someReader) = try read(path, .direct, oneThread: oneThread, withOffsets: !compressed,
                                                  eventsWanted: { _, event in event == "sched_switch" })
                XCTAssertEqual(someReader.records, refReader.records, name)
                let expected = ref.copy()
                expected.records = ref.records.map { r in
                    var r = r
                    if r.kind == .event && r.name != "sched_switch" && r.name != "tracing_mark_write" && !r.payload.hasPrefix("(") { r.payload = "" }
                    return r
                }
                if expected.records != ref.records {
                    XCTAssertGreaterThan(someReader.formatsLeftOut, 0, name)
                    XCTAssertTrue(someReader.metadataParsedHere, name)
                }
                assertSame(some, expected, "\(name) with only sched_switch's fields read, oneThread=\(oneThread)")
            }
        }
    }

    /// In pieces (`TraceDatPieces`) of 7 records, decoded in turn by three decoders as three workers
    /// would: every sample gives libtracecmd's records, numbered as one sequential read numbers them.
    func testPiecesReadWhatLibtracecmdReads() throws {
        for path in Self.samples() {
            let name = path.replacingOccurrences(of: ingestRepoRoot.path + "/", with: "")
            let refPath = Self.reference(path)
            let compressed = try read(refPath, .libtracecmd, oneThread: true, withOffsets: false).1.compression != "none"
            let (ref, refReader) = try read(refPath, .libtracecmd, oneThread: true, withOffsets: !compressed)
            let names = StringTable()
            let sink = Sink(names: names, withOffsets: !compressed)
            let reader = TraceDatReader(names: names)
            var pieces = 0
            var progress: [Int] = []
            let direct = try reader.readInPieces(try TraceInput(path: path), recordsPerPiece: 7) { file in
                let decoders = (0..<3).map { _ in file.makeDecoder(names: names) }
                try file.forEachPiece { piece in
                    let first = sink.records.count
                    sink.lineBase += try decoders[pieces % 3].decode(piece, into: sink)
                    // Seven records, and the stack traces that follow the seventh: a stack trace is
                    // never cut off from its event.
                    if first < sink.records.count { XCTAssertNotEqual(sink.records[first].kind, .stackTrace, name) }
                    pieces += 1
                    progress.append(piece.endOffset)
                    piece.releaseLater()
                }
            }
            // Progress grows with the ring-buffer data read, to the file's size (as read: `.lz4` samples decompressed).
            XCTAssertEqual(progress, progress.sorted(), name)
            if let last = progress.last, !path.hasSuffix(".lz4") {
                XCTAssertEqual(last, try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, name)
            }
            XCTAssertTrue(direct, "\(name): the direct decoder did not take it")
            XCTAssertEqual(reader.records, refReader.records, name)
            XCTAssertGreaterThanOrEqual(pieces, refReader.records / 8, name)
            assertSame(sink, ref, "\(name) in pieces")
        }
    }

    /// The same records (the first three that differ shown) and malformed records as the reference.
    func assertSame(_ got: Sink, _ ref: Sink, _ what: String) {
        XCTAssertEqual(got.records.count, ref.records.count, what)
        XCTAssertEqual(got.malformed, ref.malformed, what)
        var shown = 0
        for (k, (a, b)) in zip(got.records, ref.records).enumerated() where a != b {
            shown += 1
            if shown <= 3 { XCTFail("\(what) record \(k):\n got \(a)\n ref \(b)") }
        }
        XCTAssertEqual(shown, 0, "\(what): \(shown) records differ")
    }

    /// A read frees its pieces and their pool (a piece once held its pool strongly, and the pool its
    /// free pieces: the trace-dat fuzz target's leak check found the cycle).
    func testPiecesAndTheirPoolAreFreed() throws {
        weak var piece: RecordPiece?
        let names = StringTable()
        let sink = Sink(names: names, withOffsets: false)
        _ = try TraceDatReader(names: names).readInPieces(try TraceInput(path: toolsDir + "/same-buffer.v7-zstd.dat"), recordsPerPiece: 100) { file in
            let decoder = file.makeDecoder(names: names)
            try file.forEachPiece { p in
                _ = try decoder.decode(p, into: sink)
                p.releaseLater()
                piece = p
            }
        }
        XCTAssertGreaterThan(sink.records.count, 700)
        XCTAssertNil(piece)
    }

    /// `--reader libtracecmd` on the zlib file: Debian's libtracecmd 3.1.6 is built without zlib
    /// (`trace-cmd list -c` shows only zstd), so `tracecmd_open_fd` refuses the file; that is one
    /// `InputError` naming the file and the compression, never a crash.
    func testLibtracecmdReaderRefusesZlibWithOneLine() throws {
        let path = toolsDir + "/same-buffer.v7-zlib.dat"
        do {
            _ = try read(path, .libtracecmd, oneThread: true, withOffsets: false)
            throw XCTSkip("the installed libtracecmd decompresses zlib")
        } catch let e as InputError {
            let text = "\(e)"
            XCTAssertTrue(text.hasPrefix(path + ": trace.dat: libtracecmd could not open this version 7 file with zlib-compressed sections"), text)
            XCTAssertFalse(text.contains("\n"), text)
        }
    }
}

import CZlib

/// The ring-buffer page format on hand-built pages: every event header kind, lost-event counts,
/// 4- and 8-byte longs, and compressed chunks cut in the middle of a page.
final class RingBufferPageTests: XCTestCase {
    struct Page {
        var bytes: [UInt8] = []
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func header(_ typeLen: UInt32, _ delta: UInt32) { u32(typeLen | delta << 5) }
    }
    static let absolute: UInt64 = 0x0000_0123_4567_89ab

    /// Two pages of `pageSize` bytes. Page 1 (timestamp 1000, 3 events lost before it, the count stored):
    ///   [0]  type_len 2, delta 5, 8 bytes              -> ts 1005, lost 3
    ///   [12] TIME_EXTEND delta 3, array[0] 1           -> +2^27 + 3
    ///   [20] type_len 0, delta 2, length 4+10 (12 kept) -> ts 1005 + 2^27 + 5
    ///   [40] PADDING delta 1, array[0] 8 (itself and 4 bytes) -> +1
    ///   [52] TIME_STAMP of `absolute`                    -> ts = absolute
    ///   [60] type_len 1, delta 0                         -> ts absolute
    /// Page 2 (timestamp 5000, lost events not counted): [0] type_len 1, delta 10 -> ts 5010, lost -1.
    static func pages(longSize: Int, pageSize: Int = 256) -> [UInt8] {
        var out: [UInt8] = []
        func page(_ ts: UInt64, _ flags: UInt64, _ body: Page, trailer: UInt64?) {
            var p = Page()
            p.u64(ts)
            let commit = UInt64(body.bytes.count) | flags
            if longSize == 8 { p.u64(commit) } else { p.u32(UInt32(truncatingIfNeeded: commit)) }
            p.bytes += body.bytes
            if let t = trailer { if longSize == 8 { p.u64(t) } else { p.u32(UInt32(t)) } }
            p.bytes += [UInt8](repeating: 0, count: pageSize - p.bytes.count)
            out += p.bytes
        }
        var b = Page()
        b.header(2, 5); b.bytes += Array(1...8)
        b.header(30, 3); b.u32(1)
        b.header(0, 2); b.u32(14); b.bytes += Array(repeating: 0xaa, count: 12)
        b.header(29, 1); b.u32(8); b.bytes += Array(repeating: 0, count: 4)   // the length counts its own word
        b.header(31, UInt32(absolute & 0x7ff_ffff)); b.u32(UInt32(absolute >> 27))
        b.header(1, 0); b.u32(0xdead_beef)
        page(1000, 1 << 31 | 1 << 30, b, trailer: 3)
        var c = Page()
        c.header(1, 10); c.u32(7)
        page(5000, 1 << 31, c, trailer: nil)
        return out
    }

    func records(_ data: [UInt8], offset: Int, size: Int, longSize: Int, compression: String?) throws -> [(ts: UInt64, size: Int, offset: Int, missed: Int64, first: UInt8)] {
        try data.withUnsafeBytes { file in
            let cpu = try RingBufferCPU(cpu: 1, offset: offset, size: size, file: file, pageSize: 256, longSize: longSize,
                                        compression: compression, timestampOffset: 0, path: "t")
            var out: [(UInt64, Int, Int, Int64, UInt8)] = []
            while try cpu.advance() { out.append((cpu.ts, cpu.size, cpu.offset, cpu.missed, cpu.data!.load(as: UInt8.self))) }
            return out
        }
    }

    func check(_ r: [(ts: UInt64, size: Int, offset: Int, missed: Int64, first: UInt8)], base: Int, header: Int) {
        XCTAssertEqual(r.count, 4)
        guard r.count == 4 else { return }
        XCTAssertEqual(r.map(\.ts), [1005, 1005 + (1 << 27) + 5, Self.absolute, 5010])
        XCTAssertEqual(r.map(\.size), [8, 12, 4, 4])
        XCTAssertEqual(r.map(\.missed), [3, 0, 0, -1])
        XCTAssertEqual(r.map(\.first), [1, 0xaa, 0xef, 7])
        XCTAssertEqual(r.map(\.offset), [base + header, base + header + 20, base + header + 60, base + 256 + header])
    }

    func testUncompressedPagesWithEightByteLongs() throws {
        let data = [UInt8](repeating: 0x55, count: 100) + Self.pages(longSize: 8)
        check(try records(data, offset: 100, size: 512, longSize: 8, compression: nil), base: 100, header: 16)
    }

    func testUncompressedPagesWithFourByteLongs() throws {
        let data = Self.pages(longSize: 4)
        check(try records(data, offset: 0, size: 512, longSize: 4, compression: nil), base: 0, header: 12)
    }

    /// zlib chunks (`count u32`, then `compressed u32, uncompressed u32, data`), the first page cut
    /// between the two chunks; offsets count in the decompressed data.
    func testZlibChunksCutInsideAPage() throws {
        let raw = Self.pages(longSize: 8)
        var file: [UInt8] = []
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { file += $0 } }
        u32(2)
        for part in [Array(raw[0..<100]), Array(raw[100...])] {
            var out = [UInt8](repeating: 0, count: 1024)
            var n = uLongf(out.count)
            XCTAssertEqual(compress(&out, &n, part, uLong(part.count)), Z_OK)
            u32(Int(n)); u32(part.count)
            file += out[0..<Int(n)]
        }
        check(try records(file, offset: 0, size: file.count - 4, longSize: 8, compression: "zlib"), base: 0, header: 16)
    }

    /// fuzz-trace-dat-pages crash-591220465897e9170f762739e34392cd4e9ce2c9: a first chunk that
    /// decompresses to 0 bytes left the window unallocated (a nil unwrap).
    func testEmptyFirstChunk() throws {
        for compression in ["zlib", "zstd"] {
            let file: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]   // 1 chunk: 0 bytes compressed, 0 uncompressed
            // zlib rejects an empty stream, zstd decompresses it to nothing: no records either way.
            let r = try? records(file, offset: 0, size: file.count - 4, longSize: 8, compression: compression)
            XCTAssertTrue(r?.isEmpty ?? true, compression)
        }
        // The fuzzer's input itself (mode byte 0x12: zstd, 8-byte longs, 4096-byte pages; a chunk of
        // 93 compressed bytes that claims 0 uncompressed).
        let crash: [UInt8] = [18, 1, 0, 0, 0, 93, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 40, 181, 47, 253, 0, 16, 165, 2, 0, 196, 3, 60, 192, 65, 8, 95, 0, 0, 255, 255, 255, 255, 0, 0, 0, 118, 1, 37, 4, 120, 57, 0, 0, 98, 97, 115, 104, 0, 121, 56, 0, 0, 120, 0, 0, 0, 1, 0, 0, 0, 137, 222, 87, 3, 118, 1, 37, 6, 119, 128, 55, 73, 165, 60, 4, 123, 201, 251, 231, 1, 124, 9, 0, 77, 7, 62, 128, 190, 32, 32, 208, 23, 4, 2, 54, 124, 169, 196, 2, 179, 6, 128, 4]
        let r = try? crash.dropFirst().withUnsafeBytes { try RingBufferPages.decode($0, pageSize: 4096, longSize: 8, compression: "zstd") }
        XCTAssertEqual(r?.records ?? 0, 0)
    }

    /// A commit larger than the page, an event running past the commit: one clear error, no crash.
    func testDamagedPagesThrow() throws {
        var bad = Self.pages(longSize: 8)
        bad[8] = 0xff; bad[9] = 0xff   // commit 0xffff > 240
        XCTAssertThrowsError(try records(bad, offset: 0, size: 512, longSize: 8, compression: nil))
        var bad2 = Self.pages(longSize: 8)
        bad2[16] = 28   // first event claims 112 bytes, past the 68-byte commit
        XCTAssertThrowsError(try records(bad2, offset: 0, size: 512, longSize: 8, compression: nil))
    }
}

import CTraceCmd

extension RingBufferPageTests {
    /// The same hand-built pages through libtraceevent's own page reader (kbuffer), which
    /// libtracecmd uses: the same timestamps, sizes, offsets and lost counts.
    func testHandBuiltPagesMatchKbuffer() throws {
        for longSize in [8, 4] {
            let data = Self.pages(longSize: longSize)
            let ours = try records(data, offset: 0, size: data.count, longSize: longSize, compression: nil)
            var theirs: [(ts: UInt64, size: Int, offset: Int, missed: Int64)] = []
            var copy = data
            copy.withUnsafeMutableBytes { buf in
                guard let kb = kbuffer_alloc(longSize == 8 ? KBUFFER_LSIZE_8 : KBUFFER_LSIZE_4, KBUFFER_ENDIAN_LITTLE) else { return }
                defer { kbuffer_free(kb) }
                for page in 0..<2 {
                    kbuffer_load_subbuffer(kb, buf.baseAddress! + page * 256)
                    var ts: UInt64 = 0
                    var p = kbuffer_read_event(kb, &ts)
                    while p != nil {
                        theirs.append((ts, Int(kbuffer_event_size(kb)), page * 256 + Int(kbuffer_curr_offset(kb)), Int64(kbuffer_missed_events(kb))))
                        p = kbuffer_next_event(kb, &ts)
                    }
                }
            }
            XCTAssertEqual(ours.map(\.ts), theirs.map(\.ts), "long \(longSize)")
            XCTAssertEqual(ours.map(\.size), theirs.map(\.size), "long \(longSize)")
            XCTAssertEqual(ours.map(\.offset), theirs.map(\.offset), "long \(longSize)")
            XCTAssertEqual(ours.map(\.missed), theirs.map(\.missed), "long \(longSize)")
        }
    }
}

extension TraceDatDirectTests {
    /// A damaged page in a real file: CPU 0's first page of `same-buffer.v7-none.dat.lz4` (its data at
    /// 2031616, 20480 bytes: `trace-cmd dump --options`) with a commit of 0xffff. The direct reader stops
    /// with one line naming the CPU, the offset and what is wrong (libtracecmd 3.1.6 crashes on this file).
    func testDamagedPageInARealFileIsOneClearError() throws {
        let dir = try temporaryDirectory(self)
        let path = dir.appendingPathComponent("bad.dat").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "lz4 -dc \"$0\" > \"$1\"", ingestRepoRoot.appendingPathComponent("SampleTraces/tools/same-buffer.v7-none.dat.lz4").path, path]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let h = FileHandle(forUpdatingAtPath: path) else { throw XCTSkip("lz4 is not installed") }
        h.seek(toFileOffset: 2031616 + 8)
        h.write(Data([0xff, 0xff, 0, 0]))
        h.closeFile()
        XCTAssertThrowsError(try read(path, .direct, oneThread: false, withOffsets: true)) { e in
            XCTAssertEqual("\(e)".contains("CPU 0's ring-buffer data: a page's commit claims 65535 bytes, more than the page holds (4080)"), true, "\(e)")
            XCTAssertEqual("\(e)".contains("byte offset 2031616"), true, "\(e)")
        }
    }
}
