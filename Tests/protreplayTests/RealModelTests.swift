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
