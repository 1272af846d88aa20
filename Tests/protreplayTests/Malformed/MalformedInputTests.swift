import XCTest
import Foundation
@testable import protreplay
import TraceIngest

/// The malformed-input corpus: each case states the documented behaviour (counted and reported, or a
/// clear error with `--strict`), and none may crash, hang or grow memory without bound.
final class MalformedInputTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("protreplay-malformed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func file(_ name: String, _ data: Data) -> String {
        let p = dir.appendingPathComponent(name).path
        _ = FileManager.default.createFile(atPath: p, contents: data)
        return p
    }
    func file(_ name: String, _ text: String) -> String { file(name, Data(text.utf8)) }

    static let kmapLines = """
           wl-a-10      [000] .....     1.000000: kmap_local_page: (__kmap_local_page_prot+0x0/0x60) page=0xf6dfd788
           wl-a-10      [000] .....     1.000010: kmap_local_pfn: (__kmap_local_pfn_prot+0x0/0x180) pfn=0x7fafd
           wl-a-10      [000] ...11     1.000020: kmap_local_pfn_ret: (__kmap_local_page_prot+0x51/0x60 <- __kmap_local_pfn_prot) vaddr=0xfffbb000
           wl-a-10      [000] ...11     1.000030: kmap_local_page_ret: (copy_page_to_iter+0x1/0x2 <- __kmap_local_page_prot) vaddr=0xfffbb000
           wl-a-10      [000] .....     1.000100: kunmap_local: (kunmap_local_indexed+0x0/0x110) vaddr=0xfffbb000

    """

    /// Every prefix of a small real-shaped trace: no crash, and the counts never exceed the full trace's.
    func testTruncatedAtEveryByte() throws {
        let full = Data((Self.kmapLines + "           wl-a-10      [000] d..2.     1.000200: sched_switch: prev_comm=wl-a prev_pid=10 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120\n").utf8)
        let whole = try report([file("full.txt", full)])
        let fullEvents = value(whole, "trace.events") as! Int
        for cut in stride(from: 1, to: full.count, by: 3) {
            let path = file("cut.txt", full.prefix(cut))
            do {
                let j = try report([path])
                XCTAssertLessThanOrEqual(value(j, "trace.events") as! Int, fullEvents)
            } catch {
                // Only "no events" is acceptable for prefixes that end inside the first line.
                XCTAssertTrue("\(error)".contains("no trace events") || "\(error)".contains("not a supported"), "cut \(cut): \(error)")
            }
        }
    }

    func testInvalidUTF8InCommIsKeptAndEscaped() throws {
        var bytes = Data("           wl-".utf8)
        bytes.append(contentsOf: [0xFF, 0xFE, 0xC3])
        bytes.append(Data("-10      [000] .....     1.000000: kmap_high: (kmap_high+0x0/0x260) page=0xf6ded6a8\n".utf8))
        bytes.append(Data("           wl-b-11      [000] .....     1.000100: kunmap_high: (kunmap_high+0x0/0x50) page=0xf6ded6a8\n".utf8))
        let path = file("utf8.txt", bytes)
        let r = try runTool(["report", path, "--format", "json"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(r.out.utf8)), "valid JSON")
        let j = try report([path])
        XCTAssertEqual(value(j, "trace.events") as? Int, 2)
        XCTAssertEqual(value(j, "trace.malformed") as? Int, 0)
    }

    /// A value that does not fit 64 bits makes that event malformed (counted, with its line), not zero.
    func testNumbersOverflowing64Bits() throws {
        let j = try report([file("big.txt", "           wl-a-10      [000] .....     1.000000: kmap_high: (kmap_high+0x0/0x260) page=0x1ffffffffffffffffff\n           wl-a-10      [000] .....     1.000001: tracing_mark_write: x\n")])
        XCTAssertEqual(value(j, "trace.events") as? Int, 2)
        XCTAssertEqual(value(j, "trace.malformed") as? Int, 1)
        XCTAssertEqual(value(j, "trace.malformed_events") as? Int, 1)
        let ex = (value(j, "trace.malformed_examples") as? [[String: Any]])?.first
        XCTAssertEqual(ex?["line"] as? Int, 1)
    }

    /// Timestamps going backwards are kept in file order and counted.
    func testTimestampsBackwards() throws {
        let j = try report([file("back.txt", """
                   wl-a-10      [000] .....     2.000000: tracing_mark_write: a
                   wl-a-10      [001] .....     1.000000: tracing_mark_write: b

        """)])
        XCTAssertEqual(value(j, "trace.timestamps_backwards") as? Int, 1)
        XCTAssertEqual(value(j, "trace.first_ns") as? Int, 2_000_000_000)
    }

    /// A CPU number above the supported maximum is counted and not replayed; one too long to be a CPU
    /// column makes the line malformed.
    func testCPUOutOfRange() throws {
        let j = try report([file("cpu.txt", """
                   wl-a-10      [9999] .....     1.000000: tracing_mark_write: a
                   wl-a-10      [12345678] .....     1.000001: tracing_mark_write: b
                   wl-a-10      [000] .....     1.000002: tracing_mark_write: c

        """)])
        XCTAssertEqual(value(j, "trace.cpu_out_of_range") as? Int, 1)
        XCTAssertEqual(value(j, "trace.malformed") as? Int, 1)
        XCTAssertEqual(value(j, "trace.events") as? Int, 2)
    }

    /// Events before any sched_switch run in the task their pid names; duplicate and missing kretprobes
    /// change nothing but the call site.
    func testDuplicateAndMissingKretprobes() throws {
        let text = """
               wl-a-10      [000] .....     1.000000: kmap_local_page: (__kmap_local_page_prot+0x0/0x60) page=0xf6dfd788
               wl-a-10      [000] .....     1.000010: kmap_local_pfn: (__kmap_local_pfn_prot+0x0/0x180) pfn=0x7fafd
               wl-a-10      [000] ...11     1.000020: kmap_local_pfn_ret: (__kmap_local_page_prot+0x51/0x60 <- __kmap_local_pfn_prot) vaddr=0xfffbb000
               wl-a-10      [000] ...11     1.000021: kmap_local_pfn_ret: (__kmap_local_page_prot+0x51/0x60 <- __kmap_local_pfn_prot) vaddr=0xfffbb000
               wl-a-10      [000] .....     1.000030: kmap_local_page: (__kmap_local_page_prot+0x0/0x60) page=0xf6dfd7b0
               wl-a-10      [000] .....     1.000040: kmap_local_pfn: (__kmap_local_pfn_prot+0x0/0x180) pfn=0x7fafe
               wl-a-10      [000] .....     1.000050: kunmap_local: (kunmap_local_indexed+0x0/0x110) vaddr=0xfffba000
               wl-a-10      [000] .....     1.000060: kunmap_local: (kunmap_local_indexed+0x0/0x110) vaddr=0xfffbb000

        """
        let j = try report([file("kret.txt", text)])
        XCTAssertEqual(value(j, "exposure.granted.windows") as? Int, 2)
        XCTAssertEqual(value(j, "anomalies.total") as? Int, 0)
    }

    /// Binary garbage in the middle of a text trace: counted as malformed lines, the rest is read.
    func testBinaryGarbageInTheMiddle() throws {
        var d = Data(Self.kmapLines.utf8)
        var rng = SystemRandomNumberGenerator()
        var junk = [UInt8](repeating: 0, count: 4096)
        for i in junk.indices { junk[i] = UInt8.random(in: 0...255, using: &rng) }
        d.append(contentsOf: junk)
        d.append(0x0A)
        d.append(Data(Self.kmapLines.utf8))
        let j = try report([file("junk.txt", d)])
        XCTAssertEqual(value(j, "trace.events") as? Int, 10)
        XCTAssertGreaterThan(value(j, "trace.malformed") as! Int, 0)
    }

    /// A 10 MB line is one malformed line; the read goes on (file and stdin).
    func testTenMegabyteLine() throws {
        var d = Data(Self.kmapLines.utf8)
        d.append(Data(repeating: UInt8(ascii: "x"), count: 10 << 20))
        d.append(0x0A)
        d.append(Data(Self.kmapLines.utf8))
        let path = file("long.txt", d)
        let j = try report([path])
        XCTAssertEqual(value(j, "trace.events") as? Int, 10)
        XCTAssertEqual(value(j, "trace.malformed") as? Int, 1)
        let viaStdin = try runTool(["report", "-", "--format", "json"], stdin: d)
        XCTAssertEqual(viaStdin.status, 0, viaStdin.err)
        let js = try JSONSerialization.jsonObject(with: Data(viaStdin.out.utf8)) as? [String: Any] ?? [:]
        XCTAssertEqual(value(js, "trace.malformed") as? Int, 1)
        let strict = try runTool(["report", path, "--strict"])
        XCTAssertNotEqual(strict.status, 0)
        XCTAssertTrue(strict.err.contains("\(path):6:"), strict.err)
    }

    /// Unknown events are unmapped and listed by name.
    func testUnknownEvents() throws {
        let j = try report([file("unk.txt", "           wl-a-10      [000] .....     1.000000: my_new_event: a=1\n")])
        XCTAssertEqual(value(j, "trace.unmapped_by_name.my_new_event") as? Int, 1)
    }

    // MARK: The readers of issue 14 (perf script of any event, pipe/-z perf.data, gzip/xz/zstd, --kallsyms)

    static let tools = repoRoot.appendingPathComponent("SampleTraces/tools").path

    /// A perf script line with neither an `EVENT:` column nor a pid, `[cpu]` or time column is malformed
    /// (counted, fatal with --strict); the call chain under it is not given to the sample before.
    func testPerfScriptLineWithoutColumns() throws {
        let text = """
        bash 14211   402.819107:     500000 cpu-clock:
        \t            90c0 do_lookup_x+0x360 (/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)

        just some words
        \t            90c0 do_lookup_x+0x360 (/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)
        bash 14211   402.819607:     500000 cpu-clock:

        """
        let path = file("ps.txt", text)
        let j = try report([path, "--format-in", "perf-script"])
        XCTAssertEqual(value(j, "trace.events") as? Int, 2)
        XCTAssertEqual(value(j, "trace.stack_traces") as? Int, 1)
        XCTAssertEqual(value(j, "trace.malformed") as? Int, 1)
        let strict = try runTool(["report", path, "--format-in", "perf-script", "--strict"])
        XCTAssertNotEqual(strict.status, 0)
        XCTAssertTrue(strict.err.contains("\(path):4:"), strict.err)
    }

    /// A multi-line trace_marker write is one event, also with --strict.
    func testMultiLineMarkerIsNotMalformed() throws {
        let path = file("marker.txt", """
                  printf-13747   [001] ...1.   384.748085: tracing_mark_write: one write:
        second line
        third line
                  printf-13747   [001] ...1.   384.748097: tracing_mark_write: next

        """)
        let r = try runTool(["report", path, "--strict", "--format", "json"])
        XCTAssertEqual(r.status, 0, r.err)
        let j = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        XCTAssertEqual(value(j, "trace.events") as? Int, 2)
        XCTAssertEqual(value(j, "trace.malformed") as? Int, 0)
    }

    /// Damaged pipe-mode and -z perf.data, and damaged gzip/xz/zstd: one line naming the file, exit non-zero.
    func testDamagedNewBinaryInputs() throws {
        func damaged(_ name: String, _ edit: (inout [UInt8]) -> Void) throws -> String {
            var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.tools + "/" + name)))
            edit(&b)
            return file("bad-" + name, Data(b))
        }
        var cases: [String] = []
        // Pipe mode cut inside its tracing data.
        cases.append(try damaged("mixed-pipe.perf.data") { $0 = Array($0.prefix(6000)) })
        // -z: the compressed bytes of every COMPRESSED record flipped.
        cases.append(try damaged("mixed-zstd.perf.data") { b in
            var off = Int(b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 40, as: UInt64.self) })
            let end = off + Int(b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 48, as: UInt64.self) })
            while off + 8 <= end {
                let type = b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off, as: UInt32.self) }
                let size = Int(b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off + 6, as: UInt16.self) })
                if size < 8 { break }
                if type == 81 { for k in stride(from: off + 12, to: off + size, by: 3) { b[k] ^= 0xA5 } }
                off += size
            }
        })
        for ext in ["gz", "xz", "zst"] {
            cases.append(try damaged("same-buffer.trace.txt." + ext) { b in for k in stride(from: 30, to: b.count - 8, by: 11) { b[k] ^= 0x3C } })
        }
        // trace.dat v7 with zlib sections (same-buffer.v7-zlib.dat; offsets from walking its option sections):
        // the event formats section (at 1885, 124619 zlib bytes) and the saved cmdlines section (at 127678, 239
        // bytes, parsed only by TraceDatMetadata) damaged behind their zlib headers, and CPU 0's data (at 131072:
        // `count u32`, then `compressed u32, uncompressed u32` and a zlib stream) damaged inside its first chunk.
        for (name, from, to) in [("formats", 1885 + 40, 1885 + 400), ("cmdlines", 127678 + 40, 127678 + 200), ("cpu0", 131072 + 40, 131072 + 400)] {
            let path = try damaged("same-buffer.v7-zlib.dat") { b in for k in stride(from: from, to: to, by: 7) { b[k] ^= 0x5A } }
            let renamed = dir.appendingPathComponent("bad-zlib-\(name).dat").path
            try FileManager.default.moveItem(atPath: path, toPath: renamed)
            cases.append(renamed)
        }
        for path in cases {
            let r = try runTool(["report", path])
            XCTAssertNotEqual(r.status, 0, path)
            let lines = r.err.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, r.err)
            XCTAssertTrue(r.err.contains(path), r.err)
        }
    }

    /// A trace.dat whose `kmem:mm_page_alloc` format libtraceevent cannot parse (`format:` spelt
    /// `formax:` in same-buffer.v6.dat, same length). Only directmap reads that event's fields (PAGE_ALLOC);
    /// the other models count its 790 records by name, which the format's own `name:` and `ID:` lines
    /// give, so they report as before. With directmap it is one line naming the event, exit 2.
    func testUnparsableFormatMattersOnlyToTheModelsThatReadIt() throws {
        let v6 = try TraceInput(path: Self.tools + "/same-buffer.v6.dat.lz4").withWholeFile { file, _ in [UInt8](file.bytes) }
        let name = Array("name: mm_page_alloc\nID: ".utf8)
        guard let at = (0...(v6.count - name.count)).first(where: { v6[$0..<$0 + name.count].elementsEqual(name) }),
              let f = (at..<min(v6.count, at + 64)).first(where: { v6[$0..<$0 + 8].elementsEqual(Array("format:\n".utf8)) }) else {
            return XCTFail("no mm_page_alloc format in the v6 sample")
        }
        var damaged = v6
        damaged[f + 6] = UInt8(ascii: "x")
        let path = file("unparsable-page-alloc.dat", Data(damaged))
        let highmem = try runTool(["report", path, "--model", "highmem", "--format", "json"])
        XCTAssertEqual(highmem.status, 0, highmem.err)
        XCTAssertTrue(highmem.out.contains("\"events\" : 798"), highmem.out.prefix(400) + "")
        let directmap = try runTool(["report", path, "--model", "directmap"])
        XCTAssertEqual(directmap.status, 2)
        XCTAssertEqual(directmap.err.split(separator: "\n").count, 1, directmap.err)
        XCTAssertTrue(directmap.err.contains("mm_page_alloc") && directmap.err.contains(path), directmap.err)
    }

    /// A kprobe that trace-cmd printed as a bare address and whose event name names no probed function the
    /// probe map knows: one warning line pointing at --kallsyms; none once --kallsyms names it.
    func testUnnamedBareAddressKprobeIsWarnedAbout() throws {
        let trace = file("r.txt", "cpus=1\n          init-1     [000]     5.009825: my_fault_probe:       (ffffffff812d2af0) vma=0x1 address=0x2 flags=0x255\n")
        let r = try runTool(["report", trace])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("my_fault_probe (1)") && r.err.contains("--kallsyms"), r.err)
        let ks = file("kallsyms", "ffffffff812d2af0 T handle_mm_fault\nffffffff812d2f00 T other\n")
        let named = try runTool(["report", trace, "--kallsyms", ks])
        XCTAssertEqual(named.status, 0, named.err)
        XCTAssertFalse(named.err.contains("bare address"), named.err)
    }

    /// --kallsyms with a file that holds no symbols (what a non-root read of /proc/kallsyms gives: zero addresses).
    func testKallsymsWithoutSymbols() throws {
        let ks = file("kallsyms", "0000000000000000 T _text\n0000000000000000 T handle_mm_fault\n")
        let trace = file("t.txt", "          init-1     [001]     5.009825: handle_mm_fault:      (ffffffff812d2af0) vma=0x1 address=0x2 flags=0x255\n")
        let r = try runTool(["report", trace, "--kallsyms", ks])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("no `ADDRESS TYPE NAME` lines"), r.err)
    }
}
