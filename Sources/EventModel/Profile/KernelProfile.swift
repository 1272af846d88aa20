/// What the analyzer must know about the traced kernel to turn addresses into frames (spec §2.3).
/// Values given on the command line are fixed; the rest are learned from the trace.
public struct KernelProfile: Sendable, Equatable {
    public enum Arch: String, Sendable, CaseIterable { case x86_64, i386, s390x, unknown }

    public var arch: Arch = .unknown
    public var pageShift: UInt64 = 12
    /// `struct page *` of pfn 0: `vmemmap_base` on x86_64, `mem_map` on i386 FLATMEM (calibrated).
    public var memMapBase: UInt64?
    /// `sizeof(struct page)`: 64 on common x86_64 configs, 40 on i386 686-pae.
    public var structPageSize: UInt64?
    /// x86_64 direct-map base (`page_offset_base`), or i386 `PAGE_OFFSET`.
    public var pageOffsetBase: UInt64?

    public init(arch: Arch = .unknown) {
        self.arch = arch
        switch arch {
        case .i386: pageOffsetBase = 0xC000_0000
        case .x86_64: break
        case .s390x: pageOffsetBase = 0
        case .unknown: break
        }
    }

    /// pfn of a `struct page *`, when the layout is known.
    public func pfn(forPage page: UInt64) -> UInt64? {
        guard let base = memMapBase, let size = structPageSize, size > 0, page >= base else { return nil }
        let delta = page - base
        guard delta % size == 0 else { return nil }
        return delta / size
    }

    /// Whether a printed pte has the architecture's `_PAGE_SPECIAL` bit; nil while the arch is unknown.
    public func isSpecial(pte: UInt64) -> Bool? {
        switch arch {
        case .x86_64, .i386: return pte & 0x200 != 0        // _PAGE_SPECIAL (_PAGE_BIT_SOFTW1)
        case .s390x: return pte & 0x020 != 0               // _PAGE_SPECIAL on s390
        case .unknown: return nil
        }
    }

    /// pfn of a direct-map (lowmem) kernel virtual address.
    public func pfn(forDirectMapAddress va: UInt64) -> UInt64? {
        guard let base = pageOffsetBase, va >= base else { return nil }
        return (va - base) >> pageShift
    }
}

/// Learns `memMapBase` and `structPageSize` from (page pointer, pfn) pairs seen in the trace:
/// on i386 a `__kmap_local_page_prot(page)` followed by its nested `__kmap_local_pfn_prot(pfn)`;
/// on x86_64 `mm_page_alloc` with `hash-ptr` off. A fit is accepted after two pairs with different pfns
/// give a plausible whole stride, and every later pair is checked against it.
public struct PageCalibration: Sendable, Equatable {
    public private(set) var pairs = 0
    public private(set) var mismatches = 0
    public private(set) var base: UInt64?
    public private(set) var size: UInt64?
    private var first: (page: UInt64, pfn: UInt64)?
    private var candidate: (base: UInt64, size: UInt64)?

    public init() {}

    public static func == (a: PageCalibration, b: PageCalibration) -> Bool {
        a.pairs == b.pairs && a.mismatches == b.mismatches && a.base == b.base && a.size == b.size
    }

    public var isCalibrated: Bool { base != nil }

    public mutating func observe(page: UInt64, pfn: UInt64) {
        pairs += 1
        if let base, let size {
            let (expected, overflow) = pfn.multipliedReportingOverflow(by: size)
            if overflow || base &+ expected != page { mismatches += 1 }
            return
        }
        // A candidate fit from two pairs is accepted once a third pair confirms it, so values that
        // are not linear (hashed pointers) never calibrate.
        if let c = candidate {
            if pfn.multipliedReportingOverflow(by: c.size).partialValue &+ c.base == page {
                base = c.base
                size = c.size
                return
            }
            candidate = nil
            mismatches += 1
        }
        guard let f = first, pfn != f.pfn else { first = (page, pfn); return }
        let (dp, dn) = pfn > f.pfn ? (page &- f.page, pfn - f.pfn) : (f.page &- page, f.pfn - pfn)
        let stride = dp / dn
        if dp % dn == 0, stride >= 16, stride <= 256, stride % 4 == 0, pfn.multipliedReportingOverflow(by: stride).partialValue <= page {
            candidate = (page - pfn * stride, stride)
        }
        first = (page, pfn)
    }
}
