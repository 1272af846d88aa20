import XCTest
import Foundation
@testable import protreplay

/// The kernel-vs-kernel captures (`SampleTraces/real/*-compare`, issue 13): the same workload
/// (`scripts/workload/wl.c`, phases `pkmap`, `preempt`, `pfnmap` added) on two kernels each. Every number is
/// an independent count over the trace text (grep/awk in the comments, run in the capture's directory with
/// `T() { lz4 -dc trace.lz4; }` and `A=../../../scripts/workload`), or a model number whose rule is exact.
final class RealKernelPairTests: XCTestCase {
    func trace(_ name: String) -> String { realDir.appendingPathComponent("\(name)/trace.lz4").path }
    let i386 = "6.1.0-50-686-pae-i386-compare"
    let i386RT = "6.1.0-50-rt-686-pae-i386-compare"

    /// PREEMPT_RT next to non-RT (spec E8): a kmap_local section is preemptible on RT (migrate_disable only), so
    /// the effective window of a held slot is cut at every switch away from its task.
    ///   `T | awk -f $A/kmap-local-preempted.awk`  non-RT -> switches=0 slot_pieces=0 pending=0
    ///                                             RT     -> switches=53 slot_pieces=55 pending=12 R+=53
    ///   `T | awk -f $A/highmem-kmap-local.awk`    non-RT -> highmem=9671; RT -> highmem=10688
    /// (12 of the 55 fell between a kmap_local_page entry and its nested kmap_local_pfn: scenario
    /// highmem-preempt-before-push. The kernel's own `T | grep -c 'kmap_local_sched_out: ('`: 0 and 42; it counts
    /// from the slot push inside __kmap_local_pfn_prot to the pop inside kunmap_local_indexed; see README.)
    func testPreemptedKmapLocalWindowsOnRTOnly() throws {
        for (name, pushes, pieces) in [(i386, 9671, 0), (i386RT, 10688, 55)] {
            let j = try report([trace(name), "--model", "highmem"])
            XCTAssertEqual(value(j, "counters.kmap_local_pushes") as? Int, pushes, name)
            XCTAssertEqual(value(j, "exposure.effective.by_close_cause.sched_out") as? Int ?? 0, pieces, name)
            XCTAssertEqual(value(j, "exposure.effective.by_close_cause.unmap") as? Int, pushes, name)
            // One effective window per on-CPU piece: the pushes, plus one per cut.
            XCTAssertEqual(value(j, "exposure.effective.by_scope.ctx.windows") as? Int, pushes + pieces, name)
            XCTAssertEqual(value(j, "exposure.granted.by_scope.ctx.windows") as? Int, pushes, name)
        }
    }

    /// pkmap slots recycled: phase `pkmap` kmap()s 1100 distinct highmem pages through /proc/self/mem, more than
    /// the 512 PAE pkmap slots, so map_new_virtual() wraps and calls flush_all_zero_pkmaps() (probed).
    ///   `T | grep -c 'flush_all_zero_pkmaps: ('`                         -> 2 (both kernels)
    ///   `T | grep -c ' kmap_high: (kmap_high+0x0'`                        -> 1116
    ///   `T | grep 'set_page_address:' | grep -vc 'virtual=0x0$'`          -> 1100 slot installs
    ///   `T | grep -c 'set_page_address: .* virtual=0x0$'`                -> 1023 slots cleared (511 + 512 by flush)
    /// Every install's effective window ends at an observed flush (1023) or is still stale at the end (77).
    func testPkmapFlushesObserved() throws {
        for name in [i386, i386RT] {
            let j = try report([trace(name), "--model", "highmem"])
            XCTAssertEqual(value(j, "counters.pkmap_flushes") as? Int, 2, name)
            XCTAssertEqual(value(j, "counters.pkmap_flushes_inferred") as? Int, 0, name)
            XCTAssertEqual(value(j, "counters.pkmap_installs") as? Int, 1100, name)
            XCTAssertEqual(value(j, "exposure.effective.by_close_cause.flush") as? Int, 1023, name)
            XCTAssertEqual(value(j, "exposure.effective.by_close_cause.trace_end") as? Int, 1100 - 1023, name)
            XCTAssertEqual(value(j, "exposure.granted.by_scope.global.windows") as? Int, 1116, name)
        }
    }

