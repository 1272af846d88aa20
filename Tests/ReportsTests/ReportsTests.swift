import XCTest
@testable import Reports

final class ReportsTests: XCTestCase {
    func testJSONKeysSortedAndStringsEscaped() {
        let v = JSONValue.object(["b": .int(1), "a": .string("<script>alert(\"x\")</script>\n\u{1}"), "c": .array([.bool(true), .null])])
        XCTAssertEqual(v.rendered(), """
        {
          "a": "<script>alert(\\"x\\")</script>\\n\\u0001",
          "b": 1,
          "c": [
            true,
            null
          ]
        }

        """)
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
