#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One trace input: a file (mmap'd), or stdin (`-`), each optionally compressed (LZ4, gzip, xz, zstd;
/// `CompressionMagic`); its format
/// (`TraceFormat`) sniffed from the content or forced with `--format-in`.
///
/// Hands text content to a reader as chunks that always end at a line boundary, so a reader never
/// sees half a line; binary content (trace.dat, perf.data) as one mapped file (`withWholeFile`).
/// Memory stays bounded: an mmap'd file is released behind the reader, a stream is read through
/// one reusable buffer (a binary stream is first copied to an unlinked temporary file).
public final class TraceInput {
    public enum Compression: String, Sendable { case none, lz4, gzip, xz, zstd }

    public let path: String
    public let compression: Compression
    public let format: TraceFormat
    /// Size of the file on disk (the compressed size for a compressed file), nil for stdin.
    public let sizeOnDisk: Int?

    let mapped: MappedFile?
    private let producer: ByteProducer?

    /// The longest line a stream may hold; longer lines are reported and skipped.
    public static let maximumLineLength = 64 << 20

    /// Opens `path` (`-` means stdin) and sniffs compression and format from content.
    /// - Parameter forcedFormat: `--format-in`: read the content as this format instead of sniffing it
    ///   (LZ4 framing is still detected by its magic).
    /// - Throws: `InputError` for a missing, empty, unreadable or unsupported input.
    public init(path: String, forcedFormat: TraceFormat? = nil) throws {
        self.path = path
        var head = [UInt8]()
        if path == "-" {
            mapped = nil
            sizeOnDisk = nil
            head = [UInt8](repeating: 0, count: 64 << 10)
            var got = 0
            while got < head.count {
                let n = head.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress! + got, $0.count - got) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                got += n
            }
            head.removeSubrange(got...)
            if head.isEmpty { throw InputError.empty(path: "<stdin>") }
            let raw = DescriptorReader(fd: 0, path: "<stdin>", pending: head)
            compression = head.withUnsafeBytes(CompressionMagic.detect)
            producer = try CompressionMagic.decoder(compression, source: .stream(raw), path: "<stdin>") ?? raw
        } else {
            if let file = try MappedFile(path: path) {
                if file.count == 0 { throw InputError.empty(path: path) }
                sizeOnDisk = file.count
                let c = CompressionMagic.detect(file.bytes)
                if c != .none {
                    compression = c
                    mapped = nil
                    producer = try CompressionMagic.decoder(c, source: .mapped(file), path: path)
                } else {
                    compression = .none
                    mapped = file
                    producer = nil
                    head = Array(UnsafeRawBufferPointer(rebasing: file.bytes.prefix(4096)))
                }
            } else {
                // Not a regular file (a pipe or a device): stream it.
                let fd = open(path, O_RDONLY)
                if fd < 0 { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
                mapped = nil
                sizeOnDisk = nil
                var first = [UInt8](repeating: 0, count: 8)
                var got = 0
                while got < first.count {
                    let n = first.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, $0.count - got) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    got += n
                }
                first.removeSubrange(got...)
                let raw = DescriptorReader(fd: fd, path: path, pending: first)
                compression = first.withUnsafeBytes(CompressionMagic.detect)
                producer = try CompressionMagic.decoder(compression, source: .stream(raw), path: path) ?? raw
            }
        }
        // Sniff the decompressed head for the format.
        if compression != .none || mapped == nil {
            // Peek by decoding into a head buffer that is handed out first.
            var peek = [UInt8](repeating: 0, count: 4096)
            let source = producer!
            let n = try peek.withUnsafeMutableBytes { try source.read(into: $0) }
            peek.removeSubrange(n...)
            if n == 0 { throw InputError.empty(path: path) }
            head = peek
            self.peeked = peek
        }
        if let forcedFormat {
            format = forcedFormat
        } else {
            guard let detected = head.withUnsafeBytes({ TraceFormat.sniff($0) }) else {
                throw InputError.unsupportedFormat(path: path, detected: "binary data of an unknown kind")
            }
            format = detected
        }
    }

    /// The whole (decompressed) input as one mapped regular file, for the binary readers that need
    /// random access and a file descriptor (libtracecmd). A plain file is used as is; stdin, pipes and
    /// compressed files are first decompressed into an unlinked temporary file (in `$TMPDIR`, default /tmp).
    /// - Parameter body: gets the mapping and a file descriptor open on it (valid during the call).
    public func withWholeFile<T>(_ body: (MappedFile, Int32) throws -> T) throws -> T {
        if let file = mapped {
            let fd = open(path, O_RDONLY)
            if fd < 0 { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
            defer { close(fd) }
            bytesRead = file.count
            return try body(file, fd)
        }
        guard let producer else { throw InputError.empty(path: path) }
        let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((dir + "/protreplay-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd < 0 { throw InputError.readFailed(path: path, reason: "cannot create a temporary file in \(dir): " + String(cString: strerror(errno))) }
        defer { close(fd) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        var total = 0
        func writeAll(_ p: UnsafeRawPointer, _ n: Int) throws {
            var done = 0
            while done < n {
                let w = write(fd, p + done, n - done)
                if w < 0 {
                    if errno == EINTR { continue }
                    throw InputError.readFailed(path: path, reason: "writing the temporary copy: " + String(cString: strerror(errno)))
                }
                done += w
            }
        }
        if !peeked.isEmpty {
            try peeked.withUnsafeBytes { try writeAll($0.baseAddress!, $0.count) }
            total += peeked.count
            peeked = []
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = try producer.read(into: buffer)
            if n == 0 { break }
            try writeAll(buffer.baseAddress!, n)
            total += n
        }
        bytesRead = total
        if total == 0 { throw InputError.empty(path: path) }
        guard let file = try MappedFile(path: "/proc/self/fd/\(fd)") else {
            throw InputError.readFailed(path: path, reason: "cannot map the temporary copy")
        }
        lseek(fd, 0, SEEK_SET)
        return try body(file, fd)
    }

    private var peeked: [UInt8] = []

    /// Total decompressed bytes handed out so far (for progress and offsets).
    public internal(set) var bytesRead = 0

    /// Calls `body` with consecutive chunks of the input, each ending at a newline (the last one may
    /// lack it). `body` gets the chunk and its byte offset in the (decompressed) input.
    public func forEachChunk(_ body: (UnsafeRawBufferPointer, Int) throws -> Void) throws {
        if let file = mapped {
            try forEachMappedChunk(file, body)
        } else {
            try forEachStreamChunk(body)
        }
    }

    private func forEachMappedChunk(_ file: MappedFile, _ body: (UnsafeRawBufferPointer, Int) throws -> Void) throws {
        let all = file.bytes
        let chunkTarget = 8 << 20
        var start = 0
        while start < all.count {
            var end = min(start + chunkTarget, all.count)
            if end < all.count {
                // Extend to the next newline.
                let rest = all.count - end
                if let nl = memchr(all.baseAddress! + end, 0x0A, rest) {
                    end = (UnsafeRawPointer(nl) - all.baseAddress!) + 1
                } else {
                    end = all.count
                }
            }
            try body(UnsafeRawBufferPointer(rebasing: all[start..<end]), start)
            bytesRead = end
            file.release(upTo: end)
            start = end
        }
    }

    func forEachStreamChunk(_ body: (UnsafeRawBufferPointer, Int) throws -> Void) throws {
        guard let producer else { return }
        // Fill while a whole granule fits, so that an LZ4 block is decoded into the buffer without a copy:
        // room for one block and the partial line left over from the chunk before.
        let granule = max(1, producer.readGranule)
        var capacity = granule > 1 ? granule + (64 << 10) : 4 << 20
        var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var filled = 0
        // Bytes peeked during sniffing come first.
        if !peeked.isEmpty {
            peeked.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            filled = peeked.count
            peeked = []
        }
        var offset = 0            // input offset of buffer[0]
        var discarding = false    // inside an over-long line, dropping bytes up to its newline
        var eof = false
        while true {
            if !eof && filled < capacity {
                let n = try producer.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
                if n == 0 { eof = true } else { filled += n }
                if !eof && capacity - filled >= granule { continue }
            }
            if filled == 0 { break }
            if discarding {
                if let nl = memchr(buffer.baseAddress!, 0x0A, filled) {
                    let skip = (UnsafeRawPointer(nl) - UnsafeRawPointer(buffer.baseAddress!)) + 1
                    memmove(buffer.baseAddress!, buffer.baseAddress! + skip, filled - skip)
                    filled -= skip
                    offset += skip
                    discarding = false
                } else {
                    offset += filled
                    filled = 0
                    if eof { break }
                }
                continue
            }
            // Cut after the last newline (everything, at the end of input).
            var cut = filled
            if !eof {
                var i = filled
                while i > 0 && buffer[i - 1] != 0x0A { i -= 1 }
                cut = i
            }
            if cut == 0 {
                // No newline in a full buffer: grow, or give up on this line.
                if capacity < TraceInput.maximumLineLength {
                    let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity * 2, alignment: 16)
                    bigger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: filled)
                    buffer.deallocate()
                    buffer = bigger
                    capacity *= 2
                    continue
                }
                // Hand the reader the start of the over-long line (it is reported as malformed), drop the rest.
                try body(UnsafeRawBufferPointer(rebasing: buffer[0..<256]), offset)
                offset += filled
                filled = 0
                discarding = true
                continue
            }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<cut]), offset)
            offset += cut
            bytesRead = offset
            filled -= cut
            if filled > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + cut, filled) }
            if eof && filled == 0 { break }
        }
        if offset == 0 { throw InputError.empty(path: path) }
    }
}
