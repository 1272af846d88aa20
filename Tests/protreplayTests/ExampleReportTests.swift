import XCTest
import Foundation
@testable import protreplay
import Reports

/// `docs/examples/<sample>.txt` is `protreplay report <sample>/trace[.lz4] --model auto` (made by
/// `scripts/examples`); their key counts are checked against independent counts in RealModelTests.
/// This test keeps the committed examples in step with the tool.
final class ExampleReportTests: XCTestCase {
    func testCommittedExamplesMatch() throws {
        let examples = repoRoot.appendingPathComponent("docs/examples")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: examples.path))?.filter { $0.hasSuffix(".txt") }.sorted() ?? []
        XCTAssertFalse(files.isEmpty, "no examples in docs/examples")
        for f in files {
            let name = String(f.dropLast(4))
            let dir = "SampleTraces/real/\(name)/"
            let rel = FileManager.default.fileExists(atPath: repoRoot.appendingPathComponent(dir + "trace.lz4").path) ? dir + "trace.lz4" : dir + "trace"
            let cwd = FileManager.default.currentDirectoryPath
            _ = FileManager.default.changeCurrentDirectoryPath(repoRoot.path)
            defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
            let text = TextReport.render(try Report.parse([rel, "--model", "auto"]).makeReport())
            let committed = try String(contentsOf: examples.appendingPathComponent(f), encoding: .utf8)
            XCTAssertEqual(text, committed, "docs/examples/\(f) is stale: run scripts/examples")
        }
    }
}
