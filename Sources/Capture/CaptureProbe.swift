/// The type a kprobe fetcharg is recorded as, by meaning; the width follows the arch.
public enum ProbeArgType: Sendable, Equatable {
    /// A pointer or address, printed in hex: `x64` / `x32`.
    case pointer
    /// `unsigned long`: `u64` / `u32`.
    case ulong
    /// `long`: `s64` / `s32`.
    case long
    case int, uint, u8
    /// A 32-bit flag word in hex (`gup_flags`, `vm_fault.flags`): `x32`.
    case flags32

    func spelled(_ abi: ArchABI) -> String {
        switch self {
        case .pointer: return abi.is64Bit ? "x64" : "x32"
        case .ulong: return abi.is64Bit ? "u64" : "u32"
        case .long: return abi.is64Bit ? "s64" : "s32"
        case .int: return "s32"
        case .uint: return "u32"
        case .u8: return "u8"
        case .flags32: return "x32"
        }
    }
}

/// A kernel struct member a probe dereferences, with its offset on LP64 and ILP32 kernels
/// (Debian 6.1, read from the kernels' BTF and checked against the real captures' `kprobe_events`).
public struct StructMember: Sendable, Equatable {
    public let type: String, member: String
    public let lp64: Int, ilp32: Int

    public func offset(_ abi: ArchABI) -> Int { abi.is64Bit ? lp64 : ilp32 }

    public static let folioFlags = StructMember(type: "folio", member: "flags", lp64: 0, ilp32: 0)
    public static let folioMapping = StructMember(type: "folio", member: "mapping", lp64: 24, ilp32: 12)
    public static let folioIndex = StructMember(type: "folio", member: "index", lp64: 32, ilp32: 16)
    public static let pageFlags = StructMember(type: "page", member: "flags", lp64: 0, ilp32: 0)
    public static let addressSpaceHost = StructMember(type: "address_space", member: "host", lp64: 0, ilp32: 0)
    public static let inodeIno = StructMember(type: "inode", member: "i_ino", lp64: 64, ilp32: 40)
    public static let vmaStart = StructMember(type: "vm_area_struct", member: "vm_start", lp64: 0, ilp32: 0)
    public static let vmaEnd = StructMember(type: "vm_area_struct", member: "vm_end", lp64: 8, ilp32: 4)
    public static let vmFaultVma = StructMember(type: "vm_fault", member: "vma", lp64: 0, ilp32: 0)
    public static let vmFaultPgoff = StructMember(type: "vm_fault", member: "pgoff", lp64: 16, ilp32: 8)
    public static let vmFaultAddress = StructMember(type: "vm_fault", member: "address", lp64: 24, ilp32: 12)
    public static let vmFaultFlags = StructMember(type: "vm_fault", member: "flags", lp64: 40, ilp32: 20)
    public static let pipeBufferPage = StructMember(type: "pipe_buffer", member: "page", lp64: 0, ilp32: 0)
    public static let pipeBufferOffset = StructMember(type: "pipe_buffer", member: "offset", lp64: 8, ilp32: 4)
    public static let pipeBufferLen = StructMember(type: "pipe_buffer", member: "len", lp64: 12, ilp32: 8)

    public static let all: [StructMember] = [
        folioFlags, folioMapping, folioIndex, pageFlags, addressSpaceHost, inodeIno, vmaStart, vmaEnd,
        vmFaultVma, vmFaultPgoff, vmFaultAddress, vmFaultFlags, pipeBufferPage, pipeBufferOffset, pipeBufferLen,
    ]
}

/// Where a fetcharg's value comes from.
public indirect enum ProbeFetch: Sendable, Equatable {
    /// Function argument N (1-based).
    case arg(Int)
    case retval
    /// A member of the struct `of` points to: `+32(%di)`.
    case member(StructMember, of: ProbeFetch)
    /// A kernel variable by symbol: `@vmemmap_base` (needs CONFIG_KALLSYMS_ALL).
    case symbol(String)

    /// As kprobe_events spells it for `abi`; `offsets` overrides the built-in struct offsets (from BTF).
    func spelled(_ abi: ArchABI, offsets: StructOffsets?) -> String {
        switch self {
        case let .arg(n): return abi.argument(n)
        case .retval: return "$retval"
        case let .member(m, of: base):
            let off = offsets?.offset(of: m) ?? m.offset(abi)
            return "+\(off)(\(base.spelled(abi, offsets: offsets)))"
        case let .symbol(s): return "@" + s
        }
    }
}

/// One recorded value of a probe: `name=fetch:type`.
public struct ProbeArg: Sendable, Equatable {
    public let name: String
    public let fetch: ProbeFetch
    public let type: ProbeArgType
    /// Only on these arches (nil: all); `@SYM` fetchargs exist only where the kernel exports the symbol.
    public let onlyOn: Set<String>?

