import XCTest
import Analysis
@testable import Reports

final class HTMLAndCompareTests: XCTestCase {
    func testHTMLEscapesTextAndAttributesByConstruction() {
        let hostile = "<script>alert(1)</script>\"'&lt;"
        let n = HTMLNode.el("td", [("title", hostile)], text: hostile)
        XCTAssertEqual(n.rendered, "<td title=\"&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;lt;\">&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;lt;</td>")
        XCTAssertEqual(HTMLNode.escaped("a\u{1}b\u{7f}"), "a\u{FFFD}b\u{FFFD}")
    }

    func testHTMLReportOfHostileNamesHasNoMarkupFromTheTrace() {
        var l = LayerSummary()
        l.all.add(durationNs: 10, censored: false, uncertain: false)
        l.byScope["ctx"] = l.all
        l.topSites = [Attribution(name: "<img src=x onerror=alert(1)>", windows: 1, totalNs: 10)]
        l.topTasks = [Attribution(name: "<script>alert(1)</script>", windows: 1, totalNs: 10)]
        var an = AnomalySummary()
        an.total = 1
        an.byKind["k"] = 1
        an.examples = [AnomalyExample(line: 1, timestampNs: 5, cpu: 0, pid: 1, kind: "k", detail: "</td><script>x</script>")]
        let m = ModelSummary(model: "highmem", options: ["o": "\"><b>"], counters: [:], accessClasses: [], anomalyKinds: ["k"],
                             granted: l, effective: l, intended: LayerSummary(), accesses: AccessSummary(), anomalies: an)
        let r = SavedReport(input: .object(["path": .string("<b>trace</b>")]), trace: .object(["events": .int(1),
                            "unmapped_by_name": .object(["<i>x</i>": .int(1)])]), profile: .object([:]), models: [m])
        let page = HTMLReport.render(r)
        XCTAssertFalse(page.contains("<script"))
        XCTAssertFalse(page.contains("<img"))
        XCTAssertFalse(page.contains("<b>"))
        XCTAssertFalse(page.contains("<i>"))
        XCTAssertTrue(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(page.contains("&lt;/td&gt;&lt;script&gt;x&lt;/script&gt;"))
    }

    func testJSONParsesWhatItRenders() throws {
        let v = JSONValue.object(["s": .string("<\"x\">\n\t\u{1}é😀"), "n": .int(-5), "u": .uint(UInt64.max), "a": .array([.int(1), .int(2)]),
                                  "o": .object([:]), "e": .array([]), "b": .bool(true), "z": .null])
        XCTAssertEqual(try JSONValue.parse(v.rendered()), v.normalizedForParse)
        XCTAssertEqual(try JSONValue.parse("\"\\ud83d\\ude00\""), .string("😀"))
        XCTAssertThrowsError(try JSONValue.parse("{\"a\": 1.5}"))
        XCTAssertThrowsError(try JSONValue.parse("[1,]"))
        // Integer arrays print on one line.
        XCTAssertEqual(JSONValue.array([.int(1), .uint(2)]).rendered(), "[1, 2]\n")
    }

    func testSavedReportRoundTripsLosslessly() throws {
        var l = LayerSummary()
        for d: UInt64 in [70_000, 500_000, 70_000] { l.all.add(durationNs: d, censored: false, uncertain: false) }
        l.byScope["ctx"] = l.all
        l.byAPI["kmap_local_page"] = l.all
        l.byCloseCause["unmap"] = 3
        let m = ModelSummary(model: "highmem", options: [:], counters: ["x": 3], accessClasses: ["use_after_unmap"], anomalyKinds: ["k"],
                             granted: l, effective: l, intended: LayerSummary(), accesses: AccessSummary(), anomalies: AnomalySummary())
        let r = SavedReport(input: .object([:]), trace: .object(["events": .int(3)]), profile: .object([:]), models: [m])
        let back = try SavedReport(text: r.json, source: "t")
        XCTAssertEqual(back.json, r.json)
        XCTAssertEqual(back.models[0].granted.all.p50Ns, 70_000)
    }

    func testThresholdGrammarAndEvaluationByHand() throws {
        let doc = JSONValue.object(["exposure": .object(["effective": .object(["total_ns": .int(407_001)])]),
                                    "models": .array([.object(["model": .object(["name": .string("pks")]),
                                                               "unprotected_accesses": .object(["total": .int(2)])])])])
        let base = JSONValue.object(["exposure": .object(["effective": .object(["total_ns": .int(370_000)])])])
        // 370,000 * 1.10 = 407,000: 407,001 trips >, 407,000 would not.
        let t = try Threshold("exposure.effective.total_ns > +10%")
        XCTAssertEqual(t.value, .percent(10_000))
        XCTAssertNotNil(try t.check(doc, baseline: base))
        XCTAssertNil(try Threshold("exposure.effective.total_ns>+10.001%").check(doc, baseline: base))  // limit 407,003
        // 370,000 + 37,001 = 407,001: `<` does not trip, `<=` does.
        XCTAssertNil(try Threshold("exposure.effective.total_ns<+37001ns").check(doc, baseline: base))
        XCTAssertNotNil(try Threshold("exposure.effective.total_ns<=+37.001us").check(doc, baseline: base))
        XCTAssertEqual(try Threshold("x>1.5ms").value, .absolute(1_500_000))
        XCTAssertEqual(try Threshold("x<-2s").value, .delta(-2_000_000_000))
        XCTAssertNotNil(try Threshold("pks:unprotected_accesses.total>0").check(doc, baseline: nil))
        XCTAssertNil(try Threshold("pks:unprotected_accesses.total>2").check(doc, baseline: nil))
        XCTAssertThrowsError(try Threshold("exposure.effective.total_ns>+10%").check(doc, baseline: nil))
        XCTAssertThrowsError(try Threshold("no.such.key>1").check(doc, baseline: nil))
        XCTAssertThrowsError(try Threshold("total_ns 5"))
        XCTAssertThrowsError(try Threshold("x>+5"+"%%"))
        let reason = try Threshold("exposure.effective.total_ns>+10%").check(doc, baseline: base, label: "after")!
        XCTAssertEqual(reason, "fail-if exposure.effective.total_ns>+10%: after: exposure.effective.total_ns = 407001 > 407000 (baseline 370000 +10%)")
    }
}

extension JSONValue {
    /// Parsing gives `.int` for every integer that fits Int64.
    var normalizedForParse: JSONValue {
        switch self {
        case let .object(d): return .object(d.mapValues(\.normalizedForParse))
        case let .array(a): return .array(a.map(\.normalizedForParse))
        case let .uint(v) where v <= UInt64(Int64.max): return .int(Int64(v))
        default: return self
        }
    }
}
