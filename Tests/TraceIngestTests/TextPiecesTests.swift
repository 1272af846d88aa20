import XCTest
import Foundation
@testable import TraceIngest

final class TextPiecesTests: XCTestCase {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    func testStackTraceLinesNeverStartAPiece() {
        func isStack(_ s: String) -> Bool { bytes(s).withUnsafeBytes { Lines.isStackTraceLine($0) } }
        XCTAssertTrue(isStack(" => get_user_pages_fast"))
        XCTAssertTrue(isStack("     wl-done-129 [000] ..... 7.466805: <stack trace>"))
        XCTAssertTrue(isStack("     wl-done-129 [000] ..... 7.466805: <user stack trace>"))
        XCTAssertTrue(isStack("  bash-1234  [001] 123.456: kernel_stack:         <stack trace >"))
        XCTAssertFalse(isStack("     wl-done-129 [000] ..... 7.466671: get_user_pages_fast: (get_user_pages_fast+0x0/0x30) start=0x7fcb"))
        let ftrace = FtraceTextReader(names: StringTable())
        XCTAssertFalse(bytes(" => kmap_high").withUnsafeBytes { ftrace.startsRecord($0) })
    }

    func testPerfScriptCallChainLinesNeverStartAPiece() {
        let perf = PerfScriptReader(names: StringTable())
        func starts(_ s: String) -> Bool { bytes(s).withUnsafeBytes { perf.startsRecord($0) } }
        XCTAssertFalse(starts("\tffffffff817669a3 __iomap_dio_rw+0x3d3 ([kernel.kallsyms])"))
        XCTAssertFalse(starts(""))
        XCTAssertTrue(starts("            perf 16579 [000]  1336.236964:    sched:sched_switch: prev_comm=perf"))
    }

    /// The cut moves past a stack trace to the next record; the pieces put back together are the input.
    func testPiecesCoverTheInputAndStartAtRecords() throws {
        var text = ""
        for i in 0..<300 {
            text += "  t-\(i) [000] ..... 1.\(String(format: "%06d", i)): ev: x=\(i)\n"
            if i % 3 == 0 { text += "  t-\(i) [000] ..... 1.\(String(format: "%06d", i)): <stack trace>\n => a\n => b\n => c\n" }
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cut-\(getpid()).txt")
        try text.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let reader = FtraceTextReader(names: StringTable())
        for size in [64, 100, 333, 4096] {
            var joined: [UInt8] = []
            var offsets: [Int] = []
            try TraceInput(path: url.path).forEachPiece(size: size, startsRecord: reader.startsRecord) { piece in
                XCTAssertEqual(piece.offset, joined.count)
                let firstLine = piece.bytes.prefix { $0 != 0x0A }
                XCTAssertTrue(UnsafeRawBufferPointer(rebasing: firstLine).isEmpty == false)
                XCTAssertFalse(Lines.isStackTraceLine(UnsafeRawBufferPointer(rebasing: piece.bytes[0..<firstLine.count])), "size \(size)")
                joined += piece.bytes
                offsets.append(piece.offset)
            }
            XCTAssertEqual(joined, bytes(text), "size \(size)")
            XCTAssertGreaterThan(offsets.count, 1)
        }
    }
}