    public init(_ name: String, _ fetch: ProbeFetch, _ type: ProbeArgType, onlyOn: Set<String>? = nil) {
        self.name = name; self.fetch = fetch; self.type = type; self.onlyOn = onlyOn
    }
}

/// One kprobe or kretprobe of the capture catalog: the event it creates, the function, what it records.
public struct CaptureProbe: Sendable, Equatable {
    /// The event's group (`gup`, `kmap`, ...) and name, as the real captures called them.
    public let group: String, event: String
    public let function: String
    public let isReturn: Bool
    public let args: [ProbeArg]
    /// Models that want this probe although their requirements do not name its function (context probes).
    public let alsoFor: Set<String>
    /// Kernel versions the function exists in, where it was renamed or removed (nil: no known bound).
    public let since: KernelVersion?, until: KernelVersion?

    public init(_ group: String, _ event: String, _ function: String, isReturn: Bool = false, _ args: [ProbeArg],
                alsoFor: Set<String> = [], since: KernelVersion? = nil, until: KernelVersion? = nil) {
        self.group = group; self.event = event; self.function = function; self.isReturn = isReturn; self.args = args
        self.alsoFor = alsoFor; self.since = since; self.until = until
    }

    /// The kprobe_events line for `abi`: `p:gup/pin_user_pages pin_user_pages start=%di:x64 ...`.
    /// `withoutSymbols` leaves out `@SYM` fetchargs (for kernels without CONFIG_KALLSYMS_ALL, which reject them).
    public func definition(for abi: ArchABI, offsets: StructOffsets? = nil, withoutSymbols: Bool = false) -> String {
        var line = (isReturn ? "r:" : "p:") + group + "/" + event + " " + function
        for a in args where a.onlyOn?.contains(abi.name) ?? true {
            if withoutSymbols, case .symbol = a.fetch { continue }
            line += " \(a.name)=\(a.fetch.spelled(abi, offsets: offsets)):\(a.type.spelled(abi))"
        }
        return line
    }

    /// The arguments part alone (what `perf probe` takes after the function).
    public func argumentList(for abi: ArchABI, offsets: StructOffsets? = nil) -> String {
        args.filter { $0.onlyOn?.contains(abi.name) ?? true }
            .map { "\($0.name)=\($0.fetch.spelled(abi, offsets: offsets)):\($0.type.spelled(abi))" }.joined(separator: " ")
    }

    /// Whether the function is known to exist in kernel `version` (true when nothing is known).
    public func exists(in version: KernelVersion?) -> Bool {
        guard let version else { return true }
        if let since, version < since { return false }
        if let until, (version.major, version.minor) > (until.major, until.minor) { return false }
        return true
    }

    /// Whether any argument reads a kernel variable by symbol (`@vmemmap_base`).
    public var readsSymbols: Bool { args.contains { if case .symbol = $0.fetch { return true }; return false } }

    /// The struct members this probe dereferences.
    public var members: [StructMember] {
        func walk(_ f: ProbeFetch) -> [StructMember] {
            if case let .member(m, of: base) = f { return [m] + walk(base) }
            return []
        }
        return args.flatMap { walk($0.fetch) }
    }
}

/// A kernel version `major.minor[.patch]`, compared numerically.
public struct KernelVersion: Sendable, Comparable, CustomStringConvertible {
    public let major: Int, minor: Int, patch: Int

    public init(_ major: Int, _ minor: Int, _ patch: Int = 0) { self.major = major; self.minor = minor; self.patch = patch }

    /// From `6.1.0-50-686-pae`, `6.18.44-fc`, `6.5`: the leading numbers.
    public init?(parsing s: String) {
        let nums = s.split(whereSeparator: { !$0.isNumber && $0 != "." }).first.map {
            $0.split(separator: ".").compactMap { Int($0) }
        } ?? []
        guard nums.count >= 2 else { return nil }
        self.init(nums[0], nums[1], nums.count > 2 ? nums[2] : 0)
    }

    public static func < (a: KernelVersion, b: KernelVersion) -> Bool {
        (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
    }

    public var description: String { "\(major).\(minor)" + (patch == 0 ? "" : ".\(patch)") }
}

/// Struct member offsets read from a kernel's BTF, overriding the built-in LP64/ILP32 table.
public struct StructOffsets: Sendable {
    public var byMember: [String: Int] = [:]
    public init(byMember: [String: Int] = [:]) { self.byMember = byMember }
    public func offset(of m: StructMember) -> Int? { byMember[m.type + "." + m.member] }
}
