#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A read-only `mmap` of a whole file. Regions already consumed are given back with
/// `madvise(MADV_DONTNEED)`, so resident memory stays bounded however large the file is.
public final class MappedFile {
    public let bytes: UnsafeRawBufferPointer
    public var count: Int { bytes.count }
    private var released = 0
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Maps `path`; returns nil for files that cannot be mapped (pipes, character devices).
    public init?(path: String) throws {
        let fd = open(path, O_RDONLY)
        if fd < 0 { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw InputError.cannotOpen(path: path, reason: "mmap: " + String(cString: strerror(errno)))
        }
        madvise(p, size, MADV_SEQUENTIAL)
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    /// Drops resident pages below `offset` (rounded down to a page).
    public func release(upTo offset: Int) {
        let end = (offset / MappedFile.pageSize) * MappedFile.pageSize
        guard end - released >= 8 << 20, let base = bytes.baseAddress else { return }
        madvise(UnsafeMutableRawPointer(mutating: base) + released, end - released, MADV_DONTNEED)
        released = end
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
