import EventModel
import Replay

extension HighmemModel {
    /// docs/models.md, highmem "Needs". The kmap functions exist only on a HIGHMEM kernel (on x86_64 they
    /// are static inline), so any of them firing shows the traced kernel has the mechanism.
    static let requirements = ModelRequirements(
        needs: [
            EventRequirement([.kprobe("__kmap_local_page_prot"), .kprobe("__kmap_local_pfn_prot")],
                             gives: "kmap_local_page/kmap_atomic calls: fixmap grants open",
                             withoutIt: "no kmap_local grant is visible: fixmap windows cannot be measured", essential: true),
            EventRequirement([.kprobe("__kmap_local_pfn_prot")],
                             gives: "a fixmap slot is pushed (the page is highmem)",
                             withoutIt: "highmem and lowmem kmap_local calls cannot be told apart: every kmap_local_page counts as lowmem (no window)"),
            EventRequirement([.kretprobe("__kmap_local_page_prot")],
                             gives: "the return of kmap_local_page (a lowmem page returns without a slot)",
                             withoutIt: "a kmap_local_page is decided only at the context's next kmap-family event"),
            EventRequirement([.kprobe("kunmap_local_indexed")],
                             gives: "kunmap_local: fixmap windows close (pop-top)",
                             withoutIt: "fixmap windows never close before the end of the trace (censored lower bounds)"),
            EventRequirement([.kprobe("kmap_high")],
                             gives: "kmap() of a highmem page: pkmap grants open",
                             withoutIt: "no pkmap grant is visible: pkmap windows cannot be measured"),
            EventRequirement([.kretprobe("kmap_high")],
                             gives: "the pkmap slot address (slot installs, slot-search wraps)",
                             withoutIt: "pkmap slots are unknown: no inferred flush, no use_after_unmap on pkmap addresses"),
            EventRequirement([.kprobe("kunmap_high")],
                             gives: "kunmap(): pkmap grants close",
                             withoutIt: "pkmap granted windows never close before the end of the trace (censored lower bounds)"),
            EventRequirement([.kprobe("__kmap_flush_unused"), .kprobe("flush_all_zero_pkmaps"), .kprobe("kmap_flush_unused")],
                             gives: "pkmap flushes: stale pkmap slots (count 1) are cleared",
                             withoutIt: "the end of a stale pkmap slot is not observed: effective pkmap windows end at an inferred flush or the trace end (uncertain)"),
            CommonRequirements.contexts,
            CommonRequirements.irqs,
            CommonRequirements.forkExit,
            EventRequirement([.tracepoint("page_fault_kernel")],
                             gives: "not-present kernel faults on pkmap/fixmap addresses (use_after_unmap)",
                             withoutIt: "no unprotected access is observable"),
        ],
        mechanism: [.kprobe("__kmap_local_page_prot"), .kprobe("__kmap_local_pfn_prot"), .kprobe("kunmap_local_indexed"),
                    .kprobe("kmap_high"), .kprobe("kunmap_high")],
        observedMeans: "the traced kernel has HIGHMEM: its kmap_high/__kmap_local_* functions fired",
        whatIfMeans: "no HIGHMEM kmap function fired in this trace: nothing here was measured on a HIGHMEM kernel")

    public var requirements: ModelRequirements { HighmemModel.requirements }

    /// docs/models.md "highmem": no options.
    public static let descriptor = ModelDescriptor(name: "highmem", options: [], requirements: requirements) { ctx, _ in
        HighmemModel(resolver: ctx.resolver)
    }
}
