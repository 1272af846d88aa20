import TraceIngest

/// The live view of the kernel profile while a trace is read: fixed values from the command line,
/// plus what the trace teaches (`AddressFact`: `@vmemmap_base` fetchargs, page/pfn pairs).
public final class AddressResolver {
    public private(set) var profile: KernelProfile
    public private(set) var calibration = PageCalibration()
    /// True for each value the user fixed; those are never overwritten by the trace.
    public let userFixedLayout: Bool
    public let userFixedArch: Bool

    public init(profile: KernelProfile, userFixedLayout: Bool, userFixedArch: Bool) {
        self.profile = profile
        self.userFixedLayout = userFixedLayout
        self.userFixedArch = userFixedArch
    }

    /// pfn of a `struct page *`: from the profile, else from the calibration.
    public func pfn(forPage page: UInt64) -> UInt64? {
        if let p = profile.pfn(forPage: page) { return p }
        guard let base = calibration.base, let size = calibration.size, page >= base, (page - base) % size == 0 else { return nil }
        return (page - base) / size
    }

    func observePair(page: UInt64, pfn: UInt64) {
        guard !userFixedLayout else { return }
        calibration.observe(page: page, pfn: pfn)
    }

    func learnVmemmapBase(_ base: UInt64) {
        guard !userFixedLayout, profile.memMapBase == nil else { return }
        profile.memMapBase = base
        if profile.structPageSize == nil { profile.structPageSize = 64 }
    }

    func learnPageOffsetBase(_ base: UInt64) {
        guard !userFixedLayout else { return }
        profile.pageOffsetBase = base
    }

    /// §2.3: the x86_64 direct-map base without KASLR (4-level paging), and the end of its 64 TiB range.
    public static let x86_64DefaultPageOffsetBase: UInt64 = 0xffff_8880_0000_0000
    static let x86_64DefaultDirectMapEnd: UInt64 = 0xffff_c880_0000_0000
    /// Lowest x86_64 kernel-half address with 4-level paging: a fault address at or above it is 64-bit.
    static let x86_64KernelHalf: UInt64 = 0xffff_8000_0000_0000
    /// True once `pfn(forDirectMapAddress:)` resolved an address with the default base.
    public private(set) var directMapBaseDefaulted = false
    /// Called once, the first time the default base is used: one line for the user (the CLI prints it on stderr).
    public var onDirectMapBaseDefaulted: ((String) -> Void)?

    /// pfn of a direct-map address, for x86 supervisor faults (`page_fault_kernel` is an x86-only tracepoint).
    /// With the base known (profile, `--page-offset-base`, `@page_offset_base` fetcharg) this is the profile's
    /// answer. Without it, on x86_64 (`--arch x86_64`, or no arch known and an address in the 64-bit kernel
    /// half, >= 0xffff800000000000, which no i386 or s390x address reaches), the non-KASLR default
    /// 0xffff888000000000 is used for addresses inside its 64 TiB direct map, with one warning.
    public func pfn(forDirectMapAddress va: UInt64) -> UInt64? {
        if profile.pageOffsetBase != nil { return profile.pfn(forDirectMapAddress: va) }
        let x86_64 = profile.arch == .x86_64 || (profile.arch == .unknown && va >= AddressResolver.x86_64KernelHalf)
        let base = AddressResolver.x86_64DefaultPageOffsetBase
        guard x86_64, va >= base, va < AddressResolver.x86_64DefaultDirectMapEnd else { return nil }
        if !directMapBaseDefaulted {
            directMapBaseDefaulted = true
            onDirectMapBaseDefaulted?("no page_offset_base in the trace: x86_64 direct-map addresses resolved with the non-KASLR default 0xffff888000000000 (spec §2.3); pass --page-offset-base if the kernel randomizes its memory layout")
        }
        return (va - base) >> profile.pageShift
    }

    func inferArch(_ arch: KernelProfile.Arch) {
        guard !userFixedArch, profile.arch == .unknown else { return }
        profile.arch = arch
        if arch == .i386 && profile.pageOffsetBase == nil { profile.pageOffsetBase = 0xC000_0000 }
    }
}
