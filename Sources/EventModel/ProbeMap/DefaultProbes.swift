/// The built-in probe map: tracepoints by name, kprobes by the function they probe.
/// Function names are the ones `docs/capturing.md` probes on Debian 6.1 kernels.
public enum DefaultProbes {
    public static let entries: [ProbeMapEntry] = tracepoints + kmap + gup + writeback + directMap + s390 + io + pks

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
        .init(eventPrefix: "sys_enter_", mapsTo: "SYSCALL", api: "enter"),
        .init(eventPrefix: "sys_exit_", mapsTo: "SYSCALL", api: "exit"),
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
        for f in ["internal_get_user_pages_fast", "gup_fast_fallback", "__get_user_pages", "__gup_longterm_locked", "iov_iter_get_pages2",
                  "bio_iov_iter_get_pages", "io_pin_pages", "__access_remote_vm"] {
            out.append(.init(function: f, mapsTo: "IGNORE"))
        }
        // The pages themselves: taken inside the call, dropped by gup_put_folio (which the unpin APIs call,
        // unless it is inlined into them, as on s390x 6.1).
        out.append(.init(function: "try_grab_folio", probe: "entry", mapsTo: "GUP_PAGE"))
        out.append(.init(function: "try_grab_page", probe: "entry", mapsTo: "GUP_PAGE"))
        // 6.12: try_grab_folio(folio, refs, flags) in the slow path, try_grab_folio_fast(page, refs, flags) in gup-fast.
        out.append(.init(function: "try_grab_folio_fast", probe: "entry", mapsTo: "GUP_PAGE"))
        out.append(.init(function: "gup_put_folio", probe: "entry", mapsTo: "GUP_PUT", fields: ["page": "folio"]))
        // The release APIs (spec §2.2 GUP_RELEASE): a window closes at their entry.
        //   unpin_user_page: (unpin_user_page+0x0/0x30) page=0xf6deb888
        //   unpin_user_pages_dirty_lock: (unpin_user_pages_dirty_lock+0x0/0x110) pages=0xc2361d50 npages=8 make_dirty=0
        out.append(.init(function: "unpin_user_page", probe: "entry", mapsTo: "GUP_RELEASE", api: "page"))
        out.append(.init(function: "unpin_folio", probe: "entry", mapsTo: "GUP_RELEASE", api: "page", fields: ["page": "folio"]))
        out.append(.init(function: "unpin_user_pages", probe: "entry", mapsTo: "GUP_RELEASE", api: "pages"))
        out.append(.init(function: "unpin_user_pages_dirty_lock", probe: "entry", mapsTo: "GUP_RELEASE", api: "pages"))
        out.append(.init(function: "unpin_folios", probe: "entry", mapsTo: "GUP_RELEASE", api: "pages",
                         fields: ["pages": "folios", "npages": "nfolios"]))
        out.append(.init(function: "unpin_user_page_range_dirty_lock", probe: "entry", mapsTo: "GUP_RELEASE", api: "range"))
        out.append(.init(function: "__bio_release_pages", mapsTo: "IGNORE"))
        // Page-table walk inside gup: special ptes / VM_PFNMAP (seed 003).
        out.append(.init(function: "follow_page_pte", probe: "entry", mapsTo: "GUP_PTE"))
        out.append(.init(function: "vm_normal_page", probe: "entry", mapsTo: "GUP_PTE"))
        // The vma check at the top of the slow path (`check_vma_flags`, mm/gup.c), where gup refuses VM_IO|VM_PFNMAP
        // with -EFAULT before any pte is walked; its return is the refusal itself.
        out.append(.init(function: "check_vma_flags", probe: "entry", mapsTo: "GUP_PTE"))
        out.append(.init(function: "check_vma_flags", probe: "return", mapsTo: "IGNORE"))
        return out
    }()

    static let writeback: [ProbeMapEntry] = [
        .init(function: "__folio_start_writeback", probe: "entry", mapsTo: "WB_START"),
        .init(function: "folio_end_writeback", probe: "entry", mapsTo: "WB_END"),
        .init(function: "folio_clear_dirty_for_io", mapsTo: "IGNORE"),
        .init(function: "folio_mkclean", mapsTo: "IGNORE"),
    ]

    static let directMap: [ProbeMapEntry] = [
        .init(function: "set_direct_map_invalid_noflush", probe: "entry", mapsTo: "DMAP_SET", api: "invalid"),
        .init(function: "set_direct_map_invalid_noflush", probe: "return", mapsTo: "DMAP_SET_RET", api: "invalid"),
        .init(function: "set_direct_map_default_noflush", probe: "entry", mapsTo: "DMAP_SET", api: "default"),
        .init(function: "set_direct_map_default_noflush", probe: "return", mapsTo: "DMAP_SET_RET", api: "default"),
        .init(function: "folio_zap_direct_map", probe: "entry", mapsTo: "DMAP_SET", api: "invalid", fields: ["page": "folio"]),
        .init(function: "folio_restore_direct_map", probe: "entry", mapsTo: "DMAP_SET", api: "default", fields: ["page": "folio"]),
        .init(function: "flush_tlb_kernel_range", probe: "entry", mapsTo: "TLB_FLUSH_KRANGE"),
        .init(function: "secretmem_mmap", probe: "entry", mapsTo: "SECRETMEM_MMAP"),
        .init(function: "secretmem_fault", probe: "entry", mapsTo: "SECRETMEM_FAULT"),
        .init(function: "secretmem_free_folio", probe: "entry", mapsTo: "SECRETMEM_FREE"),
        .init(function: "secretmem_release", mapsTo: "IGNORE"),
        .init(function: "set_memory_np", mapsTo: "IGNORE"),
    ]

    static let s390: [ProbeMapEntry] = [
        .init(function: "arch_make_page_accessible", probe: "entry", mapsTo: "UV_MAKE_ACCESSIBLE"),
        .init(function: "arch_make_page_accessible", probe: "return", mapsTo: "UV_MAKE_ACCESSIBLE_RET"),
        .init(function: "arch_make_folio_accessible", probe: "entry", mapsTo: "UV_MAKE_ACCESSIBLE", fields: ["page": "folio"]),
        .init(function: "arch_make_folio_accessible", probe: "return", mapsTo: "UV_MAKE_ACCESSIBLE_RET"),
        .init(function: "gmap_make_secure", probe: "return", mapsTo: "UV_MAKE_SECURE_RET"),
        .init(function: "gmap_convert_to_secure", probe: "return", mapsTo: "UV_MAKE_SECURE_RET"),
        .init(function: "gmap_make_secure", probe: "entry", mapsTo: "IGNORE"),
        .init(function: "gmap_convert_to_secure", probe: "entry", mapsTo: "IGNORE"),
        .init(function: "gmap_destroy_page", probe: "entry", mapsTo: "UV_DESTROY"),
        .init(function: "uv_destroy_owned_page", probe: "entry", mapsTo: "UV_DESTROY"),
        .init(function: "uv_destroy_folio", probe: "entry", mapsTo: "UV_DESTROY"),
        .init(function: "uv_convert_from_secure", mapsTo: "IGNORE"),
    ]

    static let io: [ProbeMapEntry] = [
        .init(function: "bio_add_page", probe: "entry", mapsTo: "IO_SUBMIT"),
        .init(function: "bio_add_folio", probe: "entry", mapsTo: "IO_SUBMIT", fields: ["page": "folio"]),
        .init(function: "pipe_to_sendpage", probe: "entry", mapsTo: "SPLICE_ZC"),
        .init(function: "page_cache_pipe_buf_confirm", mapsTo: "IGNORE"),
        .init(function: "generic_file_splice_read", mapsTo: "IGNORE"),
        .init(function: "filemap_splice_read", mapsTo: "IGNORE"),
        .init(function: "iter_file_splice_write", mapsTo: "IGNORE"),
        .init(function: "unix_stream_sendpage", mapsTo: "IGNORE"),
        .init(function: "splice_to_socket", mapsTo: "IGNORE"),
    ]

    static let pks: [ProbeMapEntry] = [
        .init(function: "__pgmap_set_readwrite", probe: "entry", mapsTo: "PGMAP_GRANT"),
        .init(function: "__pgmap_set_noaccess", probe: "entry", mapsTo: "PGMAP_REVOKE"),
        .init(function: "__pgmap_mk_readwrite", probe: "entry", mapsTo: "PGMAP_GRANT"),
        .init(function: "__pgmap_mk_noaccess", probe: "entry", mapsTo: "PGMAP_REVOKE"),
        .init(function: "pks_update_protection", probe: "entry", mapsTo: "PKS_SET"),
        .init(function: "pks_update_exception", probe: "entry", mapsTo: "PKS_EXC_UPDATE"),
    ]
}
