#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A run of an input's records that a worker thread can decode on its own: a `TextPiece` (whole
/// lines, cut where a record starts) or a `RecordPiece` (trace.dat records copied out of their pages).
/// The thread that reads the input hands the pieces out in input order.
public protocol InputPiece: Sendable {
    /// How far into the input the piece reaches (bytes), for progress.
    var endOffset: Int { get }
    /// What to do once the piece's events were merged, without holding on to its bytes: called in
    /// input order, on the thread that reads the input.
    var releaseLater: @Sendable () -> Void { get }
    /// About how many events the piece will give (to size buffers).
    var expectedItems: Int { get }
}

extension TextPiece: InputPiece {
    public var endOffset: Int { offset + bytes.count }
    public var expectedItems: Int { bytes.count / 64 }
    public var releaseLater: @Sendable () -> Void {
        let r = releaser
        return { r.release() }
    }
}

/// Objects given back after use (pieces merged), for the thread that reads the input to fill again:
/// steady state allocates nothing.
public final class ReusePool<Element: AnyObject>: @unchecked Sendable {
    private var lock = pthread_mutex_t()
    private var free: [Element] = []
    public init() { pthread_mutex_init(&lock, nil) }
    deinit { pthread_mutex_destroy(&lock) }

    /// A given-back element, or a new one.
    public func take(_ make: () -> Element) -> Element {
        pthread_mutex_lock(&lock)
        let e = free.popLast()
        pthread_mutex_unlock(&lock)
        return e ?? make()
    }

    public func put(_ element: Element) {
        pthread_mutex_lock(&lock)
        free.append(element)
        pthread_mutex_unlock(&lock)
    }
}
