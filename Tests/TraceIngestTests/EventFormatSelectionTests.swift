import XCTest
@testable import TraceIngest

/// Which formats the direct trace.dat reader gives libtraceevent (`EventFormatSelection`), on format
/// texts shaped as tracefs prints them.
final class EventFormatSelectionTests: XCTestCase {
    static func format(_ name: String, _ id: Int, fields: [String] = ["unsigned long pfn"]) -> [UInt8] {
        var t = "name: \(name)\nID: \(id)\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n"
        for (k, f) in fields.enumerated() { t += "\tfield:\(f);\toffset:\(8 + 8 * k);\tsize:8;\tsigned:0;\n" }
        return Array((t + "\nprint fmt: \"x\"\n").utf8)
    }

    func testHeader() {
        XCTAssertEqual(EventFormatSelection.header(Self.format("mm_page_alloc", 485))?.name, "mm_page_alloc")
        XCTAssertEqual(EventFormatSelection.header(Self.format("mm_page_alloc", 485))?.id, 485)
        XCTAssertNil(EventFormatSelection.header(Array("name: x\nformat:\n".utf8)), "no ID")
        XCTAssertNil(EventFormatSelection.header(Array("ID: 3\nformat:\n".utf8)), "no name")
        XCTAssertNil(EventFormatSelection.header(Array("name: x\nID: 12a\n".utf8)), "ID not a number")
        XCTAssertNil(EventFormatSelection.header(Array("name: x\nID: 99999999\n".utf8)), "ID too large")
        XCTAssertNil(EventFormatSelection.header(Array("name: \nID: 3\n".utf8)), "empty name")
        XCTAssertNil(EventFormatSelection.header([]))
    }

    func testProbeFormats() {
        XCTAssertTrue(EventFormatSelection.isProbe(Self.format("kmap_high", 1900, fields: ["unsigned long __probe_ip", "u64 page"])))
        XCTAssertTrue(EventFormatSelection.isProbe(Self.format("r", 1901, fields: ["unsigned long __probe_func", "unsigned long __probe_ret_ip"])))
        XCTAssertFalse(EventFormatSelection.isProbe(Self.format("mm_page_alloc", 485, fields: ["unsigned long __probe_other"])))
    }

    /// ftrace's formats, kprobes and the wanted events are parsed; the rest are left out by id, except
    /// one whose header cannot be read (libtraceevent judges it).
    func testSelection() {
        let formats: [(system: String, text: [UInt8])] = [
            ("ftrace", Self.format("print", 5)),
            ("kmem", Self.format("mm_page_alloc", 485)),
            ("kmem", Self.format("mm_page_free", 486)),
            ("kprobes", Self.format("anything", 1900, fields: ["unsigned long __probe_ip"])),
            ("sched", Self.format("sched_switch", 316)),
            ("broken", Array("garbage".utf8)),
        ]
        let all = EventFormatSelection(formats, wanted: nil)
        XCTAssertEqual(all.parsed.count, 6)
        XCTAssertTrue(all.nameOnly.isEmpty)
        let some = EventFormatSelection(formats, wanted: { _, name in name == "mm_page_alloc" })
        XCTAssertEqual(some.parsed.map { EventFormatSelection.header($0.text)?.name ?? "?" }, ["print", "mm_page_alloc", "anything", "?"])
        XCTAssertEqual(some.nameOnly, [486: "mm_page_free", 316: "sched_switch"])
    }
}
