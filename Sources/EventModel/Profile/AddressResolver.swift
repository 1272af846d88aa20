import TraceIngest

/// The live view of the kernel profile while a trace is read: fixed values from the command line,
/// plus what the trace teaches (`@vmemmap_base` fetchargs, page/pfn pairs).
public final class AddressResolver {
    public private(set) var profile: KernelProfile {
        didSet { if profile != oldValue { layoutVersion &+= 1 } }
    }
    public private(set) var calibration = PageCalibration() {
        didSet { if calibration.base != oldValue.base || calibration.size != oldValue.size { layoutVersion &+= 1 } }
    }
    /// Changes whenever what `pfn(forPage:)` answers may change (not on every calibration pair).
    public private(set) var layoutVersion = 0

    /// What address resolution depends on, to hand to a resolver on another thread.
    public struct Layout: Sendable {
        let profile: KernelProfile
        let calibration: PageCalibration
    }

    public var layout: Layout { Layout(profile: profile, calibration: calibration) }

    /// Takes over another resolver's layout (the replay side of a pipelined read).
    public func install(_ layout: Layout) {
        profile = layout.profile
        calibration = layout.calibration
    }
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
