import XCTest
import Foundation
@testable import protreplay

let realDir = repoRoot.appendingPathComponent("SampleTraces/real")

/// Key counts of each model on the real samples, checked against independent counts over the trace
/// text (grep/awk in the comments, run in the trace's directory).
final class RealModelTests: XCTestCase {
    func modelJSON(_ json: [String: Any], _ name: String) -> [String: Any]? {
        if let models = json["models"] as? [[String: Any]] {
            return models.first { ($0["model"] as? [String: Any])?["name"] as? String == name }
        }
        return (json["model"] as? [String: Any])?["name"] as? String == name ? json : nil
    }

    /// s390x guest: make-accessible calls by caller.
    ///   `grep -c 'arch_make_page_accessible_ret: ' trace`                                          -> 151 (all `ret=0`)
    ///   `grep 'arch_make_page_accessible_ret: ' trace | grep -c '(__folio_start_writeback+'`       -> 119
    ///   `grep 'arch_make_page_accessible_ret: ' trace | grep -c '(follow_page_pte'`               -> 32
    func testS390MakeAccessibleFromGupAndWriteback() throws {
        let j = try report([realDir.appendingPathComponent("6.1.0-50-s390x-s390x-workload/trace").path, "--model", "auto"])
        let m = try XCTUnwrap(modelJSON(j, "s390pv"))
        XCTAssertEqual(value(m, "counters.make_accessible_from_writeback") as? Int, 119)
        XCTAssertEqual(value(m, "counters.make_accessible_from_gup") as? Int, 32)
        XCTAssertEqual(value(m, "counters.make_accessible_from_other") as? Int, 0)
        XCTAssertEqual(value(m, "counters.make_accessible_implied_gup") as? Int, 0)
        XCTAssertEqual(value(m, "counters.make_accessible_implied_writeback") as? Int, 0)
        XCTAssertEqual(value(m, "anomalies.by_kind.make_accessible_failed") as? Int, 0)
    }

    /// s390pv `io_hold` of pins: from the entry of the `pin_user_pages*` call to the entry of the unpin call that
    /// releases the page (`unpin_user_page page=P`, or `unpin_user_pages_dirty_lock pages=A npages=N` for the
    /// pages the pin call with `pages=A` grabbed; its nested `unpin_user_pages` and `gup_put_folio`s are the same
    /// release). The s390x kernel inlines `gup_put_folio` into `unpin_user_page` (16 `unpin_user_page` lines, no
    /// put after them), so io_uring's 16 pins are released by the API entries alone; before that rule they were
    /// censored at the end of the trace (2.175 s of the 2.416 s granted total).
    /// Independent count (an awk script applying exactly that rule to the trace text, no code shared):
    ///   x86_64 `trace` -> 32 windows, 449,143,000 ns; s390x `trace` -> 32, 605,221,000; i386 `lz4 -dc trace.lz4` ->
    ///   32, 723,737,000; 0 left open in each. By hand for io_uring on s390x: `pin_user_pages` entry 7.561088,
    ///   `unpin_user_page` entries 7.598333 .. 7.598484 -> 16 windows of 37.245 .. 37.396 ms.
    ///   `grep -c 'unpin_user_page: (' trace` -> 16, `grep -c 'unpin_user_pages_dirty_lock: (' trace` -> 2: 18 calls.
    func testPinsHeldFromTheGupEntryToTheUnpinEntry() throws {
        let cases: [(String, Int)] = [
            (realDir.appendingPathComponent("6.1.0-56-amd64-x86_64-workload/trace").path, 449_143_000),
            (realDir.appendingPathComponent("6.1.0-50-s390x-s390x-workload/trace").path, 605_221_000),
            (i386Trace, 723_737_000),
        ]
        for (path, total) in cases {
            let j = try report([path, "--model", "s390pv"])
            XCTAssertEqual(value(j, "exposure.granted.by_api.gup_pin.windows") as? Int, 32, path)
            XCTAssertEqual(value(j, "exposure.granted.by_api.gup_pin.total_ns") as? Int, total, path)
            XCTAssertEqual(value(j, "exposure.granted.censored") as? Int, 0, path)
            XCTAssertEqual(value(j, "counters.unpin_calls") as? Int, 18, path)
            XCTAssertEqual(value(j, "counters.pins_released") as? Int, 32, path)
            XCTAssertEqual(value(j, "counters.unpin_calls_unresolved") as? Int, 0, path)
            XCTAssertEqual(value(j, "anomalies.by_kind.release_without_pin") as? Int, 0, path)
        }
    }

