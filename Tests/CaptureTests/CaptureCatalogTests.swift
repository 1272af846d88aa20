import XCTest
import Foundation
@testable import Capture
import EventModel

/// The capture catalog against the probe map and against what loaded in the real captures.
final class CaptureCatalogTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every probe the catalog installs is read by a DefaultProbes rule (a mapping or a deliberate IGNORE),
    /// on the event name or on the function, so capture and probe map cannot disagree.
    func testEveryCatalogProbeHasAProbeMapRule() {
        let map = ProbeMap()
        for p in CaptureCatalog.probes {
            XCTAssertNotNil(map.rule(event: p.event, function: p.function, isReturn: p.isReturn),
                            "\(p.group)/\(p.event) on \(p.function)\(p.isReturn ? "%return" : "") has no DefaultProbes rule")
        }
    }

    func testEventNamesAreUnique() {
        let names = CaptureCatalog.probes.map { $0.group + "/" + $0.event }
        XCTAssertEqual(names.count, Set(names).count)
    }

    /// `SampleTraces/real/<capture>/kprobe_events`: what the kernel accepted, as it prints it back
    /// (`r10:` = kretprobe with the default maxactive). For every probe the catalog shares with a capture
    /// (same group/event), the generated line must name the same function and kind, and every argument
    /// both have must be fetched identically.
    func testGeneratedDefinitionsMatchWhatLoadedInTheRealCaptures() throws {
        let captures = [("6.1.0-50-686-pae-i386-workload", ArchABI.i386), ("6.1.0-50-s390x-s390x-workload", .s390x),
                        ("6.1.0-56-amd64-x86_64-workload", .x86_64)]
        for (dir, abi) in captures {
            let text = try String(contentsOf: Self.root.appendingPathComponent("SampleTraces/real/\(dir)/kprobe_events"), encoding: .utf8)
            var compared = 0
            for line in text.split(separator: "\n") {
                let loaded = Definition(String(line))
                guard let probe = CaptureCatalog.probes.first(where: { $0.group + "/" + $0.event == loaded.name }) else { continue }
                let mine = Definition(probe.definition(for: abi))
                XCTAssertEqual(mine.kind, loaded.kind, "\(dir): \(loaded.name)")
                XCTAssertEqual(mine.function, loaded.function, "\(dir): \(loaded.name)")
                var shared = 0
                for (name, fetch) in loaded.args {
                    guard let m = mine.args[name] else { continue }
                    XCTAssertEqual(m, fetch, "\(dir): \(loaded.name) \(name)")
                    shared += 1
                }
                XCTAssert(shared > 0 || loaded.args.isEmpty, "\(dir): \(loaded.name) shares no argument")
                compared += 1
            }
            XCTAssertGreaterThan(compared, 25, "\(dir): too few probes compared")
        }
    }

    /// The manual lines `docs/capturing.md` lists (`echo '...' >> kprobe_events`) are the catalog's, for one of the
    /// arches the docs show (x86_64, i386, s390x): same function and kind, every argument fetched the same way.
    func testDocsCapturingLinesAreTheCatalogs() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docs/capturing.md"), encoding: .utf8)
        var checked = 0
        for line in text.split(separator: "\n") where line.hasPrefix("echo '") && line.hasSuffix("' >> kprobe_events") {
            let def = Definition(String(line.dropFirst(6).dropLast(18)))
            guard let probe = CaptureCatalog.probes.first(where: { $0.group + "/" + $0.event == def.name }) else {
                XCTFail("docs/capturing.md probes \(def.name), which the capture catalog does not have"); continue
            }
            let matches = [ArchABI.x86_64, .i386, .s390x].contains { abi in
                let mine = Definition(probe.definition(for: abi))
                return mine.kind == def.kind && mine.function == def.function && def.args.allSatisfy { mine.args[$0.key] == $0.value }
            }
            XCTAssert(matches, "docs/capturing.md: \(line) disagrees with the catalog")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 20)
    }

    /// The lines the issue names, exactly.
    func testProbesCommandLinesForEachArch() throws {
        let i386 = ProbeScript(abi: .i386, selection: try CaptureSelection(models: ["highmem"])).render(.kprobeEvents)
        XCTAssert(i386.contains("p:kmap/kmap_local_page __kmap_local_page_prot page=%ax:x32\n"), i386)
        XCTAssert(i386.contains("r:kmap/kmap_local_page_ret __kmap_local_page_prot vaddr=$retval:x32\n"))
        XCTAssert(i386.contains("p:kmap/kunmap_local kunmap_local_indexed vaddr=%ax:x32\n"))
        XCTAssert(i386.contains("exceptions:page_fault_kernel"))
        let s390 = ProbeScript(abi: .s390x, selection: try CaptureSelection(models: ["s390pv"])).render(.kprobeEvents)
        XCTAssert(s390.contains("p:s390/arch_make_page_accessible arch_make_page_accessible page=%r2:x64 flags=+0(%r2):x64\n"), s390)
        XCTAssert(s390.contains("p:gup/__gup_longterm_locked __gup_longterm_locked mm=%r2:x64 start=%r3:x64 nr_pages=%r4:u64 pages=%r5:x64 gup_flags=$arg6:x32\n"))
        let x86 = ProbeScript(abi: .x86_64, selection: try CaptureSelection(models: ["directmap"])).render(.kprobeEvents)
        XCTAssert(x86.contains("p:dmap/set_direct_map_invalid_noflush set_direct_map_invalid_noflush page=%di:x64 vmemmap_base=@vmemmap_base:x64 page_offset_base=@page_offset_base:x64\n"), x86)
        XCTAssertFalse(x86.contains("kmap_local"), "directmap alone needs no kmap probes")
        XCTAssert(x86.contains("trace-cmd record -C global"))
    }

    func testArgumentsPastTheRegistersUseArgN() {
        XCTAssertEqual(ArchABI.i386.argument(4), "$arg4")
        XCTAssertEqual(ArchABI.x86_64.argument(6), "%r9")
        XCTAssertEqual(ArchABI.arm64.argument(1), "%x0")
        XCTAssertEqual(ArchABI.arm.argument(5), "$arg5")
        XCTAssertEqual(ArchABI.named("i686"), .i386)
        XCTAssertEqual(ArchABI.named("aarch64"), .arm64)
    }

    func testKernelVersionBoundsLeaveOutRenamedFunctions() throws {
        let old = try CaptureSelection(models: ["s390pv"], kernel: KernelVersion(parsing: "6.1.0-50-s390x"))
        XCTAssert(old.probes.contains { $0.function == "generic_file_splice_read" })
        XCTAssertFalse(old.probes.contains { $0.function == "filemap_splice_read" })
        let new = try CaptureSelection(models: ["s390pv"], kernel: KernelVersion(parsing: "6.18.44-fc"))
        XCTAssert(new.probes.contains { $0.function == "filemap_splice_read" })
        XCTAssertFalse(new.probes.contains { $0.function == "pipe_to_sendpage" })
        XCTAssertThrowsError(try CaptureSelection(models: ["nosuch"]))
    }

    /// This machine's BTF (when readable): folio.index and vm_fault.address where Debian 6.1 has them on LP64
    /// (both layouts are stable since folios), and the kernel's functions include one the catalog probes.
    func testBTFOfTheRunningKernel() throws {
        let path = "/sys/kernel/btf/vmlinux"
        guard FileManager.default.isReadableFile(atPath: path) else { throw XCTSkip("no readable \(path)") }
        let btf = try BTF(path: path)
        XCTAssert(btf.functionNames.contains("get_user_pages_fast") || btf.functionNames.contains("pin_user_pages"))
        if MemoryLayout<Int>.size == 8 {
            XCTAssertEqual(btf.offset(of: "address", in: "vm_fault"), 24)
            XCTAssertEqual(btf.offset(of: "page", in: "pipe_buffer"), 0)
            XCTAssertNotNil(btf.offset(of: "index", in: "folio"))
        }
    }
}

