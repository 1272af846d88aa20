import EventModel
import Replay

extension DirectMapModel {
    /// docs/models.md, directmap "Needs".
    static let requirements = ModelRequirements(
        needs: [
            EventRequirement([.kprobe("set_direct_map_invalid_noflush"), .kprobe("folio_zap_direct_map")],
                             gives: "direct-map removals (protected frames)",
                             withoutIt: "no removal is visible: nothing is protected", essential: true),
            EventRequirement([.kprobe("secretmem_fault"), .kprobe("secretmem_free_folio")],
                             gives: "secretmem faults and frees: which removals belong to secretmem",
                             withoutIt: "removals are attributed only by the stack or kretprobe caller"),
            EventRequirement([.kprobe("set_direct_map_default_noflush"), .kprobe("folio_restore_direct_map")],
                             gives: "restores of the direct map (residual windows open)",
                             withoutIt: "restores are unobservable: removed frames stay removed to the end of the trace"),
            EventRequirement([.kprobe("flush_tlb_kernel_range")],
                             gives: "kernel TLB flushes: the end of a stale_tlb window",
                             withoutIt: "the end of a stale_tlb window is not observed: it ends at the restore, free or trace end (uncertain)"),
            EventRequirement([.tracepoint("mm_page_free"), .kprobe("secretmem_free_folio")],
                             gives: "frees of removed frames: the end of a residual window (content zeroed)",
                             withoutIt: "the end of a residual window is not observed (uncertain)"),
            EventRequirement([.tracepoint("mm_page_alloc")],
                             gives: "the allocation inside a secretmem fault (pre_removal opens)",
                             withoutIt: "pre_removal windows open at the secretmem fault"),
            EventRequirement([.tracepoint("page_fault_kernel")],
                             gives: "not-present kernel faults on the direct-map address of a removed frame",
                             withoutIt: "no removed_direct_map access is observable"),
            EventRequirement([.kprobe("secretmem_mmap")],
                             gives: "secretmem mappings (gup attempts on them are refused)",
                             withoutIt: "refused gup attempts (counters.gup_refused) are unobservable"),
        ],
        mechanism: [.kprobe("set_direct_map_invalid_noflush"), .kprobe("folio_zap_direct_map")],
        observedMeans: "direct-map removals were traced on this kernel",
        whatIfMeans: "no direct-map removal in this trace: nothing here was measured on removed frames")

    public var requirements: ModelRequirements { DirectMapModel.requirements }

    /// docs/models.md "directmap": no options.
    public static let descriptor = ModelDescriptor(name: "directmap", options: [], requirements: requirements) { ctx, _ in
        DirectMapModel(resolver: ctx.resolver, symbols: ctx.symbols)
    }
}