    /// x86_64 guest: frames removed from and restored to the direct map by secretmem.
    ///   `grep -c 'set_direct_map_invalid_noflush: (' trace`   -> 4
    ///   `grep -c 'set_direct_map_default_noflush: (' trace`   -> 4
    ///   `grep -c 'flush_tlb_kernel_range: (' trace`           -> 4 (one per removed frame)
    ///   `grep -c 'secretmem_fault: (' trace`                  -> 4
    /// pins: `grep 'gup_put_folio: (' trace | grep -c 'flags=0x40000'` -> 32 (every pinned page unpinned)
    func testX86DirectMapAndPins() throws {
        let j = try report([realDir.appendingPathComponent("6.1.0-56-amd64-x86_64-workload/trace").path, "--model", "auto"])
        let d = try XCTUnwrap(modelJSON(j, "directmap"))
        XCTAssertEqual(value(d, "counters.removals") as? Int, 4)
        XCTAssertEqual(value(d, "counters.restores") as? Int, 4)
        XCTAssertEqual(value(d, "counters.tlb_flushes_matched") as? Int, 4)
        XCTAssertEqual(value(d, "exposure.intended.windows") as? Int, 4)
        XCTAssertEqual(value(d, "exposure.effective.by_api.stale_tlb.windows") as? Int, 4)
        XCTAssertEqual(value(d, "exposure.effective.by_api.residual.windows") as? Int, 4)
        let s = try XCTUnwrap(modelJSON(j, "s390pv"))
        XCTAssertEqual(value(s, "counters.pages_pinned") as? Int, 32)
        XCTAssertEqual(value(s, "anomalies.by_kind.release_without_pin") as? Int, 0)
    }

    /// i386 guest: memfd_secret hands out HIGHMEM pages, which have no direct-map alias: nothing is removed.
    ///   `grep -c 'set_direct_map_invalid_noflush: (' t`                        -> 4
    ///   `grep -c 'flush_tlb_kernel_range: .*start=0x0 end=0x1000' t`           -> 4 (page_address() of each is NULL)
    ///   `grep 'wl-secret.*mm_page_alloc: .*GFP_HIGHUSER' t` -> pfn 0x7fb0f..0x7fb12, all >= 0x38000 (896 MiB)
    /// Before, each frame got PRE_REMOVAL, STALE_TLB and a RESIDUAL censored at the end (155.5 ms granted).
    func testI386SecretmemHighmemIsNotARemoval() throws {
        let j = try report([i386Trace, "--model", "directmap"])
        XCTAssertEqual(value(j, "counters.removals") as? Int, 0)
        XCTAssertEqual(value(j, "counters.removals_without_alias") as? Int, 4)
        XCTAssertEqual(value(j, "counters.restores") as? Int, 0)
        XCTAssertEqual(value(j, "exposure.granted.windows") as? Int, 0)
        XCTAssertEqual(value(j, "exposure.effective.windows") as? Int, 0)
        XCTAssertEqual(value(j, "anomalies.total") as? Int, 0)
    }

    /// i386 guest: the pkmap flush probe failed (`probes-failed`: `kmap_flush_unused`, "NOT-IN-available_filter_functions"
    /// in `probed-functions`), so no stale slot's EFFECTIVE window can end at an observed flush.
    ///   `grep -c 'kmap_flush_unused\|flush_all_zero' t`                        -> 0
    ///   `grep -c ' kmap_high: (' t` -> 16, `grep -c 'kunmap_high: (' t` -> 16: every slot is stale (count 1) at the end;
    ///   `grep -o 'kmap_high_ret: .*vaddr=0x[0-9a-f]*' t | awk '{print $NF}' | sort -u | wc -l` -> 8 slots
    ///   (0xff001000 .. 0xff008000, rising: no wrap, no inferred flush); the 16 calls map 8 pages twice each (the
    ///   second call finds the page's slot still mapped at count 1). So 8 effective pkmap windows, stale at the end:
    ///   censored and uncertain.
    func testI386StalePkmapWindowsAreUncertainWithoutAFlushProbe() throws {
        let j = try report([i386Trace, "--model", "highmem"])
        XCTAssertEqual(value(j, "exposure.effective.by_scope.global.windows") as? Int, 8)
        XCTAssertEqual(value(j, "exposure.effective.by_scope.global.censored") as? Int, 8)
        XCTAssertEqual(value(j, "exposure.effective.by_scope.global.uncertain") as? Int, 8)
        XCTAssertEqual(value(j, "exposure.effective.by_scope.ctx.uncertain") as? Int, 0)
    }

