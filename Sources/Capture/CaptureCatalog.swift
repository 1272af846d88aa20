/// The probes protreplay installs to capture a trace, one entry per kprobe/kretprobe, written once for every
/// arch: arguments by position and meaning, struct members by name. `protreplay record` installs them,
/// `protreplay probes` prints them, and `docs/capturing.md` lists them; the probe map reads what they record
/// (CaptureCatalogTests checks every entry against `DefaultProbes`, and the generated lines against the
/// `kprobe_events` of the real captures in `SampleTraces/real/`).
///
/// Event names and groups are the ones of `scripts/workload/probes/*.kprobes`. Functions the models' requirements
/// name select their probes (`CaptureSelection`); `alsoFor` adds probes no requirement names but a model reads
/// for context (the gup internals, the splice path).
public enum CaptureCatalog {
    public static let probes: [CaptureProbe] = kmap + gup + writeback + directMap + s390 + io

    private static func arg(_ n: Int) -> ProbeFetch { .arg(n) }
    private static func at(_ m: StructMember, _ base: ProbeFetch) -> ProbeFetch { .member(m, of: base) }

    /// HIGHMEM kmap (i386 686-pae, arm): on 64-bit kernels these functions do not exist (static inline).
    static let kmap: [CaptureProbe] = [
        .init("kmap", "kmap_high", "kmap_high", [.init("page", arg(1), .pointer)]),
        .init("kmap", "kmap_high_ret", "kmap_high", isReturn: true, [.init("vaddr", .retval, .pointer)]),
        .init("kmap", "kunmap_high", "kunmap_high", [.init("page", arg(1), .pointer)]),
        .init("kmap", "kmap_local_page", "__kmap_local_page_prot", [.init("page", arg(1), .pointer)]),
        .init("kmap", "kmap_local_page_ret", "__kmap_local_page_prot", isReturn: true, [.init("vaddr", .retval, .pointer)]),
        .init("kmap", "kmap_local_pfn", "__kmap_local_pfn_prot", [.init("pfn", arg(1), .pointer)]),
        .init("kmap", "kmap_local_pfn_ret", "__kmap_local_pfn_prot", isReturn: true, [.init("vaddr", .retval, .pointer)]),
        .init("kmap", "kunmap_local", "kunmap_local_indexed", [.init("vaddr", arg(1), .pointer)]),
        .init("kmap", "kmap_flush_unused", "__kmap_flush_unused", []),
    ]

