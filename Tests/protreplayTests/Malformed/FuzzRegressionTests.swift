import XCTest
import Foundation
@testable import protreplay
@testable import TraceIngest

/// Every input a fuzzer found that crashed protreplay (`scripts/fuzz`), kept as a regression test:
/// each must now give a report or a clear error.
final class FuzzRegressionTests: XCTestCase {
    static let dir = repoRoot.appendingPathComponent("Tests/protreplayTests/Malformed/fuzz-crashes")

    func testEveryFuzzCrashIsHandled() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.dir.path).sorted()
        XCTAssertFalse(files.isEmpty)
        for f in files {
            let r = try runTool(["report", Self.dir.appendingPathComponent(f).path, "--model", "auto"])
            XCTAssertTrue(r.status == 0 || (r.status == 2 && r.err.hasPrefix("protreplay: error: ")), "\(f): status \(r.status): \(r.err)")
        }
    }

    /// perf-data-damaged-iomap-format.data (perf-data target): a damaged `iomap:iomap_dio_rw_begin` format
    /// crashes libtraceevent. The format guard's child caught it in a normal build, but under
    /// AddressSanitizer the child's SIGSEGV became exit status 1, which the guard took for success, and
    /// the parent then crashed in tep_parse_event. Any non-zero exit of the child now counts as a crash.
    func testDamagedFormatIsNamedNotParsed() throws {
        let r = try runTool(["report", Self.dir.appendingPathComponent("perf-data-damaged-iomap-format.data").path])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.err.contains("iomap:iomap_dio_rw_begin is damaged: libtraceevent crashes parsing it"), r.err)
    }

    /// perf-data-printk-formats.data: a printk line without a quoted format made libtraceevent's
    /// tep_parse_printk_formats write before its buffer (ASan heap-buffer-overflow). Such lines are dropped.
    func testPrintkFormatLinesAreValidated() {
        func check(_ s: String) -> Bool { var a = Array(s.utf8); return a.withUnsafeMutableBytes { PrintkFormats.isWellFormed(UnsafeRawBufferPointer($0)) } }
        XCTAssertTrue(check(#"0xffffffff81e3b1d8 : "rcu: %s\n""#))
        XCTAssertTrue(check(#"ffffffff81e3b1d8 : "ab""#))
        XCTAssertFalse(check("0xffffffff81e3b1d8 :"))
        XCTAssertFalse(check(#"0xffffffff81e3b1d8 : """#))
        XCTAssertFalse(check(#"0xffffffff81e3b1d8 : "x"#))
        XCTAssertFalse(check("garbage"))
        var section = Array("0x1 : \"ok!\"\n0x2 :\n\n0x3 : \"fine\"\n".utf8)
        let r = section.withUnsafeMutableBytes { PrintkFormats.sanitized(UnsafeRawBufferPointer($0)) }
        XCTAssertEqual(r.dropped, 1)
        XCTAssertEqual(String(cString: r.text), "0x1 : \"ok!\"\n0x3 : \"fine\"\n")
    }
}
