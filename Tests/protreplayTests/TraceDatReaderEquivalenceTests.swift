import XCTest
import Foundation
@testable import protreplay

/// `--reader direct` (the default) and `--reader libtracecmd` give identical JSON reports for
/// every trace.dat under SampleTraces/ (record-level equality: TraceIngestTests/TraceDatDirectTests).
final class TraceDatReaderEquivalenceTests: XCTestCase {
    func testEveryTraceDatGivesTheSameReportWithBothReaders() throws {
        let root = repoRoot.appendingPathComponent("SampleTraces")
        var files: [String] = []
        let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
        while let u = e?.nextObject() as? URL {
            if u.lastPathComponent.hasSuffix(".dat") || u.lastPathComponent.hasSuffix(".dat.lz4") { files.append(u.path) }
        }
        XCTAssertGreaterThanOrEqual(files.count, 10)
        for path in files.sorted() {
            let args = ["--model", "highmem,pks,s390pv,directmap", "--format", "json", path]
            let direct = try report(args) as NSDictionary
            let reference = try report(args + ["--reader", "libtracecmd"]) as NSDictionary
            XCTAssertEqual(direct, reference, path)
            XCTAssertGreaterThan(((direct["trace"] as? [String: Any])?["events"] as? Int) ?? -1, -1, path)
        }
    }
}
