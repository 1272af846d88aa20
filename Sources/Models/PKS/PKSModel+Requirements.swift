import EventModel
import Replay

extension PKSModel {
    /// docs/models.md, pks "Needs". The pgmap/pks functions exist only on a kernel with the PKS series:
    /// without them every result is a what-if replay of the kmap-family calls as PKS grants.
    static let requirements = ModelRequirements(
        needs: [
            EventRequirement([.kprobe("__pgmap_set_readwrite"), .kprobe("__pgmap_mk_readwrite"),
                              .kprobe("__kmap_local_page_prot"), .kprobe("__kmap_local_pfn_prot"), .kprobe("kmap_high")],
                             gives: "grants: __pgmap_set_readwrite (V9/V10), __pgmap_mk_readwrite (V8), or, as a what-if, kmap_local_page/kmap()",
                             withoutIt: "no grant is visible: granted and effective windows cannot be measured", essential: true),
            EventRequirement([.kprobe("__pgmap_set_noaccess"), .kprobe("__pgmap_mk_noaccess"),
                              .kprobe("kunmap_local_indexed"), .kprobe("kunmap_high")],
                             gives: "revokes: __pgmap_set_noaccess, __pgmap_mk_noaccess, or, as a what-if, kunmap_local/kunmap()",
                             withoutIt: "grants never end before the end of the trace (censored lower bounds)"),
            EventRequirement([.kretprobe("__kmap_local_page_prot"), .kretprobe("kmap_high")],
                             gives: "what-if replays: the return of a kmap call, where the mapping context touches the page (implied access)",
                             withoutIt: "an implied access is placed at the context's next kmap-family event"),
            EventRequirement([.kprobe("pks_update_protection")],
                             gives: "the key's rights per context, written directly",
                             withoutIt: "the key's rights are inferred from grant/revoke counts (0<->1 edges)"),
            EventRequirement([.kprobe("pks_update_exception")],
                             gives: "relaxed-mode fixups written into the faulting context",
                             withoutIt: "fixups are inferred from the fault mode"),
            EventRequirement([.tracepoint("page_fault_kernel")],
                             gives: "observed PK faults (error_code bit 5): unprotected accesses",
                             withoutIt: "no access is observed: only the accesses a kmap implies are counted (counters.accesses_implied)"),
            CommonRequirements.contexts,
            CommonRequirements.irqs,
            CommonRequirements.forkExit,
            EventRequirement([.tracepoint("page_fault_user"), .tracepointPrefix("sys_enter_"), .tracepointPrefix("sys_exit_")],
                             gives: "returns to user mode (A2 --context-end return-to-user)",
                             withoutIt: "with --context-end return-to-user a task's temporary unprotect ends only at sched-out or exit"),
        ],
        mechanism: [.kprobe("__pgmap_set_readwrite"), .kprobe("__pgmap_set_noaccess"), .kprobe("__pgmap_mk_readwrite"),
                    .kprobe("__pgmap_mk_noaccess"), .kprobe("pks_update_protection"), .kprobe("pks_update_exception")],
        observedMeans: "the traced kernel runs the PKS series: its pgmap/pks functions fired",
        whatIfMeans: "no PKS function in this trace: kmap-family calls replayed as if their pages were PKS-protected")

    public var requirements: ModelRequirements { PKSModel.requirements }
}
