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

    /// `--protect` (pks default `kmapped`, s390pv default `touched`).
    static func protectOption(default value: String) -> ModelOptionSpec {
        ModelOptionSpec(key: "protect", help: "Protected frames: pfn ranges (0x100000-0x13ffff,...), kmapped (pks default) or touched (s390pv default).",
                        defaultValue: value) { v in
            ProtectedFrames.parse(v) == nil ? "--protect: '\(v)' is not kmapped, touched, or pfn ranges like 0x100000-0x13ffff,0x200000" : nil
        }
    }

    /// docs/models.md "pks": fault mode, the kmap() design, the A2 context end, protected frames, after-revoke.
    public static let descriptor = ModelDescriptor(
        name: "pks",
        options: [
            ModelOptionSpec(key: "mode", help: "pks: PK fault handling: strict, relaxed, silent, off.", defaultValue: "relaxed",
                            values: FaultMode.allCases.map(\.rawValue)),
            ModelOptionSpec(key: "kmap-global", help: "pks: global kmap() design: unsupported (A0, V10 as posted), global-unprotect (A1), flag-fault (A2).",
                            defaultValue: "unsupported", values: KmapGlobal.allCases.map(\.rawValue)),
            ModelOptionSpec(key: "context-end", help: "pks flag-fault: when a task's temporary unprotect ends: sched-out or return-to-user.",
                            defaultValue: "sched-out", values: ContextEnd.allCases.map(\.rawValue)),
            protectOption(default: "kmapped"),
            ModelOptionSpec(key: "after-revoke-ns", help: "pks: an access this many ns after the context's last revoke is after_revoke.",
                            defaultValue: "10000") { v in UInt64(v) == nil ? "--after-revoke-ns: '\(v)' is not a number of nanoseconds" : nil },
        ],
        requirements: requirements
    ) { ctx, o in
        PKSModel(resolver: ctx.resolver, mode: FaultMode(rawValue: o["mode"]!)!, kmapGlobal: KmapGlobal(rawValue: o["kmap-global"]!)!,
                 contextEnd: ContextEnd(rawValue: o["context-end"]!)!, protected: ProtectedFrames.parse(o["protect"]!)!,
                 afterRevokeNs: UInt64(o["after-revoke-ns"]!)!)
    }
}
