/// How a kprobe reads a function's arguments on one architecture: the argument registers of its kernel
/// calling convention, and the size of a pointer (which picks `x64`/`x32` and struct offsets).
///
///     x86_64  p:gup/pin_user_pages pin_user_pages start=%di:x64 nr_pages=%si:u64 ...
///     i386    p:gup/pin_user_pages pin_user_pages start=%ax:x32 nr_pages=%dx:u32 ... pages=$arg4:x32
///     s390x   p:gup/pin_user_pages pin_user_pages start=%r2:x64 nr_pages=%r3:u64 ...
public struct ArchABI: Sendable, Equatable {
    /// The name `--arch` takes (`uname -m` spellings are accepted through `named(_:)`).
    public let name: String
    /// Argument registers in order; argument N beyond them is fetched as `$argN` (kernels since 4.20).
    public let argumentRegisters: [String]
    /// 64 on LP64 kernels, 32 on ILP32 ones.
    public let pointerBits: Int

    public static let x86_64 = ArchABI(name: "x86_64", argumentRegisters: ["%di", "%si", "%dx", "%cx", "%r8", "%r9"], pointerBits: 64)
    /// The i386 kernel is built with `-mregparm=3`: the first three arguments in eax, edx, ecx, then the stack.
    public static let i386 = ArchABI(name: "i386", argumentRegisters: ["%ax", "%dx", "%cx"], pointerBits: 32)
    /// s390x: r2..r6, then the stack.
    public static let s390x = ArchABI(name: "s390x", argumentRegisters: ["%r2", "%r3", "%r4", "%r5", "%r6"], pointerBits: 64)
    public static let arm64 = ArchABI(name: "arm64", argumentRegisters: (0..<8).map { "%x\($0)" }, pointerBits: 64)
    /// 32-bit arm (AAPCS): r0..r3, then the stack.
    public static let arm = ArchABI(name: "arm", argumentRegisters: ["%r0", "%r1", "%r2", "%r3"], pointerBits: 32)

    public static let all: [ArchABI] = [.x86_64, .i386, .s390x, .arm64, .arm]

    /// By `--arch` name or `uname -m` (`amd64`, `i686`, `aarch64`, `armv7l`, ...).
    public static func named(_ name: String) -> ArchABI? {
        switch name {
        case "x86_64", "amd64", "x86-64": return .x86_64
        case "i386", "i486", "i586", "i686", "x86", "686-pae": return .i386
        case "s390x", "s390": return .s390x
        case "arm64", "aarch64": return .arm64
        default:
            if name == "arm" || name.hasPrefix("armv") { return .arm }
            return nil
        }
    }

    /// The fetcharg of argument `n` (1-based): a register, or `$argN` past the registers.
    public func argument(_ n: Int) -> String {
        n <= argumentRegisters.count ? argumentRegisters[n - 1] : "$arg\(n)"
    }

    public var is64Bit: Bool { pointerBits == 64 }
}