    static let gup: [CaptureProbe] = {
        let fastArgs: [ProbeArg] = [.init("start", arg(1), .pointer), .init("nr_pages", arg(2), .int),
                                    .init("gup_flags", arg(3), .flags32), .init("pages", arg(4), .pointer)]
        let slowArgs: [ProbeArg] = [.init("start", arg(1), .pointer), .init("nr_pages", arg(2), .ulong),
                                    .init("gup_flags", arg(3), .flags32), .init("pages", arg(4), .pointer)]
        let remoteArgs: [ProbeArg] = [.init("mm", arg(1), .pointer), .init("start", arg(2), .pointer), .init("nr_pages", arg(3), .ulong),
                                      .init("gup_flags", arg(4), .flags32), .init("pages", arg(5), .pointer)]
        let intRet = [ProbeArg("ret", .retval, .int)], longRet = [ProbeArg("ret", .retval, .long)]
        let internals: Set<String> = ["s390pv"]
        return [
            .init("gup", "get_user_pages_fast", "get_user_pages_fast", fastArgs),
            .init("gup", "get_user_pages_fast_ret", "get_user_pages_fast", isReturn: true, intRet),
            .init("gup", "pin_user_pages_fast", "pin_user_pages_fast", fastArgs),
            .init("gup", "pin_user_pages_fast_ret", "pin_user_pages_fast", isReturn: true, intRet),
            .init("gup", "internal_get_user_pages_fast", "internal_get_user_pages_fast",
                  [.init("start", arg(1), .pointer), .init("nr_pages", arg(2), .ulong),
                   .init("gup_flags", arg(3), .flags32), .init("pages", arg(4), .pointer)], alsoFor: internals),
            .init("gup", "internal_get_user_pages_fast_ret", "internal_get_user_pages_fast", isReturn: true, longRet, alsoFor: internals),
            .init("gup", "get_user_pages", "get_user_pages", slowArgs),
            .init("gup", "pin_user_pages", "pin_user_pages", slowArgs),
            .init("gup", "pin_user_pages_ret", "pin_user_pages", isReturn: true, longRet),
            .init("gup", "get_user_pages_unlocked", "get_user_pages_unlocked",
                  [.init("start", arg(1), .pointer), .init("nr_pages", arg(2), .ulong),
                   .init("pages", arg(3), .pointer), .init("gup_flags", arg(4), .flags32)]),
            .init("gup", "get_user_pages_remote", "get_user_pages_remote", remoteArgs),
            .init("gup", "get_user_pages_remote_ret", "get_user_pages_remote", isReturn: true, longRet),
            .init("gup", "pin_user_pages_remote", "pin_user_pages_remote", remoteArgs),
            .init("gup", "pin_user_pages_remote_ret", "pin_user_pages_remote", isReturn: true, longRet),
            .init("gup", "__get_user_pages", "__get_user_pages",
                  [.init("mm", arg(1), .pointer), .init("start", arg(2), .pointer), .init("nr_pages", arg(3), .ulong),
                   .init("gup_flags", arg(4), .flags32), .init("pages", arg(5), .pointer)], alsoFor: internals),
            .init("gup", "__get_user_pages_ret", "__get_user_pages", isReturn: true, longRet, alsoFor: internals),
            .init("gup", "__gup_longterm_locked", "__gup_longterm_locked",
                  [.init("mm", arg(1), .pointer), .init("start", arg(2), .pointer), .init("nr_pages", arg(3), .ulong),
                   .init("pages", arg(4), .pointer), .init("gup_flags", arg(6), .flags32)], alsoFor: internals),
            .init("gup", "try_grab_folio", "try_grab_folio",
                  [.init("page", arg(1), .pointer), .init("refs", arg(2), .int), .init("flags", arg(3), .flags32)]),
            .init("gup", "try_grab_page", "try_grab_page", [.init("page", arg(1), .pointer), .init("flags", arg(2), .flags32)]),
            .init("gup", "gup_put_folio", "gup_put_folio",
                  [.init("folio", arg(1), .pointer), .init("refs", arg(2), .int), .init("flags", arg(3), .flags32)]),
            .init("gup", "unpin_user_page", "unpin_user_page", [.init("page", arg(1), .pointer)]),
            .init("gup", "unpin_user_pages", "unpin_user_pages", [.init("pages", arg(1), .pointer), .init("npages", arg(2), .ulong)]),
            .init("gup", "unpin_user_pages_dirty_lock", "unpin_user_pages_dirty_lock",
                  [.init("pages", arg(1), .pointer), .init("npages", arg(2), .ulong), .init("make_dirty", arg(3), .u8)]),
            .init("gup", "bio_iov_iter_get_pages", "bio_iov_iter_get_pages",
                  [.init("bio", arg(1), .pointer), .init("iter", arg(2), .pointer)], alsoFor: internals),
            .init("gup", "__bio_release_pages", "__bio_release_pages",
                  [.init("bio", arg(1), .pointer), .init("mark_dirty", arg(2), .u8)], alsoFor: internals),
            .init("gup", "__access_remote_vm", "__access_remote_vm",
                  [.init("mm", arg(1), .pointer), .init("addr", arg(2), .pointer), .init("buf", arg(3), .pointer),
                   .init("len", arg(4), .int), .init("gup_flags", arg(5), .flags32)], alsoFor: internals),
            .init("gup", "io_pin_pages", "io_pin_pages", [.init("ubuf", arg(1), .pointer), .init("len", arg(2), .ulong)], alsoFor: internals),
            .init("gup", "io_pin_pages_ret", "io_pin_pages", isReturn: true, [.init("ret", .retval, .pointer)], alsoFor: internals),
        ]
    }()

