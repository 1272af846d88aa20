import XCTest
import TestSupport
import Foundation
@testable import TraceIngest

final class TraceInputTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("protreplay-input-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ data: Data) -> String {
        let p = dir.appendingPathComponent(name).path
        _ = FileManager.default.createFile(atPath: p, contents: data)
        return p
    }

    func lz4(_ path: String) throws -> String {
        let out = path + ".lz4"
        XCTAssertEqual(try ProcessRunner.run("/usr/bin/lz4", ["-q", "-f", path, out]).status, 0)
        return out
    }

    func allText(_ input: TraceInput) throws -> String {
        var s = Data()
        try input.forEachChunk { chunk, _ in
            XCTAssertTrue(chunk.last == 0x0A || chunk.count > 0)
            s.append(contentsOf: chunk)
        }
        return String(decoding: s, as: UTF8.self)
    }

    func sampleText(lines: Int) -> String {
        (0..<lines).map { "            init-1       [001] .....     9.\(String(format: "%06d", $0)): tracing_mark_write: line \($0)\n" }.joined()
    }

    func testPlainFileIsMappedAndChunkedAtLines() throws {
        let text = sampleText(lines: 200_000)
        let path = write("t.txt", Data(text.utf8))
        let input = try TraceInput(path: path)
        XCTAssertEqual(input.compression, .none)
        XCTAssertEqual(input.format, .ftraceText)
        var chunks = 0
        var joined = Data()
        try input.forEachChunk { chunk, offset in
            XCTAssertEqual(offset, joined.count)
            XCTAssertEqual(chunk.last, 0x0A)
            joined.append(contentsOf: chunk)
            chunks += 1
        }
        XCTAssertGreaterThan(chunks, 1)
        XCTAssertEqual(String(decoding: joined, as: UTF8.self), text)
    }

    func testLZ4DetectedByMagicNotName() throws {
        let text = sampleText(lines: 100_000)
        let path = write("trace-without-extension", Data(text.utf8))
        let compressed = try lz4(path)
        let renamed = dir.appendingPathComponent("looks-like-text.txt").path
        try FileManager.default.moveItem(atPath: compressed, toPath: renamed)
        let input = try TraceInput(path: renamed)
        XCTAssertEqual(input.compression, .lz4)
        XCTAssertEqual(try allText(input), text)
    }

    func testTruncatedLZ4FrameIsAClearError() throws {
        let path = write("t.txt", Data(sampleText(lines: 50_000).utf8))
        let compressed = try Data(contentsOf: URL(fileURLWithPath: try lz4(path)))
        let cut = write("cut.lz4", compressed.prefix(compressed.count / 2))
        // The error may come while sniffing (no complete block at all) or while streaming.
        XCTAssertThrowsError(try { let input = try TraceInput(path: cut); try input.forEachChunk { _, _ in } }()) { error in
            guard case InputError.truncatedLZ4(let p, let offset) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(p, cut)
            XCTAssertEqual(offset, compressed.count / 2)
            XCTAssertTrue("\(error)".contains("truncated LZ4 frame"))
        }
    }

    func testCorruptLZ4BlockIsAClearError() throws {
        let path = write("t.txt", Data(sampleText(lines: 50_000).utf8))
        var compressed = try Data(contentsOf: URL(fileURLWithPath: try lz4(path)))
        for i in stride(from: 64, to: min(compressed.count, 4096), by: 7) { compressed[i] ^= 0xA5 }
        let bad = write("bad.lz4", compressed)
        XCTAssertThrowsError(try { let i = try TraceInput(path: bad); try i.forEachChunk { _, _ in } }()) { error in
            XCTAssertTrue("\(error)".contains("LZ4"), "\(error)")
        }
    }

    func testEmptyFile() {
        let path = write("empty.txt", Data())
        XCTAssertThrowsError(try TraceInput(path: path)) { error in
            XCTAssertEqual(error as? InputError, .empty(path: path))
        }
    }

    func testMissingFile() {
        XCTAssertThrowsError(try TraceInput(path: "/nonexistent/trace.txt")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/trace.txt: cannot open"))
        }
    }

    func testBinaryGarbageIsRejected() {
        var junk = Data(count: 4096)
        for i in 0..<junk.count { junk[i] = UInt8(truncatingIfNeeded: i &* 131 &+ 7) }
        junk[0] = 0
        let path = write("junk.bin", junk)
        XCTAssertThrowsError(try TraceInput(path: path)) { error in
            XCTAssertTrue("\(error)".contains("not a supported input format"), "\(error)")
        }
    }
}
