#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Something that fills a buffer with the next bytes of an input; 0 means the end.
protocol ByteProducer: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// A buffer with at least this much room is filled without a copy (a decoder's block size); 1 when it does not matter.
    var readGranule: Int { get }
}

extension ByteProducer {
    var readGranule: Int { 1 }
}

/// Reads a file descriptor (stdin or a pipe) with large `read(2)` calls.
final class DescriptorReader: ByteProducer {
    let fd: Int32
    let path: String
    /// Bytes sniffed before the reader was created, handed out first.
    private var pending: [UInt8]

    init(fd: Int32, path: String, pending: [UInt8] = []) {
        self.fd = fd
        self.path = path
        self.pending = pending
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if !pending.isEmpty {
            let n = min(pending.count, buffer.count)
            pending.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
            pending.removeFirst(n)
            return n
        }
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw InputError.readFailed(path: path, reason: String(cString: strerror(errno)))
        }
    }
}
