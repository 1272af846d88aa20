#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CZstd
import CZlib
import CLZMA

/// The compressed containers an input may come in, told apart by their magic numbers (never by the
/// file name), each streamed through a fixed buffer.
///
///     04 22 4D 18         LZ4 frame      (lz4)
///     1F 8B               gzip member    (gzip, pigz; concatenated members read as one stream)
///     FD 37 7A 58 5A 00   xz stream      (xz)
///     28 B5 2F FD         zstd frame     (zstd, trace-cmd and many CI systems write `.zst`)
enum CompressionMagic {
    static func detect(_ head: UnsafeRawBufferPointer) -> TraceInput.Compression {
        if LZ4Frame.hasMagic(head) { return .lz4 }
        if head.count >= 2 && head[0] == 0x1F && head[1] == 0x8B { return .gzip }
        if head.count >= 6 && head[0] == 0xFD && head[1] == 0x37 && head[2] == 0x7A && head[3] == 0x58 && head[4] == 0x5A && head[5] == 0x00 { return .xz }
        if head.count >= 4 && head[0] == 0x28 && head[1] == 0xB5 && head[2] == 0x2F && head[3] == 0xFD { return .zstd }
        return .none
    }

    /// A producer of the decompressed bytes of `source`; nil for `.none` (the source is read as it is).
    static func decoder(_ c: TraceInput.Compression, source: CompressedSource, path: String) throws -> ByteProducer? {
        switch c {
        case .none: return nil
        case .lz4: return try LZ4FrameDecoder(source: source, path: path)
        case .gzip: return try GzipDecoder(source: source, path: path)
        case .xz: return try XZDecoder(source: source, path: path)
        case .zstd: return try ZstdStreamDecoder(source: source, path: path)
        }
    }
}

/// Where a stream decoder's compressed bytes come from.
enum CompressedSource {
    /// A regular file, mapped: read in place.
    case mapped(MappedFile)
    /// stdin or a pipe: read into a buffer.
    case stream(ByteProducer)
}

/// Compressed bytes read ahead from a source, for the stream decoders: a window on the mapping for a
/// mapped file (no copy; the pages behind it are given back as it moves on), a buffer refilled from
/// the producer for a stream.
final class CompressedInput {
    /// Nil for a mapped file: `buffer` is the whole mapping.
    private let stream: ByteProducer?
    private let mapped: MappedFile?
    private var buffer: UnsafeMutableRawBufferPointer
    var start = 0, end = 0
    /// Compressed bytes consumed so far (for messages).
    var consumed = 0
    var done = false

    init(_ source: CompressedSource) {
        switch source {
        case let .mapped(file):
            (stream, mapped) = (nil, file)
            buffer = UnsafeMutableRawBufferPointer(mutating: file.bytes)
            end = file.count
        case let .stream(producer):
            (stream, mapped) = (producer, nil)
            buffer = .allocate(byteCount: 1 << 20, alignment: 16)
        }
    }
    deinit { if stream != nil { buffer.deallocate() } }

    /// Refills when empty; false at the end of the source.
    func fill() throws -> Bool {
        if start < end { return true }
        guard !done, let stream else { done = true; return false }
        start = 0
        end = try stream.read(into: buffer)
        if end == 0 { done = true; return false }
        return true
    }
    var available: Int { end - start }
    var pointer: UnsafeMutableRawPointer { buffer.baseAddress! + start }
    func advance(_ n: Int) {
        start += n; consumed += n
        mapped?.release(upTo: consumed)
    }

    /// The next `n` bytes in one run, consumed (valid until the next call); nil when the source ends
    /// first, with everything consumed (`consumed` is then where the input ends).
    func take(_ n: Int) throws -> UnsafeRawPointer? {
        if available < n, let stream {
            if buffer.count < n {
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: max(n, 2 * buffer.count), alignment: 16)
                bigger.baseAddress!.copyMemory(from: pointer, byteCount: available)
                buffer.deallocate()
                buffer = bigger
            } else if available > 0 {
                memmove(buffer.baseAddress!, pointer, available)
            }
            (start, end) = (0, available)
            while available < n && !done {
                let got = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
                if got == 0 { done = true } else { end += got }
            }
        }
        guard available >= n else {
            consumed += available
            start = end
            return nil
        }
        let p = UnsafeRawPointer(pointer)
        start += n; consumed += n
        mapped?.release(upTo: consumed - n)
        return p
    }

    /// Consumes `n` bytes without looking at them; false when the source ends first.
    func skip(_ n: Int) throws -> Bool {
        var left = n
        while left > 0 {
            guard try fill() else { return false }
            let k = min(left, available)
            advance(k)
            left -= k
        }
        return true
    }
}

/// Streams gzip (RFC 1952) members with zlib's `inflate`; a file of several members (`cat a.gz b.gz`,
/// pigz) reads as their concatenation, as `gzip -dc` does.
final class GzipDecoder: ByteProducer {
    private var stream = z_stream()
    private let input: CompressedInput
    private let path: String
    private var memberOpen = false

