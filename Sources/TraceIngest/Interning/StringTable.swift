#if canImport(Glibc)
import Glibc
#endif

/// Interns byte strings (event names, comm names, symbols) to small dense ids, once.
///
/// Lookups hash the bytes in place (FNV-1a) and compare against an arena, so the hot path never
/// builds a `String`. Id 0 is reserved for "none".
///
/// One thread interns; other threads may call `string(_:)` meanwhile (a pipelined read): adding a
/// string and reading one back take a lock, the cached hot path does not.
public final class StringTable {
    private let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    public typealias ID = UInt32

    private var arena: [UInt8] = []
    private var starts: [Int] = [0]       // per id: start in arena (id 0 = empty)
    private var lengths: [Int] = [0]
    private var slots: [UInt32]            // open addressing: id or 0
    private var mask: Int
    private var strings: [String?] = [""]
    /// The most ids this table will hand out; further new strings map to `overflowID`.
    public let capacityLimit: Int
    /// How many distinct strings were refused because the table was full.
    public private(set) var overflowCount = 0

    /// Direct-mapped cache in front of the table for strings of at most 16 bytes (event names and
    /// comm names nearly always are): (length, first 8 bytes, last 8 bytes) identify them exactly.
    private struct CacheEntry { var a: UInt64 = 0; var b: UInt64 = 0; var length: Int = -1; var id: ID = 0 }
    /// 4096 entries: kretprobe call sites (`caller+0x51/0x60` -> `caller`) are interned on every return and
    /// run to hundreds of distinct names.
    private var cache = [CacheEntry](repeating: CacheEntry(), count: 4096)

    public init(capacityLimit: Int = 4_000_000) {
        self.capacityLimit = capacityLimit
        slots = [UInt32](repeating: 0, count: 1024)
        mask = 1023
    }

    public var count: Int { starts.count }

    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h
    }

    /// Returns the id of `bytes`, adding it if new. Empty input gives 0.
    @inline(__always)
    public func intern(_ bytes: UnsafeRawBufferPointer) -> ID {
        let n = bytes.count
        if n == 0 { return 0 }
        let (a, b) = StringTable.words(bytes)
        // Multiplied after combining, so that every bit of both words reaches the slot: `kmap_local_page_ret`
        // and `kmap_local_pfn_ret` share their first 8 bytes and the top half of their last 8, and with only
        // the first word multiplied they took one slot, evicting each other on every other line.
        let slot = Int(truncatingIfNeeded: (((a &* 0x9E3779B97F4A7C15) ^ b ^ UInt64(n)) &* 0xff51_afd7_ed55_8ccd) >> 52)
        let e = cache[slot]
        // Up to 16 bytes the two words are the whole string; longer ones are checked against the arena.
        if e.length == n && e.a == a && e.b == b && (n <= 16 || equals(Int(e.id), bytes)) { return e.id }
        let id = internSlow(bytes)
        if id != StringTable.overflowID { cache[slot] = CacheEntry(a: a, b: b, length: n, id: id) }
        return id
    }

    /// First and last 8 bytes (zero-padded for shorter strings): together they cover up to 16 bytes.
    @inline(__always)
    static func words(_ bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        let n = bytes.count
        let p = bytes.baseAddress!
        if n >= 8 {
            return (p.loadUnaligned(as: UInt64.self), (p + (n - 8)).loadUnaligned(as: UInt64.self))
        }
        var a: UInt64 = 0
        for i in 0..<n { a |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << (8 * UInt64(i)) }
        return (a, 0)
    }

    private func internSlow(_ bytes: UnsafeRawBufferPointer) -> ID {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        var i = Int(truncatingIfNeeded: StringTable.hash(bytes)) & mask
        while true {
            let id = slots[i]
            if id == 0 { break }
            if lengths[Int(id)] == bytes.count && equals(Int(id), bytes) { return id }
            i = (i + 1) & mask
        }
        if starts.count >= capacityLimit {
            overflowCount += 1
            return StringTable.overflowID
        }
        let id = UInt32(starts.count)
        starts.append(arena.count)
        lengths.append(bytes.count)
        arena.append(contentsOf: bytes)
        strings.append(nil)
        slots[i] = id
        if starts.count * 2 > slots.count { grow() }
        return id
    }

    public func intern(_ string: String) -> ID {
        var s = string
        return s.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
    }

    /// The id used for every string past `capacityLimit`; it reads back as "<overflow>".
    public static let overflowID: ID = .max

    /// The string for `id` (invalid UTF-8 is repaired with U+FFFD).
    public func string(_ id: ID) -> String {
        if id == StringTable.overflowID { return "<overflow>" }
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        let i = Int(id)
        if let s = strings[i] { return s }
        let s = arena.withUnsafeBufferPointer {
            String(decoding: UnsafeBufferPointer(rebasing: $0[starts[i]..<starts[i] + lengths[i]]), as: UTF8.self)
        }
        strings[i] = s
        return s
    }

    /// Appends the bytes of `id` as interned (no UTF-8 repair) to `out`, and returns their count.
    /// For the thread that interns into this table.
    @discardableResult
    public func appendBytes(of id: ID, to out: inout [UInt8]) -> Int {
        guard id != StringTable.overflowID, Int(id) < starts.count else { return 0 }
        let i = Int(id)
        out.append(contentsOf: arena[starts[i]..<starts[i] + lengths[i]])
        return lengths[i]
    }

    @inline(__always)
    private func equals(_ id: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let s = starts[id]
        return arena.withUnsafeBytes { a in
            memcmpBytes(a.baseAddress! + s, bytes.baseAddress!, bytes.count)
        }
    }

    private func grow() {
        let newCount = slots.count * 2
        var newSlots = [UInt32](repeating: 0, count: newCount)
        let newMask = newCount - 1
        for id in 1..<starts.count {
            let h = arena.withUnsafeBytes {
                StringTable.hash(UnsafeRawBufferPointer(rebasing: $0[starts[id]..<starts[id] + lengths[id]]))
            }
            var i = Int(truncatingIfNeeded: h) & newMask
            while newSlots[i] != 0 { i = (i + 1) & newMask }
            newSlots[i] = UInt32(id)
        }
        slots = newSlots
        mask = newMask
    }
}

@inline(__always)
func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