    /// Writeback of page-cache folios; `ino` follows folio->mapping->host->i_ino.
    static let writeback: [CaptureProbe] = [
        .init("wb", "folio_start_writeback", "__folio_start_writeback",
              [.init("folio", arg(1), .pointer), .init("keep_write", arg(2), .u8),
               .init("flags", at(.folioFlags, arg(1)), .pointer), .init("mapping", at(.folioMapping, arg(1)), .pointer),
               .init("index", at(.folioIndex, arg(1)), .ulong),
               .init("ino", at(.inodeIno, at(.addressSpaceHost, at(.folioMapping, arg(1)))), .ulong)]),
        .init("wb", "folio_end_writeback", "folio_end_writeback",
              [.init("folio", arg(1), .pointer), .init("index", at(.folioIndex, arg(1)), .ulong)]),
        .init("wb", "folio_clear_dirty_for_io", "folio_clear_dirty_for_io",
              [.init("folio", arg(1), .pointer), .init("index", at(.folioIndex, arg(1)), .ulong)], alsoFor: ["s390pv"]),
        .init("wb", "folio_mkclean", "folio_mkclean",
              [.init("folio", arg(1), .pointer), .init("index", at(.folioIndex, arg(1)), .ulong)], alsoFor: ["s390pv"]),
    ]

    /// Direct-map removal (secretmem); the `@SYM` fetchargs record the bases that turn a `struct page *`
    /// into a pfn (x86_64 kernels with CONFIG_KALLSYMS_ALL).
    static let directMap: [CaptureProbe] = [
        .init("dmap", "set_direct_map_invalid_noflush", "set_direct_map_invalid_noflush",
              [.init("page", arg(1), .pointer),
               .init("vmemmap_base", .symbol("vmemmap_base"), .pointer, onlyOn: ["x86_64"]),
               .init("page_offset_base", .symbol("page_offset_base"), .pointer, onlyOn: ["x86_64"])]),
        .init("dmap", "set_direct_map_invalid_noflush_ret", "set_direct_map_invalid_noflush", isReturn: true,
              [.init("ret", .retval, .int)]),
        .init("dmap", "set_direct_map_default_noflush", "set_direct_map_default_noflush", [.init("page", arg(1), .pointer)]),
        .init("dmap", "set_direct_map_default_noflush_ret", "set_direct_map_default_noflush", isReturn: true,
              [.init("ret", .retval, .int)]),
        // Newer kernels' folio interface (guest_memfd direct-map removal); the kernel decides which exists.
        .init("dmap", "folio_zap_direct_map", "folio_zap_direct_map", [.init("folio", arg(1), .pointer)]),
        .init("dmap", "folio_restore_direct_map", "folio_restore_direct_map", [.init("folio", arg(1), .pointer)]),
        .init("dmap", "set_memory_np", "set_memory_np", [.init("addr", arg(1), .pointer), .init("numpages", arg(2), .int)],
              alsoFor: ["directmap"]),
        .init("secretmem", "secretmem_mmap", "secretmem_mmap",
              [.init("file", arg(1), .pointer), .init("vma", arg(2), .pointer),
               .init("vm_start", at(.vmaStart, arg(2)), .pointer), .init("vm_end", at(.vmaEnd, arg(2)), .pointer)],
              alsoFor: ["directmap"]),
        .init("secretmem", "secretmem_fault", "secretmem_fault",
              [.init("vmf", arg(1), .pointer), .init("vma", at(.vmFaultVma, arg(1)), .pointer),
               .init("pgoff", at(.vmFaultPgoff, arg(1)), .ulong), .init("address", at(.vmFaultAddress, arg(1)), .pointer),
               .init("flags", at(.vmFaultFlags, arg(1)), .flags32)]),
        .init("secretmem", "secretmem_free_folio", "secretmem_free_folio", [.init("folio", arg(1), .pointer)]),
        .init("secretmem", "secretmem_release", "secretmem_release", [.init("inode", arg(1), .pointer)], alsoFor: ["directmap"]),
        .init("mm", "flush_tlb_kernel_range", "flush_tlb_kernel_range",
              [.init("start", arg(1), .pointer), .init("end", arg(2), .pointer)]),
    ]

