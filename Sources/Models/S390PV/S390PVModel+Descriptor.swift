import EventModel
import Replay

extension S390PVModel {
    /// docs/models.md, s390pv "Needs". Only a protected-virtualization host imports pages into secure
    /// storage or destroys them; without those calls the frames gup, writeback and I/O reach are treated
    /// as if they were secure guest pages (a what-if).
    static let requirements = ModelRequirements(
        needs: [
            EventRequirement([.kprobe("pin_user_pages"), .kprobe("pin_user_pages_fast"), .kprobe("pin_user_pages_remote"),
                              .kprobe("pin_user_pages_unlocked"), .kprobe("get_user_pages"), .kprobe("get_user_pages_fast"),
                              .kprobe("get_user_pages_remote"), .kprobe("get_user_pages_unlocked")],
                             gives: "the gup API the caller used: pin (FOLL_PIN) or get, and where an io_hold window opens",
                             withoutIt: "pin and get are told apart only from gup_put_folio flags; io_hold windows open at each page's grab"),
            EventRequirement([.kprobe("try_grab_folio"), .kprobe("try_grab_page")],
                             gives: "the pages a gup call took",
                             withoutIt: "no pinned page is visible: gup io_hold windows and io_after_get cannot be measured", essential: true),
            EventRequirement([.kprobe("unpin_user_page"), .kprobe("unpin_user_pages"), .kprobe("unpin_user_pages_dirty_lock"),
                              .kprobe("gup_put_folio")],
                             gives: "pin releases: io_hold windows close",
                             withoutIt: "pins are never released before the end of the trace: io_hold windows are censored lower bounds"),
            EventRequirement([.kprobe("__folio_start_writeback")],
                             gives: "writeback start (make-accessible, io_hold opens)",
                             withoutIt: "writeback is unobservable"),
            EventRequirement([.kprobe("folio_end_writeback")],
                             gives: "writeback end (io_hold closes)",
                             withoutIt: "writeback io_hold windows never close before the end of the trace (censored)"),
            EventRequirement([.kprobe("bio_add_page"), .kprobe("bio_add_folio")],
                             gives: "block I/O submission of a page: checked for a secure frame",
                             withoutIt: "no I/O submission is visible: no_hook and io_after_get accesses are unobservable"),
            EventRequirement([.kprobe("pipe_to_sendpage")],
                             gives: "zero-copy splice to a socket (the sendfile hole)",
                             withoutIt: "sendfile_hole accesses are unobservable"),
            EventRequirement([.kprobe("arch_make_folio_accessible"), .kprobe("arch_make_page_accessible")],
                             gives: "make-accessible calls and their caller",
                             withoutIt: "make-accessible is implied at each pin and writeback start (counters make_accessible_implied_*)"),
            EventRequirement([.kretprobe("gmap_make_secure"), .kretprobe("gmap_convert_to_secure")],
                             gives: "imports into secure storage and imports blocked by I/O",
                             withoutIt: "imports are unobservable: an exported frame stays accessible to the end of the trace"),
            EventRequirement([.kprobe("follow_page_pte"), .kprobe("vm_normal_page")],
                             gives: "the page-table walk inside gup (VM_PFNMAP / special ptes, seed 003)",
                             withoutIt: "gup on a VM_PFNMAP or special mapping (gup_special_pfn) is unobservable"),
        ],
        mechanism: [.kretprobe("gmap_make_secure"), .kretprobe("gmap_convert_to_secure"), .kprobe("gmap_destroy_page"),
                    .kprobe("uv_destroy_owned_page"), .kprobe("uv_destroy_folio")],
        observedMeans: "the traced host runs protected guests: imports into or destroys of secure storage were traced",
        whatIfMeans: "no secure-storage import or destroy in this trace: the frames gup, writeback and I/O reached are treated as if they were secure guest pages")

    public var requirements: ModelRequirements { S390PVModel.requirements }

    /// `--foll-pin`: hex, with or without `0x`.
    static func parseHex(_ s: String) -> UInt64? {
        var t = Substring(s)
        if t.hasPrefix("0x") { t = t.dropFirst(2) }
        return UInt64(t, radix: 16)
    }

    /// docs/models.md "s390pv": protected frames, and FOLL_PIN for decoding gup_put_folio flags.
    public static let descriptor = ModelDescriptor(
        name: "s390pv",
        options: [
            PKSModel.protectOption(default: "touched"),
            ModelOptionSpec(key: "foll-pin", help: "s390pv: FOLL_PIN value for decoding gup_put_folio flags: 0x40000 (up to v6.2) or 0x80000 (v6.3+).",
                            defaultValue: "0x40000") { v in parseHex(v) == nil ? "--foll-pin must be a hex number" : nil },
        ],
        requirements: requirements
    ) { ctx, o in
        S390PVModel(resolver: ctx.resolver, protected: ProtectedFrames.parse(o["protect"]!)!, follPin: parseHex(o["foll-pin"]!)!, symbols: ctx.symbols)
    }
}