    /// i386 guest replayed as "what if these pages were PKS-protected" (A0, relaxed):
    ///   grants  = `grep -c 'kmap_local_page: (__kmap_local_page_prot+0x0' t`  -> 2740
    ///   revokes = `grep -c 'kunmap_local: (kunmap_local_indexed' t`          -> 2740
    ///   kmap()  = `grep -c ' kmap_high: (kmap_high+0x0' t`                   -> 16, each `global_kmap_unsupported`
    ///   and each mapper's implied access is `global_kmap`, fixed up in relaxed mode.
    func testI386WhatIfPKS() throws {
        let j = try report([i386Trace, "--model", "pks"])
        XCTAssertEqual(value(j, "counters.grants") as? Int, 2740)
        XCTAssertEqual(value(j, "counters.revokes") as? Int, 2740)
        XCTAssertEqual(value(j, "anomalies.by_kind.global_kmap_unsupported") as? Int, 16)
        XCTAssertEqual(value(j, "unprotected_accesses.by_class.global_kmap") as? Int, 16)
        XCTAssertEqual(value(j, "unprotected_accesses.by_outcome.fixed_up") as? Int, 16)
        // A1 pardons them silently: no unprotected access at all.
        let a1 = try report([i386Trace, "--model", "pks", "--kmap-global", "global-unprotect"])
        XCTAssertEqual(value(a1, "unprotected_accesses.total") as? Int, 0)
        XCTAssertEqual(value(a1, "counters.a1_silent_fixups") as? Int, 16)
        // A2 pardons the first mapper access and the unprotect lasts until the context is left (spec §4.4, §4.5):
        // all 16 kmap()s are wl-procmem-248's (`grep 'kmap_high: (kmap_high+0x0' t | awk '{print $1}' | sort | uniq -c`
        // -> 16 wl-procmem-248), from 7.263281 to 7.265481, and 248 is not switched out in between
        // (`awk '$4>="7.263281:" && $4<="7.265481:"' t | grep -c 'prev_pid=248 '` -> 0): one access. Strict pardons
        // nothing: 16, each blocked.
        let a2 = try report([i386Trace, "--model", "pks", "--kmap-global", "flag-fault"])
        XCTAssertEqual(value(a2, "unprotected_accesses.total") as? Int, 1)
        XCTAssertEqual(value(a2, "unprotected_accesses.by_class.global_kmap") as? Int, 1)
        let a2strict = try report([i386Trace, "--model", "pks", "--kmap-global", "flag-fault", "--mode", "strict"])
        XCTAssertEqual(value(a2strict, "unprotected_accesses.by_outcome.blocked") as? Int, 16)
    }

    /// `--model auto` reports the models whose events the trace had, observed ones first, each with its basis.
    func testAutoPicksTheApplicableModelsObservedFirst() throws {
        func names(_ path: String) throws -> [String] {
            let j = try report([path, "--model", "auto"])
            let models = j["models"] as? [[String: Any]] ?? []
            return models.compactMap {
                guard let m = $0["model"] as? [String: Any], let n = m["name"] as? String, let b = m["basis"] as? String else { return nil }
                return "\(n):\(b)"
            }
        }
        // i386: `grep -c '__kmap_local_page_prot+0x0'` -> 2740 (a HIGHMEM kernel: highmem observed) and
        // `grep -c 'set_direct_map_invalid_noflush+0x0'` -> 4 (secretmem removals: directmap observed); no
        // `__pgmap_*`/`pks_update_*` (pks is a what-if) and no `gmap_make_secure`/`uv_destroy*` (s390pv too).
        XCTAssertEqual(try names(i386Trace), ["highmem:observed", "directmap:observed", "pks:what_if", "s390pv:what_if"])
        // x86_64: 4 removals; no secure-storage import or destroy.
        XCTAssertEqual(try names(realDir.appendingPathComponent("6.1.0-56-amd64-x86_64-workload/trace").path),
                       ["directmap:observed", "s390pv:what_if"])
        // s390x under TCG runs no protected guest: `grep -cE 'gmap_make_secure|gmap_convert_to_secure|uv_destroy'` -> 0.
        XCTAssertEqual(try names(realDir.appendingPathComponent("6.1.0-50-s390x-s390x-workload/trace").path), ["s390pv:what_if"])
    }
}