    /// Seed 003: gup on a VM_IO|VM_PFNMAP mapping (mmap of /dev/mem at 0xa0000) is refused.
    ///   `T | grep 'check_vma_flags: (' | grep -c wl-pfnmap`        -> 4 (vm_flags=0x50444fb: 0x4000|0x400 set)
    ///   `T | grep 'check_vma_flags_ret: ' | grep wl-pfnmap | grep -c 'ret=-14'` -> 4
    ///   `T | grep wl-pfnmap | grep -c 'try_grab_'`                   -> 0 (no page grabbed in the phase)
    func testGupRefusesPfnmapOnI386() throws {
        for name in [i386, i386RT] {
            let j = try report([trace(name), "--model", "s390pv"])
            XCTAssertEqual(value(j, "counters.gup_pfnmap_refused") as? Int, 4, name)
            XCTAssertEqual(value(j, "anomalies.by_kind.gup_special_pfn") as? Int, 0, name)
        }
    }

    let x86_61 = "6.1.0-56-amd64-x86_64-compare"
    let x86_612 = "6.12.107+deb12-amd64-x86_64-compare"

    /// x86_64 6.1 next to 6.12: O_DIRECT pins its pages on 6.12 (FOLL_PIN since 6.5) where 6.1 takes
    /// references (FOLL_GET). FOLL_PIN is 0x40000 on 6.1 and 0x80000 (1<<19) on 6.12 (`--foll-pin`).
    ///   6.1:  `T | grep -E 'try_grab_(folio|page): ' | grep -cE 'flags=0x[0-9a-f]*[4-7c-f][0-9a-f]{4}$'`  -> 32 of 1290
    ///   6.12: `T | grep -E 'try_grab_folio(_fast)?: ' | grep -cE 'flags=0x[0-9a-f]*[89a-f][0-9a-f]{4}$'`   -> 160 of 1290
    ///   `T | grep wl-odirect | grep -cE 'try_grab_'` -> 128 on both (64 pages written, 64 read)
    ///   pinned releases: `T | grep 'gup_put_folio: ' | grep -cE '<same FOLL_PIN pattern>'` -> 32 / 160
    /// The gup-fast grab is `try_grab_folio_fast(page, ...)` on 6.12, `try_grab_folio(page, ...)` on 6.1
    /// (6.12's `try_grab_folio` takes a folio: the slow path); see the probe files.
    func testX86PinsMovedFromGetToPin() throws {
        for (name, follPin, pins, gets) in [(x86_61, "0x40000", 32, 1258), (x86_612, "0x80000", 160, 1130)] {
            let j = try report([trace(name), "--model", "s390pv", "--foll-pin", follPin])
            XCTAssertEqual(value(j, "counters.pages_pinned") as? Int, pins, name)
            XCTAssertEqual(value(j, "counters.pages_get") as? Int, gets, name)
            XCTAssertEqual(value(j, "anomalies.by_kind.release_without_pin") as? Int, 0, name)
            // Seed 003 on both: `T | grep 'check_vma_flags_ret: ' | grep wl-pfnmap | grep -c 'ret=-14'` -> 4;
            // `T | grep wl-pfnmap | grep -c 'try_grab_'` -> 0.
            XCTAssertEqual(value(j, "counters.gup_pfnmap_refused") as? Int, 4, name)
            XCTAssertEqual(value(j, "anomalies.by_kind.gup_special_pfn") as? Int, 0, name)
        }
    }

    /// The same secretmem phase on both: `T | grep -c 'set_direct_map_invalid_noflush: ('` -> 4,
    /// `T | grep -c 'set_direct_map_default_noflush: ('` -> 4 (6.1 and 6.12).
    func testX86SecretmemRemovalsOnBoth() throws {
        for name in [x86_61, x86_612] {
            let j = try report([trace(name), "--model", "directmap"])
            XCTAssertEqual(value(j, "counters.removals") as? Int, 4, name)
            XCTAssertEqual(value(j, "counters.restores") as? Int, 4, name)
        }
    }

