import XCTest
import Analysis
import EventModel
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
        var t = ReportDocument.TraceSection()
        t.events = 1
        t.unmappedByName = ["<i>x</i>": 1]
        let r = ReportDocument(input: .init(path: "<b>trace</b>", format: "ftrace-text", compression: "none", bytes: 1), trace: t,
                               profile: .init(arch: "<b>x</b>"), models: [m])
        let page = HTMLReport.render(r)
        XCTAssertFalse(page.contains("<script"))
        XCTAssertFalse(page.contains("<img"))
        XCTAssertFalse(page.contains("<b>"))
        XCTAssertFalse(page.contains("<i>"))
        XCTAssertTrue(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(page.contains("&lt;/td&gt;&lt;script&gt;x&lt;/script&gt;"))
    }

    func testJSONKeepsExactIntegersAndEscapesText() throws {
        var t = ReportDocument.TraceSection()
        t.lostEvents = UInt64.max
        t.malformedExamples = [MalformedLine(line: 1, offset: 2, reason: "r", text: "<\"x\">\n\t\u{1}é😀")]
        let r = ReportDocument(input: .init(path: "a/b", format: "ftrace-text", compression: "none", bytes: 0), trace: t,
                               profile: .init(arch: "i386"), models: [])
        XCTAssertTrue(r.json.contains("18446744073709551615"))
        XCTAssertTrue(r.json.contains("\"a/b\""), "no escaped slashes")
        let back = try ReportDocument(json: r.json, source: "t")
        XCTAssertEqual(back.trace.lostEvents, UInt64.max)
        XCTAssertEqual(back.trace.malformedExamples, t.malformedExamples)
        XCTAssertEqual(back.json, r.json)
        XCTAssertThrowsError(try ReportDocument(json: "{\"schema\": \"other\"}", source: "x.json")) {
            XCTAssertEqual("\($0)", "x.json: not a protreplay.report/1 report")
        }
    }

    func testSavedReportRoundTripsLosslessly() throws {
        var l = LayerSummary()
        for d: UInt64 in [70_000, 500_000, 70_000] { l.all.add(durationNs: d, censored: false, uncertain: false) }
        l.byScope["ctx"] = l.all
        l.byAPI["kmap_local_page"] = l.all
        l.byCloseCause["unmap"] = 3
        let m = ModelSummary(model: "highmem", options: [:], counters: ["x": 3], accessClasses: ["use_after_unmap"], anomalyKinds: ["k"],
                             granted: l, effective: l, intended: LayerSummary(), accesses: AccessSummary(), anomalies: AnomalySummary())
        var t = ReportDocument.TraceSection()
        t.events = 3
        let r = ReportDocument(input: .init(path: "p", format: "ftrace-text", compression: "none", bytes: 0), trace: t,
                               profile: .init(arch: "i386"), models: [m])
        let back = try ReportDocument(json: r.json, source: "t")
        XCTAssertEqual(back.json, r.json)
        XCTAssertEqual(back.models[0].granted.all.p50Ns, 70_000)
    }

    func testThresholdGrammarAndEvaluationByHand() throws {
        let doc: [String: Any] = ["exposure": ["effective": ["total_ns": Int64(407_001)]],
                                  "models": [["model": ["name": "pks"], "unprotected_accesses": ["total": Int64(2)]]]]
        let base: [String: Any] = ["exposure": ["effective": ["total_ns": Int64(370_000)]]]
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
