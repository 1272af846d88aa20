import CLZ4

/// The LZ4 frame magic number `04 22 4D 18`, checked on content, never on the file name.
public enum LZ4Frame {
    public static func hasMagic(_ head: UnsafeRawBufferPointer) -> Bool {
        head.count >= 4 && head[0] == 0x04 && head[1] == 0x22 && head[2] == 0x4D && head[3] == 0x18
    }
}

/// Streams the decompressed content of one or more concatenated LZ4 frames, as `lz4 -dc` does.
final class LZ4FrameDecoder: ByteProducer {
    private var context: OpaquePointer?
    private var source: ByteProducer
    private let path: String
    private var input: UnsafeMutableRawBufferPointer
    private var inputStart = 0
    private var inputEnd = 0
    private var sourceOffset = 0   // bytes of compressed input consumed so far
    private var sourceDone = false
    private var frameOpen = false  // a frame has started and has not ended

    init(source: ByteProducer, path: String) throws {
        self.source = source
        self.path = path
        self.input = .allocate(byteCount: 1 << 20, alignment: 16)
        var ctx: OpaquePointer?
        let rc = LZ4F_createDecompressionContext(&ctx, UInt32(LZ4F_VERSION))
        if LZ4F_isError(rc) != 0 { throw InputError.corruptLZ4(path: path, offset: 0, reason: "cannot create LZ4 context") }
        self.context = ctx
    }

    deinit {
        LZ4F_freeDecompressionContext(context)
        input.deallocate()
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var produced = 0
        while produced < buffer.count {
            if inputStart == inputEnd {
                if sourceDone { break }
                inputStart = 0
                inputEnd = try source.read(into: input)
                if inputEnd == 0 { sourceDone = true; break }
            }
            var dstSize = buffer.count - produced
            var srcSize = inputEnd - inputStart
            let rc = LZ4F_decompress(context, buffer.baseAddress! + produced, &dstSize,
                                     input.baseAddress! + inputStart, &srcSize, nil)
            if LZ4F_isError(rc) != 0 {
                let name = String(cString: LZ4F_getErrorName(rc))
                throw InputError.corruptLZ4(path: path, offset: sourceOffset, reason: name)
            }
            inputStart += srcSize
            sourceOffset += srcSize
            produced += dstSize
            frameOpen = rc != 0
            if srcSize == 0 && dstSize == 0 { break }
        }
        if produced == 0 && sourceDone && frameOpen {
            throw InputError.truncatedLZ4(path: path, offset: sourceOffset)
        }
        return produced
    }
}
