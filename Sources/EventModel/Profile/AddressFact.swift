import TraceIngest

/// Something the trace teaches about the kernel's address layout, delivered in trace order next
/// to the events (`ProtEventSink.addressFact`), so that every path through the pipeline (serial,
/// chunked in parallel, binary) applies it at the same point.
///
///     kmap_local_page: (__kmap_local_page_prot+0x0/0x60) page=0xf6dfd788     -> .arch(.i386) (the probed function)
///     p_kmap_pfn: (__kmap_local_pfn_prot+0x0/0x90) pfn=0x3fbe6 vmemmap_base=0xffffea0000000000  -> .vmemmapBase
///     mm_page_alloc: page=ffffea000014bc80 pfn=0x52f2 order=0 ...           -> .pagePfn(page:pfn:)
public enum AddressFact: Sendable, Equatable {
    /// The probed functions only exist on one architecture.
    case arch(KernelProfile.Arch)
    /// `@vmemmap_base` fetcharg (x86_64).
    case vmemmapBase(UInt64)
    /// `@page_offset_base` fetcharg (x86_64).
    case pageOffsetBase(UInt64)
    /// One `struct page *` and its pfn, printed by the same event.
    case pagePfn(page: UInt64, pfn: UInt64)
}

extension AddressResolver {
    /// Applies one fact (values the user fixed on the command line are never overwritten).
    public func learn(_ fact: AddressFact) {
        switch fact {
        case let .arch(a): inferArch(a)
        case let .vmemmapBase(b): learnVmemmapBase(b); inferArch(.x86_64)
        case let .pageOffsetBase(b): learnPageOffsetBase(b)
        case let .pagePfn(page, pfn): observePair(page: page, pfn: pfn)
        }
    }
}

/// Sits in front of the replay: applies address facts to the models' resolver and pairs each
/// `__kmap_local_page_prot(page)` entry with the nested `__kmap_local_pfn_prot(pfn)` on the same
/// CPU and task (spec: page -> pfn calibration), then passes everything on unchanged.
///
///     wl-highmem-131 [000] ..... 7.217363: kmap_local_page: (__kmap_local_page_prot+0x0/0x60) page=0xf6dfd788
///     wl-highmem-131 [000] ..... 7.217366: kmap_local_pfn: (__kmap_local_pfn_prot+0x0/0x90) pfn=0x3fbe6
public final class AddressLearning: ProtEventSink {
    public let resolver: AddressResolver
    private let downstream: ProtEventSink
    /// Per CPU: the last kmap_local_page entry not yet followed by its pfn call.
    private var lastPageEntry: [(pid: Int32, page: UInt64)?] = []

    public init(resolver: AddressResolver, downstream: ProtEventSink) {
        self.resolver = resolver
        self.downstream = downstream
    }

    @inline(__always)
    public func consume(_ event: ProtEvent) {
        switch event.kind {
        case let .kmap(api, page, pfn) where api == .kmapLocalPage || api == .kmapLocalPfn:
            pair(event, page: page, pfn: pfn)
        case let .kmapReturn(api, _) where api == .kmapLocalPage:
            let c = Int(event.cpu)
            if c >= 0 && c < lastPageEntry.count { lastPageEntry[c] = nil }
        default: break
        }
        downstream.consume(event)
    }

    private func pair(_ e: ProtEvent, page: UInt64?, pfn: UInt64?) {
        let c = Int(e.cpu)
        guard c >= 0 && c < 8192 else { return }
        if let page {
            if c >= lastPageEntry.count { lastPageEntry.append(contentsOf: repeatElement(nil, count: c + 1 - lastPageEntry.count)) }
            lastPageEntry[c] = (e.pid, page)
        } else if let pfn, c < lastPageEntry.count, let last = lastPageEntry[c], last.pid == e.pid {
            resolver.learn(.pagePfn(page: last.page, pfn: pfn))
            lastPageEntry[c] = nil
        }
    }

    public func addressFact(_ fact: AddressFact) { resolver.learn(fact) }
    public func lost(cpu: Int32, count: UInt64, line: Int) { downstream.lost(cpu: cpu, count: count, line: line) }
    public func bufferStarted(cpu: Int32, line: Int) { downstream.bufferStarted(cpu: cpu, line: line) }
    public func tick(cpu: Int32, pid: Int32, timestamp: UInt64, flags: TraceFlags, line: Int) {
        downstream.tick(cpu: cpu, pid: pid, timestamp: timestamp, flags: flags, line: line)
    }
}