/// A kprobe_events line taken apart: `p:group/event function name=fetch:type ...`.
struct Definition {
    var kind = "", name = "", function = ""
    var args: [String: String] = [:]
    init(_ line: String) {
        let f = line.split(separator: " ")
        guard f.count >= 2 else { return }
        let head = f[0].split(separator: ":", maxSplits: 1)
        kind = String(head[0].prefix(1))
        name = head.count > 1 ? String(head[1]) : ""
        function = String(f[1])
        for a in f.dropFirst(2) {
            let kv = a.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { args[String(kv[0])] = String(kv[1]) }
        }
    }
}

extension CaptureCatalogTests {
    /// tracefs and procfs files report size 0: the list of probeable functions must still be read in full.
    func testProbeableFunctionsOfThisKernelAreRead() throws {
        let dir = "/sys/kernel/tracing"
        guard FileManager.default.isReadableFile(atPath: dir + "/available_filter_functions")
                || FileManager.default.isReadableFile(atPath: "/proc/kallsyms") else { throw XCTSkip("no function list readable") }
        let functions = KernelHost.probeableFunctions(tracingDir: dir)
        XCTAssertGreaterThan(functions.count, 1000)
        XCTAssert(functions.contains("schedule") || functions.contains("do_sys_open") || functions.contains("vfs_read"))
    }
}

extension CaptureCatalogTests {
    /// The retry for kernels that reject `@SYM` fetchargs (no CONFIG_KALLSYMS_ALL: Debian 686-pae, s390x).
    func testDefinitionWithoutSymbols() throws {
        let p = try XCTUnwrap(CaptureCatalog.probes.first { $0.event == "set_direct_map_invalid_noflush" })
        XCTAssert(p.readsSymbols)
        XCTAssertEqual(p.definition(for: .x86_64, withoutSymbols: true),
                       "p:dmap/set_direct_map_invalid_noflush set_direct_map_invalid_noflush page=%di:x64")
        XCTAssertEqual(p.definition(for: .i386), "p:dmap/set_direct_map_invalid_noflush set_direct_map_invalid_noflush page=%ax:x32")
    }
}
