/// The built-in probe map: tracepoints by name, kprobes by the function they probe.
/// Function names are the ones `docs/capturing.md` probes on Debian 6.1 kernels.
public enum DefaultProbes {
    public static let entries: [ProbeMapEntry] = tracepoints + kmap + gup

    static let tracepoints: [ProbeMapEntry] = [
        .init(event: "sched_switch", mapsTo: "CTX_SWITCH"),
        .init(event: "sched_migrate_task", mapsTo: "TASK_MIGRATE"),
        .init(event: "sched_process_fork", mapsTo: "TASK_FORK"),
        .init(event: "sched_process_exit", mapsTo: "TASK_EXIT"),
        .init(event: "irq_handler_entry", mapsTo: "IRQ_ENTER", api: "hardirq"),
        .init(event: "irq_handler_exit", mapsTo: "IRQ_EXIT", api: "hardirq"),
        .init(event: "softirq_entry", mapsTo: "IRQ_ENTER", api: "softirq"),
        .init(event: "softirq_exit", mapsTo: "IRQ_EXIT", api: "softirq"),
        .init(event: "page_fault_user", mapsTo: "FAULT", api: "user"),
        .init(event: "page_fault_kernel", mapsTo: "FAULT", api: "kernel"),
        .init(event: "mm_page_alloc", mapsTo: "PAGE_ALLOC"),
        .init(event: "mm_page_free", mapsTo: "PAGE_FREE"),
        .init(event: "mm_page_free_batched", mapsTo: "PAGE_FREE"),
        .init(event: "tracing_mark_write", mapsTo: "MARKER"),
        .init(event: "print", mapsTo: "MARKER"),
    ]

    static let kmap: [ProbeMapEntry] = [
        .init(function: "kmap_high", probe: "entry", mapsTo: "KMAP", api: "kmap_high"),
        .init(function: "kmap_high", probe: "return", mapsTo: "KMAP_RET", api: "kmap_high"),
        .init(function: "kunmap_high", probe: "entry", mapsTo: "KUNMAP_HIGH"),
        .init(function: "__kmap_local_page_prot", probe: "entry", mapsTo: "KMAP", api: "kmap_local_page"),
        .init(function: "__kmap_local_page_prot", probe: "return", mapsTo: "KMAP_RET", api: "kmap_local_page"),
        .init(function: "__kmap_local_pfn_prot", probe: "entry", mapsTo: "KMAP", api: "kmap_local_pfn"),
        .init(function: "__kmap_local_pfn_prot", probe: "return", mapsTo: "KMAP_RET", api: "kmap_local_pfn"),
        .init(function: "kunmap_local_indexed", probe: "entry", mapsTo: "KUNMAP_LOCAL"),
        .init(function: "__kmap_flush_unused", probe: "entry", mapsTo: "PKMAP_FLUSH"),
        .init(function: "kmap_flush_unused", probe: "entry", mapsTo: "PKMAP_FLUSH"),
        .init(function: "flush_all_zero_pkmaps", probe: "entry", mapsTo: "PKMAP_FLUSH"),
    ]

    static let gup: [ProbeMapEntry] = {
        let apis: [(String, String, String)] = [
            ("get_user_pages_fast", "get", "fast"), ("get_user_pages_fast_only", "get", "fast"),
            ("pin_user_pages_fast", "pin", "fast"), ("pin_user_pages_fast_only", "pin", "fast"),
            ("get_user_pages", "get", "slow"), ("pin_user_pages", "pin", "slow"),
            ("get_user_pages_unlocked", "get", "slow"), ("pin_user_pages_unlocked", "pin", "slow"),
            ("get_user_pages_remote", "get", "remote"), ("pin_user_pages_remote", "pin", "remote"),
        ]
        var out: [ProbeMapEntry] = []
        for (f, api, path) in apis {
            out.append(.init(function: f, probe: "entry", mapsTo: "GUP_ACQUIRE", api: api, path: path))
            out.append(.init(function: f, probe: "return", mapsTo: "GUP_RET", api: api, path: path))
        }
        // Internal helpers both get_ and pin_ go through: counted once, at the API.
        for f in ["internal_get_user_pages_fast", "__get_user_pages", "__gup_longterm_locked", "try_grab_folio", "try_grab_page"] {
            out.append(.init(function: f, mapsTo: "IGNORE"))
        }
        return out
    }()
}