    /// arm32 HIGHMEM (armmp-lpae): kmap_local windows equal the independent count, pkmap slots recycled.
    ///   `T | awk -f $A/highmem-kmap-local.awk` -> kmap_local_page=11952 kmap_local_pfn=10603 highmem=10603 lowmem=1349
    ///   `T | awk -f $A/kmap-local-preempted.awk` -> switches=0 slot_pieces=0 pending=0
    ///   `T | grep -c 'flush_all_zero_pkmaps: ('` -> 2; `T | grep -c 'set_page_address: .* virtual=0x0$'` -> 1023
    ///   `T | grep 'check_vma_flags_ret: ' | grep wl-pfnmap | grep -c 'ret=-14'` -> 4
    func testArm32Highmem() throws {
        let name = "6.1.0-50-armmp-lpae-armhf-compare"
        let j = try report([trace(name), "--model", "highmem"])
        XCTAssertEqual(value(j, "counters.kmap_local_pushes") as? Int, 10603)
        XCTAssertEqual(value(j, "counters.kmap_local_lowmem") as? Int, 1349)
        XCTAssertEqual(value(j, "exposure.granted.by_scope.ctx.windows") as? Int, 10603)
        XCTAssertEqual(value(j, "exposure.effective.by_scope.ctx.windows") as? Int, 10603)
        XCTAssertEqual(value(j, "exposure.effective.by_close_cause.unmap") as? Int, 10603)
        XCTAssertEqual(value(j, "counters.pkmap_flushes") as? Int, 2)
        XCTAssertEqual(value(j, "counters.pkmap_flushes_inferred") as? Int, 0)
        XCTAssertEqual(value(j, "exposure.effective.by_close_cause.flush") as? Int, 1023)
        let s = try report([trace(name), "--model", "s390pv"])
        XCTAssertEqual(value(s, "counters.gup_pfnmap_refused") as? Int, 4)
    }

    /// `docs/examples/compare/*.txt` are what `scripts/examples` writes (the tool run from the repository root).
    func testCommittedKernelComparisonsMatch() throws {
        let cwd = FileManager.default.currentDirectoryPath
        _ = FileManager.default.changeCurrentDirectoryPath(repoRoot.path)
        defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
        let r = "SampleTraces/real/"
        let i386 = try runTool(["compare", "686-pae=\(r)6.1.0-50-686-pae-i386-compare/trace.lz4",
                                "rt-686-pae=\(r)6.1.0-50-rt-686-pae-i386-compare/trace.lz4",
                                "--model", "highmem,s390pv", "--changed-only", "--quiet"])
        XCTAssertEqual(i386.status, 0, i386.err)
        XCTAssertEqual(i386.out, try String(contentsOfFile: "docs/examples/compare/i386-686-pae-vs-rt-686-pae.txt", encoding: .utf8),
                       "docs/examples/compare/i386-686-pae-vs-rt-686-pae.txt is stale: run scripts/examples")
        let x86 = try runTool(["compare", "6.1=docs/examples/compare/x86_64-6.1.0-56.json",
                               "6.12=docs/examples/compare/x86_64-6.12.107.json", "--changed-only", "--quiet"])
        XCTAssertEqual(x86.status, 0, x86.err)
        XCTAssertEqual(x86.out, try String(contentsOfFile: "docs/examples/compare/x86_64-6.1-vs-6.12.txt", encoding: .utf8),
                       "docs/examples/compare/x86_64-6.1-vs-6.12.txt is stale: run scripts/examples")
        // The saved reports behind the x86_64 comparison, and the numbers its reading rests on.
        for (file, pins, gets) in [("x86_64-6.1.0-56.json", 32, 1258), ("x86_64-6.12.107.json", 160, 1130)] {
            let j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "docs/examples/compare/\(file)"))) as! [String: Any]
            let s390 = (j["models"] as? [[String: Any]])?.first { ($0["model"] as? [String: Any])?["name"] as? String == "s390pv" }
            XCTAssertEqual(value(s390 ?? [:], "counters.pages_pinned") as? Int, pins, file)
            XCTAssertEqual(value(s390 ?? [:], "counters.pages_get") as? Int, gets, file)
        }
    }

    /// Seed 004 on a real kernel: a module reads a removed secretmem frame through its direct-map alias with
    /// copy_from_kernel_nofault() (fixed up, no oops), in `SampleTraces/real/6.1.0-56-amd64-x86_64-dmstray/trace`:
    ///   `grep 'page_fault_kernel: address=0xffff888' trace` -> 1 line, address=0xffff88807fd9b000 error_code=0x0
    ///   `grep 'set_direct_map_invalid_noflush_ret' trace | grep -c '(secretmem_fault'` -> 5 (removals)
    func testDirectMapStrayReadOfRemovedFrame() throws {
        let j = try report([realDir.appendingPathComponent("6.1.0-56-amd64-x86_64-dmstray/trace").path, "--model", "directmap"])
        XCTAssertEqual(value(j, "unprotected_accesses.by_class.removed_direct_map") as? Int, 1)
        XCTAssertEqual(value(j, "counters.removals") as? Int, 5)
        XCTAssertEqual(value(j, "counters.restores") as? Int, 5)
    }
}
