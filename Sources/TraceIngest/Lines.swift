#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Splits a chunk of text into lines with `memchr`, for the text readers.
enum Lines {
    /// Calls `body(bytes, start, end)` for each line of `chunk`; `end` excludes the newline and a
    /// trailing carriage return. The last line may lack its newline.
    @inline(__always)
    static func forEach(in chunk: UnsafeRawBufferPointer, _ body: (UnsafePointer<UInt8>, Int, Int) -> Void) {
        guard let base = chunk.baseAddress else { return }
        let p = base.assumingMemoryBound(to: UInt8.self)
        let end = chunk.count
        var s = 0
        while s < end {
            var e: Int
            if let nl = memchr(p + s, 0x0A, end - s) { e = UnsafeRawPointer(nl) - base } else { e = end }
            let next = e + 1
            if e > s && p[e - 1] == 0x0D { e -= 1 }
            body(p, s, e)
            s = next
        }
    }
}

/// A reader of a text format: whole lines in, records out.
protocol TextTraceReader: AnyObject {
    func read(_ chunk: UnsafeRawBufferPointer, offset: Int, into sink: RawEventSink)
}
