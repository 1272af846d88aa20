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

    func inferArch(_ arch: KernelProfile.Arch) {
        guard !userFixedArch, profile.arch == .unknown else { return }
        profile.arch = arch
        if arch == .i386 && profile.pageOffsetBase == nil { profile.pageOffsetBase = 0xC000_0000 }
    }
}
