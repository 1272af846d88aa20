#if canImport(Glibc)
import Glibc
#endif

/// Reading `name=value` fields out of an event payload without building strings.
///
///     (__kmap_local_page_prot+0x0/0x60) page=0xf6dfd788
///     prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=init next_pid=321 next_prio=120
public enum Fields {
    /// The bytes of the value of `name` (up to the next space), or nil.
    @inline(__always)
    public static func value(_ name: StaticString, in payload: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        value(UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount), in: payload)
    }

    public static func value(_ name: UnsafeRawBufferPointer, in payload: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard let range = valueRange(name, in: payload) else { return nil }
        return UnsafeRawBufferPointer(rebasing: payload[range])
    }

    /// Range of the value of `name`: it must start the payload or follow a space/`(`/`)`, and be followed by `=`.
    public static func valueRange(_ name: UnsafeRawBufferPointer, in payload: UnsafeRawBufferPointer) -> Range<Int>? {
        let n = name.count
        let count = payload.count
        guard n > 0, count > n, let base = payload.baseAddress, let nb = name.baseAddress else { return nil }
        // Visit every '=' (memchr) and look back for the name: payloads hold few '=', so this is the
        // same first match as a byte-by-byte scan, at a fraction of the cost.
        var from = n
        while from < count, let hit = memchr(base + from, Int32(UInt8(ascii: "=")), count - from) {
            let q = UnsafeRawPointer(hit) - base
            let i = q - n
            if i == 0 || payload[i - 1] == 0x20 || payload[i - 1] == UInt8(ascii: "(") || payload[i - 1] == UInt8(ascii: ")") || payload[i - 1] == UInt8(ascii: ",") {
                if memcmp(base + i, nb, n) == 0 {
                    let start = q + 1
                    var end = start
                    while end < count && payload[end] != 0x20 && payload[end] != UInt8(ascii: ",") { end += 1 }
                    return start..<end
                }
            }
            from = q + 1
        }
        return nil
    }

    /// The value of `name` as an integer: `0x` hex, decimal, or negative decimal (two's complement).
    @inline(__always)
    public static func integer(_ name: StaticString, in payload: UnsafeRawBufferPointer) -> UInt64? {
        guard let v = value(name, in: payload) else { return nil }
        return parseInteger(v)
    }

    /// Parses `0x1f`, `31`, `-1` (as two's complement) or bare hex with a-f digits. Nil on overflow or junk.
    public static func parseInteger(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        var i = 0
        let n = bytes.count
        guard n > 0 else { return nil }
        var negative = false
        if bytes[0] == UInt8(ascii: "-") { negative = true; i = 1 }
        var hex = false
        if i + 1 < n && bytes[i] == UInt8(ascii: "0") && (bytes[i + 1] | 0x20) == UInt8(ascii: "x") { hex = true; i += 2 }
        guard i < n else { return nil }
        var v: UInt64 = 0
        if hex {
            while i < n {
                let c = bytes[i]
                let d: UInt64
                switch c {
                case 0x30...0x39: d = UInt64(c - 0x30)
                case 0x61...0x66: d = UInt64(c - 0x61 + 10)
                case 0x41...0x46: d = UInt64(c - 0x41 + 10)
                default: return nil
                }
                if v >> 60 != 0 { return nil }
                v = v << 4 | d
                i += 1
            }
        } else {
            while i < n {
                let c = bytes[i]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(c - 0x30))
                if o1 || o2 { return nil }
                v = a
                i += 1
            }
        }
        return negative ? 0 &- v : v
    }

    /// Parses the hex digits of `bytes` with no prefix (syscall arguments print `7f9f2d3b5000`).
    public static func parseBareHex(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard !bytes.isEmpty, bytes.count <= 16 else { return nil }
        var v: UInt64 = 0
        for c in bytes {
            switch c {
            case 0x30...0x39: v = v << 4 | UInt64(c - 0x30)
            case 0x61...0x66: v = v << 4 | UInt64(c - 0x61 + 10)
            case 0x41...0x46: v = v << 4 | UInt64(c - 0x41 + 10)
            default: return nil
            }
        }
        return v
    }

    /// For a kprobe payload `(func+0x0/0x60) ...` or kretprobe `(caller+0x51/0x60 <- func) ...`:
    /// the probe location. Returns nil if the payload does not start with `(`.
    public static func probeLocation(_ payload: UnsafeRawBufferPointer) -> ProbeLocation? {
        guard payload.count > 2, payload[0] == UInt8(ascii: "("), let base = payload.baseAddress else { return nil }
        guard let cp = memchr(base + 1, Int32(UInt8(ascii: ")")), payload.count - 1) else { return nil }
        let close = UnsafeRawPointer(cp) - base
        // Syscall arguments print as "(fd: 3, buf: 7ffd...)": not a probe location.
        if memchr(base + 1, Int32(UInt8(ascii: ":")), close - 1) != nil { return nil }
        // A kretprobe: "(caller+0x51/0x60 <- func)".
        if let lt = memchr(base + 1, Int32(UInt8(ascii: "<")), close - 1) {
            let i = UnsafeRawPointer(lt) - base
            if i >= 2, i + 2 < close, payload[i - 1] == 0x20, payload[i + 1] == UInt8(ascii: "-"), payload[i + 2] == 0x20 {
                let caller = UnsafeRawBufferPointer(rebasing: payload[1..<(i - 1)])
                let function = UnsafeRawBufferPointer(rebasing: payload[(i + 3)..<close])
                return ProbeLocation(function: symbolName(function), caller: symbolName(caller), isReturn: true,
                                     argumentsStart: close + 1)
            }
        }
        return ProbeLocation(function: symbolName(UnsafeRawBufferPointer(rebasing: payload[1..<close])), caller: nil,
                             isReturn: false, argumentsStart: close + 1)
    }

    /// `kmap_high+0x0/0x260` -> `kmap_high`; `ffffffff812d2af0` stays as is.
    public static func symbolName(_ s: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var end = 0
        while end < s.count && s[end] != UInt8(ascii: "+") && s[end] != 0x20 { end += 1 }
        return UnsafeRawBufferPointer(rebasing: s[0..<end])
    }
}

/// Where a kprobe or kretprobe fired, read from its payload.
public struct ProbeLocation {
    /// The probed function (for a kretprobe, the function that returned).
    public var function: UnsafeRawBufferPointer
    /// For a kretprobe, the function it returned into: the call site.
    public var caller: UnsafeRawBufferPointer?
    public var isReturn: Bool
    /// Where the `name=value` arguments start in the payload.
    public var argumentsStart: Int
}
