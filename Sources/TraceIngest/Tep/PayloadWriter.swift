/// A growable byte buffer reused for every payload a binary reader prints (`name=value ...`).
/// The bytes it hands out are valid until the next `reset()`.
final class PayloadWriter {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    var count = 0

    init(capacity: Int = 4096) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    @inline(__always) func reset() { count = 0 }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    @inline(__always)
    func reserve(_ n: Int) {
        if count + n <= capacity { return }
        var c = capacity * 2
        while c < count + n { c *= 2 }
        let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        nb.update(from: base, count: count)
        base.deallocate()
        base = nb
        capacity = c
    }

    @inline(__always)
    func byte(_ b: UInt8) {
        reserve(1)
        base[count] = b
        count += 1
    }

    func append(_ p: UnsafeRawPointer, _ n: Int) {
        guard n > 0 else { return }
        reserve(n)
        (base + count).update(from: p.assumingMemoryBound(to: UInt8.self), count: n)
        count += n
    }

    func append(_ b: [UInt8]) { b.withUnsafeBytes { append($0.baseAddress!, $0.count) } }

    func append(_ s: StaticString) { append(s.utf8Start, s.utf8CodeUnitCount) }

    /// A NUL-terminated (or `limit`-bounded) C string.
    func appendCString(_ p: UnsafeRawPointer, limit: Int) {
        var n = 0
        let q = p.assumingMemoryBound(to: UInt8.self)
        while n < limit && q[n] != 0 { n += 1 }
        append(p, n)
    }

    /// `0x1f` (always with the prefix: `Fields.parseInteger` reads it).
    @inline(__always)
    func hex(_ v: UInt64, prefix: Bool = true) {
        reserve(18)
        if prefix { base[count] = 0x30; base[count + 1] = 0x78; count += 2 }
        if v == 0 { base[count] = 0x30; count += 1; return }
        let digits = (64 - v.leadingZeroBitCount + 3) / 4
        var i = digits - 1
        var x = v
        while i >= 0 {
            let d = UInt8(truncatingIfNeeded: x & 0xf)
            base[count + i] = d < 10 ? 0x30 &+ d : 0x57 &+ d
            x >>= 4
            i -= 1
        }
        count += digits
    }

    @inline(__always)
    func unsigned(_ v: UInt64) {
        reserve(20)
        if v == 0 { base[count] = 0x30; count += 1; return }
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &tmp) { t in
            while x > 0 { t[n] = UInt8(x % 10) + 0x30; x /= 10; n += 1 }
            for i in 0..<n { base[count + i] = t[n - 1 - i] }
        }
        count += n
    }

    @inline(__always)
    func signed(_ v: Int64) {
        if v < 0 { byte(UInt8(ascii: "-")); unsigned(0 &- UInt64(bitPattern: v)) } else { unsigned(UInt64(v)) }
    }
}
