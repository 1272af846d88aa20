import XCTest
@testable import Reports

final class ReportsTests: XCTestCase {
    func testJSONKeysSortedAndStringsEscaped() {
        var t = ReportDocument.TraceSection()
        t.unmappedByName = ["b": 1, "a<script>\"x\"\n\u{1}": 2]
        let json = ReportDocument(input: .init(path: "p", format: "f", compression: "none", bytes: 0), trace: t,
                                  profile: .init(arch: "i386"), models: []).json
        // Keys sorted at every level; control characters and quotes escaped.
        XCTAssertTrue(json.contains(#""a<script>\"x\"\n\u0001" : 2,"#), json)
        let keys = json.split(separator: "\n").filter { $0.hasPrefix("  \"") }.map { $0.split(separator: "\"")[1] }
        XCTAssertEqual(keys, ["input", "profile", "schema", "trace"])
    }

    func testCSVQuotingRFC4180() {
        XCTAssertEqual(CSV.quote("plain"), "plain")
        XCTAssertEqual(CSV.quote("a,b"), "\"a,b\"")
        XCTAssertEqual(CSV.quote("say \"hi\""), "\"say \"\"hi\"\"\"")
        XCTAssertEqual(CSV.quote("two\nlines"), "\"two\nlines\"")
        XCTAssertEqual(CSV.quote("<script>alert(1)</script>"), "<script>alert(1)</script>")
    }

    func testDurationFormatting() {
        XCTAssertEqual(TextReport.duration(999), "999 ns")
        XCTAssertEqual(TextReport.duration(14_000), "14.000 us")
        XCTAssertEqual(TextReport.duration(1_393_000), "1.393 ms")
        XCTAssertEqual(TextReport.duration(1_005_838_000), "1.005 s")
    }

    func testTextReportNeutralizesControlCharacters() {
        XCTAssertEqual(TextReport.pad("a\u{1b}[2Jb", 3), "a?[2Jb ")
    }
}