    /// s390 protected virtualization: make-accessible (export) and secure-storage import/destroy.
    static let s390: [CaptureProbe] = [
        .init("s390", "arch_make_page_accessible", "arch_make_page_accessible",
              [.init("page", arg(1), .pointer), .init("flags", at(.pageFlags, arg(1)), .pointer)]),
        .init("s390", "arch_make_page_accessible_ret", "arch_make_page_accessible", isReturn: true, [.init("ret", .retval, .int)]),
        // Since the folio conversion of s390 uv (after 6.1): the folio variants of the calls above.
        .init("s390", "arch_make_folio_accessible", "arch_make_folio_accessible",
              [.init("folio", arg(1), .pointer), .init("flags", at(.folioFlags, arg(1)), .pointer)]),
        .init("s390", "arch_make_folio_accessible_ret", "arch_make_folio_accessible", isReturn: true, [.init("ret", .retval, .int)]),
        .init("s390", "gmap_convert_to_secure_ret", "gmap_convert_to_secure", isReturn: true, [.init("ret", .retval, .int)]),
        .init("s390", "uv_destroy_folio", "uv_destroy_folio", [.init("folio", arg(1), .pointer)]),
        .init("s390", "gmap_make_secure", "gmap_make_secure",
              [.init("gmap", arg(1), .pointer), .init("gaddr", arg(2), .pointer), .init("uvcb", arg(3), .pointer)]),
        .init("s390", "gmap_make_secure_ret", "gmap_make_secure", isReturn: true, [.init("ret", .retval, .int)]),
        .init("s390", "gmap_destroy_page", "gmap_destroy_page", [.init("gmap", arg(1), .pointer), .init("gaddr", arg(2), .pointer)]),
        .init("s390", "uv_convert_from_secure", "uv_convert_from_secure", [.init("paddr", arg(1), .pointer)], alsoFor: ["s390pv"]),
        .init("s390", "uv_destroy_owned_page", "uv_destroy_owned_page", [.init("paddr", arg(1), .pointer)]),
    ]

    /// The I/O side: block submission of a page, splice/sendfile (the zero-copy hole).
    static let io: [CaptureProbe] = {
        let pipeBuf: [ProbeArg] = [.init("pipe", arg(1), .pointer), .init("buf", arg(2), .pointer),
                                   .init("page", at(.pipeBufferPage, arg(2)), .pointer),
                                   .init("offset", at(.pipeBufferOffset, arg(2)), .uint), .init("len", at(.pipeBufferLen, arg(2)), .uint)]
        let splice: Set<String> = ["s390pv"]
        return [
            .init("io", "bio_add_page", "bio_add_page",
                  [.init("bio", arg(1), .pointer), .init("page", arg(2), .pointer), .init("len", arg(3), .uint), .init("off", arg(4), .uint)]),
            .init("io", "bio_add_folio", "bio_add_folio",
                  [.init("bio", arg(1), .pointer), .init("folio", arg(2), .pointer), .init("len", arg(3), .ulong), .init("off", arg(4), .ulong)]),
            // Renamed filemap_splice_read in 6.5 (the splice rework); pipe_to_sendpage went with sendpage in 6.5.
            .init("splice", "generic_file_splice_read", "generic_file_splice_read",
                  [.init("in", arg(1), .pointer), .init("ppos", arg(2), .pointer), .init("pipe", arg(3), .pointer), .init("len", arg(4), .ulong)],
                  alsoFor: splice, until: KernelVersion(6, 4)),
            .init("splice", "filemap_splice_read", "filemap_splice_read",
                  [.init("in", arg(1), .pointer), .init("ppos", arg(2), .pointer), .init("pipe", arg(3), .pointer), .init("len", arg(4), .ulong)],
                  alsoFor: splice, since: KernelVersion(6, 5)),
            .init("splice", "page_cache_pipe_buf_confirm", "page_cache_pipe_buf_confirm", pipeBuf, alsoFor: splice),
            .init("splice", "page_cache_pipe_buf_confirm_ret", "page_cache_pipe_buf_confirm", isReturn: true,
                  [.init("ret", .retval, .int)], alsoFor: splice),
            .init("splice", "pipe_to_sendpage", "pipe_to_sendpage", pipeBuf, until: KernelVersion(6, 4)),
            .init("splice", "unix_stream_sendpage", "unix_stream_sendpage",
                  [.init("sock", arg(1), .pointer), .init("page", arg(2), .pointer), .init("offset", arg(3), .int), .init("size", arg(4), .ulong)],
                  alsoFor: splice, until: KernelVersion(6, 4)),
            .init("splice", "iter_file_splice_write", "iter_file_splice_write",
                  [.init("pipe", arg(1), .pointer), .init("out", arg(2), .pointer), .init("len", arg(4), .ulong)], alsoFor: splice),
        ]
    }()
}
