import XCTest
import TraceIngest
import EventModel
import Replay
@testable import Models

/// The bound in docs/reliability.md ("Bounded live state") is bytes per entry × cap × maps; it uses
/// these sizes (key + value, inline). If a state struct grows past them, update the table there.
final class EntrySizeTests: XCTestCase {
    func testStateEntriesStayWithinTheDocumentedSizes() {
        func entry<K, V>(_: K.Type, _: V.Type) -> Int { MemoryLayout<K>.stride + MemoryLayout<V>.stride }
        let sizes: [(String, Int, Int)] = [
            // (map, measured inline bytes, documented)
            ("highmem.tasks", entry(Int32.self, KmapLocalStack.self), 44),
            ("highmem.kmap_local_slots", MemoryLayout<KmapLocalEntry>.stride, 96),
            ("highmem.pending_kmap_local", entry(ContextInstance.self, PendingLocalCall.self), 40),
            ("highmem.pending_switches", entry(ContextInstance.self, [PendingSwitch].self), 24),
            ("highmem.pending_switch", MemoryLayout<PendingSwitch>.stride, 32),
            ("highmem.pending_kmap_high", entry(ContextInstance.self, [UInt64].self), 24),
            ("highmem.pkmap_slots", entry(UInt64.self, PkmapSlot.self), 112),
            ("highmem.pkmap_grants", MemoryLayout<PkmapGrant>.stride, 48),
            ("pks.contexts", entry(ContextInstance.self, PKSModel.ContextState.self), 96),
            ("pks.local_grant_entries", MemoryLayout<PKSModel.LocalGrant>.stride, 48),
            ("pks.kmap_holds", MemoryLayout<PKSModel.GlobalKmap>.stride, 48),
            ("s390pv.frames", entry(UInt64.self, S390PVModel.Frame.self), 160),
            ("s390pv.gup_calls", entry(ContextInstance.self, S390PVModel.GupCall.self), 48),
            ("s390pv.pin_calls", entry(S390PVModel.PinCallKey.self, S390PVModel.PinnedCall.self), 32),
            ("s390pv.pinned_pages", MemoryLayout<(page: UInt64, refs: UInt32)>.stride, 16),
            ("s390pv.pin_calls_by_task", entry(Int32.self, S390PVModel.PinCallKey.self), 20),
            ("s390pv.unpin_calls", entry(ContextInstance.self, S390PVModel.UnpinCall.self), 64),
            ("directmap.frames", entry(UInt64.self, DirectMapModel.Frame.self), 104),
            ("directmap.awaiting_flush", entry(ContextInstance.self, UInt64.self), 24),
            ("directmap.frames_without_alias", MemoryLayout<UInt64>.stride, 8),
        ]
        for (map, measured, documented) in sizes {
            print("entry size \(map): \(measured) bytes")
            XCTAssertLessThanOrEqual(measured, documented, "\(map): update docs/reliability.md")
        }
    }
}
