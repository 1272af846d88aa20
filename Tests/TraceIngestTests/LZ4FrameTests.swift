import XCTest
import Foundation
import CXXHash
import CLZ4
import TestSupport
@testable import TraceIngest

/// The LZ4 frame reader (`LZ4FrameDecoder`) against what the `lz4` tool writes with each of its frame
/// options, against hand-made frames (skippable frames, concatenation, a dictionary id), and against
/// damaged frames, each refused with the reason and the offset.
final class LZ4FrameTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try temporaryDirectory(self) }

    /// ~700 KB of ftrace-like text whose later lines repeat earlier ones far back (linked blocks then refer
    /// to the previous block's output), with a counter so that it does not collapse into one match.
    lazy var text: [UInt8] = {
        var s = ""
        var x: UInt32 = 12345
        for i in 0..<9000 {
            x = x &* 1_103_515_245 &+ 12345
            s += "  kworker/u8:\(x % 97)-\(x % 3000) [00\(x % 4)] d..1. \(100 + i / 1000).\(String(format: "%06d", i)): kmap_local: page=0x\(String(x, radix: 16)) pfn=\(x % 65536)\n"
        }
        return Array(s.utf8)
    }()

    func lz4(_ data: [UInt8], _ options: [String]) throws -> [UInt8] {
        let plain = dir.appendingPathComponent("plain-\(UUID().uuidString)").path
        let packed = plain + ".lz4"
        try Data(data).write(to: URL(fileURLWithPath: plain))
        XCTAssertEqual(try ProcessRunner.run("/usr/bin/lz4", ["-q", "-f"] + options + [plain, packed]).status, 0, "\(options)")
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: packed)))
    }

    /// Gives the bytes a few at a time (1 to 7), as a pipe may.
    final class TrickleProducer: ByteProducer {
        let bytes: [UInt8]
        var at = 0, step = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            step = step % 7 + 1
            let n = min(step, buffer.count, bytes.count - at)
            for k in 0..<n { buffer[k] = bytes[at + k] }
            at += n
            return n
        }
    }

    /// Decodes `frames` from a mapped file and from a trickling stream, into buffers of `bufferSize`.
    func decode(_ frames: [UInt8], bufferSize: Int = 100_000) throws -> [UInt8] {
        let path = dir.appendingPathComponent("in-\(UUID().uuidString).lz4").path
        try Data(frames).write(to: URL(fileURLWithPath: path))
        let file = try XCTUnwrap(try MappedFile(path: path))
        var results: [[UInt8]] = []
        for source in [CompressedSource.mapped(file), .stream(TrickleProducer(frames))] {
            let decoder = try LZ4FrameDecoder(source: source, path: path)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
            defer { buffer.deallocate() }
            var out: [UInt8] = []
            while true {
                let n = try decoder.read(into: buffer)
                if n == 0 { break }
                out += buffer[0..<n]
            }
            results.append(out)
        }
        XCTAssertEqual(results[0], results[1], "the mapped file and the stream decode alike")
        return results[0]
    }

    func failure(_ frames: [UInt8]) -> String {
        do {
            _ = try decode(frames)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    func testEveryFrameOptionOfTheLZ4Tool() throws {
        let variants: [[String]] = [[], ["-BD"], ["-BX"], ["--content-size"], ["--no-frame-crc"], ["-B4"], ["-B4", "-BD"], ["-B5", "-BD", "-BX", "--content-size"],
                                    ["-B6", "--no-frame-crc", "-BX"], ["-9"], ["-B4", "-BD", "-12"], ["--fast=5"]]
        for options in variants {
            let frames = try lz4(text, options)
            XCTAssertEqual(try decode(frames), text, "\(options)")
            XCTAssertEqual(try decode(frames, bufferSize: LZ4Frame.largestBlock), text, "\(options), block-sized buffers")
            XCTAssertEqual(try decode(frames, bufferSize: 3 * LZ4Frame.largestBlock), text, "\(options), room for several blocks")
        }
    }

    /// Linked blocks smaller than the 64 KiB window (a writer that flushes often, here liblz4's own frame
    /// writer flushed every 10,000 bytes): each block may refer to several blocks before it.
    func testSmallLinkedBlocksReferToEveryBlockInTheWindow() throws {
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.blockMode = LZ4F_blockLinked
        prefs.frameInfo.blockSizeID = LZ4F_max64KB
        prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        var ctx: OpaquePointer?
        XCTAssertEqual(LZ4F_isError(LZ4F_createCompressionContext(&ctx, UInt32(LZ4F_VERSION))), 0)
        defer { LZ4F_freeCompressionContext(ctx) }
        var out = [UInt8](repeating: 0, count: LZ4F_compressBound(text.count, &prefs) + 4096 * (text.count / 10_000 + 2))
        var used = 0
        try out.withUnsafeMutableBytes { dst in
            func check(_ rc: Int) throws -> Int {
                if LZ4F_isError(rc) != 0 { throw InputError.corruptLZ4(path: "", offset: used, reason: String(cString: LZ4F_getErrorName(rc))) }
                return rc
            }
            used += try check(LZ4F_compressBegin(ctx, dst.baseAddress!, dst.count, &prefs))
            for start in stride(from: 0, to: text.count, by: 10_000) {
                let chunk = Array(text[start..<min(start + 10_000, text.count)])
                used += try check(LZ4F_compressUpdate(ctx, dst.baseAddress! + used, dst.count - used, chunk, chunk.count, nil))
                used += try check(LZ4F_flush(ctx, dst.baseAddress! + used, dst.count - used, nil))
            }
            used += try check(LZ4F_compressEnd(ctx, dst.baseAddress! + used, dst.count - used, nil))
        }
        let frames = Array(out[0..<used])
        XCTAssertEqual(frames[4] & 0x20, 0, "blocks are linked")
        XCTAssertEqual(try decode(frames), text)
    }

    /// Incompressible data is stored as uncompressed blocks (the size word's top bit set).
    func testStoredBlocks() throws {
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        let noise = (0..<300_000).map { _ -> UInt8 in x ^= x << 13; x ^= x >> 7; x ^= x << 17; return UInt8(truncatingIfNeeded: x) }
        let frames = try lz4(noise, ["-B4", "-BX"])
        let firstBlock = frames[7..<11].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        XCTAssertNotEqual(firstBlock & 0x8000_0000, 0, "the first block is stored")
        XCTAssertEqual(try decode(frames), noise)
    }

    /// `cat a.lz4 skippable b.lz4` reads as a then b, as `lz4 -dc` does; an empty input is no frame at all.
    func testConcatenatedAndSkippableFrames() throws {
        let a = Array(text[0..<100_000]), b = Array(text[100_000...])
        let skippable: [UInt8] = [0x5A, 0x2A, 0x4D, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5]
        XCTAssertEqual(try decode(try lz4(a, ["-BD"]) + skippable + (try lz4(b, ["-B4"]))), text)
        XCTAssertEqual(try decode(skippable + (try lz4(a, []))), a)
        XCTAssertEqual(try decode([]), [])
    }

    /// A frame header built by hand: magic, FLG, BD, the optional fields, and HC (the second byte of the
    /// descriptor's XXH32).
    func header(flg: UInt8, bd: UInt8, contentSize: UInt64? = nil, dictionary: UInt32? = nil) -> [UInt8] {
        var d: [UInt8] = [flg, bd]
        if let contentSize { withUnsafeBytes(of: contentSize.littleEndian) { d += $0 } }
        if let dictionary { withUnsafeBytes(of: dictionary.littleEndian) { d += $0 } }
        let hc = UInt8(truncatingIfNeeded: XXH32(d, d.count, 0) >> 8)
        return [0x04, 0x22, 0x4D, 0x18] + d + [hc]
    }

    /// One stored block of `payload`, then the end mark.
    func storedBlocks(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: (UInt32(payload.count) | 0x8000_0000).littleEndian) { out += $0 }
        return out + payload + [0, 0, 0, 0]
    }

    func testHandMadeFrames() throws {
        let payload = Array("swapper/0-0 [000] d.h1. 1.000000: irq_handler_entry: irq=1 name=i8042\n".utf8)
        // FLG 0x60: version 1, independent blocks, no checksum; BD 0x40: 64 KiB blocks.
        XCTAssertEqual(try decode(header(flg: 0x60, bd: 0x40) + storedBlocks(payload)), payload)
        // With its content size (FLG bit 3), right and wrong.
        XCTAssertEqual(try decode(header(flg: 0x68, bd: 0x40, contentSize: UInt64(payload.count)) + storedBlocks(payload)), payload)
        XCTAssertTrue(failure(header(flg: 0x68, bd: 0x40, contentSize: 5) + storedBlocks(payload))
            .hasSuffix("corrupt LZ4 data near byte offset \(15 + 4 + payload.count + 4): the frame holds \(payload.count) bytes, its descriptor says 5"))
        // A frame made with an external dictionary cannot be decoded without it.
        XCTAssertTrue(failure(header(flg: 0x61, bd: 0x40, dictionary: 77) + storedBlocks(payload))
            .hasSuffix("byte offset 4: the frame was compressed with an external dictionary (id 77), which the file does not carry"))
        // Version 2, reserved bits, block size codes below 4.
        XCTAssertTrue(failure(header(flg: 0xA0, bd: 0x40) + storedBlocks(payload)).hasSuffix("LZ4 frame version 2, only version 1 exists"))
        XCTAssertTrue(failure(header(flg: 0x62, bd: 0x40) + storedBlocks(payload)).hasSuffix("reserved bits set in the frame descriptor"))
        XCTAssertTrue(failure(header(flg: 0x60, bd: 0x41) + storedBlocks(payload)).hasSuffix("reserved bits set in the frame descriptor"))
        XCTAssertTrue(failure(header(flg: 0x60, bd: 0x30) + storedBlocks(payload)).hasSuffix("block maximum size code 3 (only 4 to 7 exist)"))
        // A block larger than the frame's maximum.
        var big: [UInt8] = header(flg: 0x60, bd: 0x40)
        withUnsafeBytes(of: UInt32(65537).littleEndian) { big += $0 }
        XCTAssertTrue(failure(big + [UInt8](repeating: 0, count: 65537)).hasSuffix("byte offset 7: block of 65537 bytes in a frame of 65536-byte blocks"))
    }

    func testDamageIsReportedWithItsOffset() throws {
        let frames = try lz4(text, ["-B4", "-BX"])
        // The descriptor's checksum (byte 6).
        var bad = frames
        bad[6] ^= 0xFF
        XCTAssertTrue(failure(bad).hasSuffix("corrupt LZ4 data near byte offset 6: frame descriptor checksum mismatch"), failure(bad))
        // A byte of the first block: its checksum catches it before the block is decoded.
        bad = frames
        bad[100] ^= 0x01
        XCTAssertTrue(failure(bad).hasSuffix("corrupt LZ4 data near byte offset 7: block checksum mismatch"), failure(bad))
        // The content checksum (the last 4 bytes).
        bad = frames
        bad[bad.count - 1] ^= 0x80
        XCTAssertTrue(failure(bad).hasSuffix("corrupt LZ4 data near byte offset \(frames.count - 4): content checksum mismatch"), failure(bad))
        // Without block checksums, a damaged literal is caught by the content checksum, a damaged match
        // offset by the block decoder, a damaged block size as a bad or truncated block: the read stops.
        let plain = try lz4(text, ["-B4"])
        for k in stride(from: 20, to: plain.count - 8, by: 997) {
            var b = plain
            b[k] ^= 0x10
            XCTAssertTrue(failure(b).contains(" LZ4 "), "byte \(k): \(failure(b))")
        }
        // Garbage after the last frame.
        XCTAssertTrue(failure(plain + [0x11, 0x22, 0x33, 0x44]).hasSuffix("byte offset \(plain.count): not an LZ4 frame (magic 0x44332211, expected 0x184d2204)"))
        // Cut anywhere: a truncated frame, the offset where the input ends.
        for cut in [3, 5, 9, 200, plain.count / 2, plain.count - 1] {
            XCTAssertTrue(failure(Array(plain[0..<cut])).hasSuffix("truncated LZ4 frame: input ends at byte offset \(cut) in the middle of a frame"), "cut at \(cut): \(failure(Array(plain[0..<cut])))")
        }
    }
}