    init(source: CompressedSource, path: String) throws {
        input = CompressedInput(source)
        self.path = path
        // 15 + 16: a gzip header and trailer, the largest window.
        let rc = inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK { throw InputError.corruptCompressed(path: path, compression: "gzip", offset: 0, reason: "cannot initialise zlib (\(rc))") }
    }
    deinit { inflateEnd(&stream) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var produced = 0
        while produced < buffer.count {
            guard try input.fill() else { break }
            stream.next_in = input.pointer.assumingMemoryBound(to: Bytef.self)
            stream.avail_in = UInt32(min(input.available, Int(UInt32.max)))
            stream.next_out = (buffer.baseAddress! + produced).assumingMemoryBound(to: Bytef.self)
            stream.avail_out = UInt32(min(buffer.count - produced, Int(UInt32.max)))
            let before = stream.avail_in, outBefore = stream.avail_out
            let rc = inflate(&stream, Z_NO_FLUSH)
            input.advance(Int(before - stream.avail_in))
            produced += Int(outBefore - stream.avail_out)
            memberOpen = true
            if rc == Z_STREAM_END {
                memberOpen = false
                inflateReset(&stream)     // another member may follow
                continue
            }
            if rc != Z_OK && rc != Z_BUF_ERROR {
                let why = stream.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw InputError.corruptCompressed(path: path, compression: "gzip", offset: input.consumed, reason: why)
            }
            if before == stream.avail_in && outBefore == stream.avail_out { break }
        }
        if produced == 0 && input.done && memberOpen {
            throw InputError.truncatedCompressed(path: path, compression: "gzip", offset: input.consumed)
        }
        return produced
    }
}

/// Streams xz with liblzma (`lzma_stream_decoder`, concatenated streams allowed, no memory limit).
final class XZDecoder: ByteProducer {
    private var stream = lzma_stream()
    private let input: CompressedInput
    private let path: String
    private var finished = false

    init(source: CompressedSource, path: String) throws {
        input = CompressedInput(source)
        self.path = path
        let rc = lzma_stream_decoder(&stream, UInt64.max, 0x08 /* LZMA_CONCATENATED (a macro Swift does not import) */)
        if rc != LZMA_OK { throw InputError.corruptCompressed(path: path, compression: "xz", offset: 0, reason: "cannot initialise liblzma (\(rc.rawValue))") }
    }
    deinit { lzma_end(&stream) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if finished { return 0 }
        var produced = 0
        while produced < buffer.count {
            let more = try input.fill()
            stream.next_in = more ? UnsafePointer(input.pointer.assumingMemoryBound(to: UInt8.self)) : nil
            stream.avail_in = more ? input.available : 0
            stream.next_out = (buffer.baseAddress! + produced).assumingMemoryBound(to: UInt8.self)
            stream.avail_out = buffer.count - produced
            let before = stream.avail_in, outBefore = stream.avail_out
            // LZMA_FINISH at the end of the input: liblzma then says whether the last stream was complete.
            let rc = lzma_code(&stream, more ? LZMA_RUN : LZMA_FINISH)
            input.advance(before - stream.avail_in)
            produced += outBefore - stream.avail_out
            if rc == LZMA_STREAM_END { finished = true; break }
            if rc == LZMA_BUF_ERROR && !more {
                throw InputError.truncatedCompressed(path: path, compression: "xz", offset: input.consumed)
            }
            if rc != LZMA_OK && rc != LZMA_BUF_ERROR {
                throw InputError.corruptCompressed(path: path, compression: "xz", offset: input.consumed, reason: XZDecoder.describe(rc))
            }
            if !more && outBefore == stream.avail_out { break }
        }
        return produced
    }

    static func describe(_ rc: lzma_ret) -> String {
        switch rc {
        case LZMA_FORMAT_ERROR: return "not an xz stream"
        case LZMA_OPTIONS_ERROR: return "unsupported xz options"
        case LZMA_DATA_ERROR: return "corrupt compressed data"
        case LZMA_MEM_ERROR: return "out of memory"
        default: return "liblzma error \(rc.rawValue)"
        }
    }
}

/// Streams zstd frames (`zstd -dc`: concatenated frames, skippable frames ignored) with `ZSTD_decompressStream`.
final class ZstdStreamDecoder: ByteProducer {
    private let context: OpaquePointer
    private let input: CompressedInput
    private let path: String
    /// `ZSTD_decompressStream`'s hint: 0 once a frame is complete.
    private var frameOpen = false

    init(source: CompressedSource, path: String) throws {
        guard let ctx = ZSTD_createDStream() else { throw InputError.corruptCompressed(path: path, compression: "zstd", offset: 0, reason: "cannot create a zstd context") }
        context = ctx
        input = CompressedInput(source)
        self.path = path
    }
    deinit { ZSTD_freeDStream(context) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var produced = 0
        while produced < buffer.count {
            guard try input.fill() else { break }
            var inb = ZSTD_inBuffer(src: input.pointer, size: input.available, pos: 0)
            var outb = ZSTD_outBuffer(dst: buffer.baseAddress! + produced, size: buffer.count - produced, pos: 0)
            let rc = ZSTD_decompressStream(context, &outb, &inb)
            if ZSTD_isError(rc) != 0 {
                throw InputError.corruptCompressed(path: path, compression: "zstd", offset: input.consumed, reason: String(cString: ZSTD_getErrorName(rc)))
            }
            input.advance(inb.pos)
            produced += outb.pos
            frameOpen = rc != 0
            if inb.pos == 0 && outb.pos == 0 { break }
        }
        if produced == 0 && input.done && frameOpen {
            throw InputError.truncatedCompressed(path: path, compression: "zstd", offset: input.consumed)
        }
        return produced
    }
}
