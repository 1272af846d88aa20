#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A kernel's symbol table in `/proc/kallsyms` form (`--kallsyms FILE`), to name the bare addresses
/// `trace-cmd report` prints when it has no symbols:
///
///     ... try_grab_page:  (ffffffff812c40a0) page=...          kprobe location
///      => ffffffff811f55d5                                     stack frame (-R)
///
///     ffffffff812c40a0 T try_grab_page
///     ffffffffc0a01000 t nf_hook_slow	[nf_tables]
///
/// An address resolves to the symbol at or below it (text and data symbols alike), as `%pS` would.
public final class KernelSymbols: Sendable {
    private let addresses: [UInt64]
    private let names: [String]

    public enum LoadError: Error, CustomStringConvertible {
        case unreadable(String, String)
        case empty(String)
        public var description: String {
            switch self {
            case let .unreadable(path, why): return "\(path): cannot read kallsyms: \(why)"
            case let .empty(path): return "\(path): no `ADDRESS TYPE NAME` lines with a non-zero address (a kallsyms read without root shows zeros)"
            }
        }
    }

    /// Reads a kallsyms file.
    /// - Throws: `LoadError` if it cannot be read or holds no usable symbol.
    public convenience init(path: String) throws {
        guard let f = fopen(path, "r") else { throw LoadError.unreadable(path, String(cString: strerror(errno))) }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n <= 0 { break }
            bytes.append(contentsOf: buf[0..<n])
        }
        try self.init(text: bytes, path: path)
    }

    public init(text: [UInt8], path: String = "<kallsyms>") throws {
        var pairs: [(UInt64, String)] = []
        for line in text.split(separator: 0x0A) {
            let words = line.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 })
            guard words.count >= 3, words[0].count <= 16 else { continue }
            var a: UInt64 = 0
            var ok = true
            for c in words[0] {
                switch c {
                case 0x30...0x39: a = a << 4 | UInt64(c - 0x30)
                case 0x61...0x66: a = a << 4 | UInt64(c - 0x61 + 10)
                case 0x41...0x46: a = a << 4 | UInt64(c - 0x41 + 10)
                default: ok = false
                }
            }
            guard ok, a != 0 else { continue }
            pairs.append((a, String(decoding: words[2], as: UTF8.self)))
        }
        guard !pairs.isEmpty else { throw LoadError.empty(path) }
        pairs.sort { $0.0 < $1.0 }
        addresses = pairs.map(\.0)
        names = pairs.map(\.1)
    }

    /// The symbol at or below `address` and the offset into it; nil below the first symbol.
    public func symbol(at address: UInt64) -> (name: String, offset: UInt64)? {
        var lo = 0, hi = addresses.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if addresses[mid] <= address { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        return (names[lo - 1], address - addresses[lo - 1])
    }

    /// `ffffffff812c40a0` or `0xffffffff812c40a0` (what trace-cmd prints for an unresolved address) -> its value.
    public static func address(_ text: UnsafeRawBufferPointer) -> UInt64? {
        var i = 0
        if text.count > 2 && text[0] == UInt8(ascii: "0") && (text[1] == UInt8(ascii: "x") || text[1] == UInt8(ascii: "X")) { i = 2 }
        let digits = text.count - i
        guard digits >= 8 && digits <= 16 else { return nil }
        var a: UInt64 = 0
        while i < text.count {
            let c = text[i]
            switch c {
            case 0x30...0x39: a = a << 4 | UInt64(c - 0x30)
            case 0x61...0x66: a = a << 4 | UInt64(c - 0x61 + 10)
            case 0x41...0x46: a = a << 4 | UInt64(c - 0x41 + 10)
            default: return nil
            }
            i += 1
        }
        return a
    }
}
