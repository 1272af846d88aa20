import XCTest
import Foundation
@testable import TraceIngest

/// The numbers the binary readers hand over with a record (`RawEvent.fields`) are what its payload
/// text prints: the normalizer reads them instead of parsing the text back, and tells the readers not
/// to print the text at all (`readsPayloadText`) when it reads nothing else. Checked on every record
/// of every trace.dat and perf.data under SampleTraces/, with and without the text.
final class RawFieldTests: XCTestCase {
    struct Seen: Equatable { var label: String, value: UInt64, form: RawField.Form }

    final class Check: RawEventSink {
        let text: Bool
        var events = 0, numbers = 0, failures: [String] = []
        var fields: [[Seen]] = []
        init(text: Bool) { self.text = text }
        func readsPayloadText(of name: StringTable.ID) -> Bool? { text }
        func consume(_ e: inout RawEvent) {
            guard e.kind == .event else { return }
            events += 1
            fields.append(e.fields.map { Seen(label: String(decoding: $0.label, as: UTF8.self), value: $0.value, form: $0.form) })
            guard text else {
                // Without text only kprobes (their location) and the special payloads keep theirs.
                if !e.fields.isEmpty && !e.payload.isEmpty && e.payload.first != UInt8(ascii: "(") {
                    failures.append("text printed: [\(String(decoding: e.payload, as: UTF8.self))]")
                }
                return
            }
            var labelsBefore = 0
            for f in e.fields {
                // Printed in order, each as `label=value` after the previous ones.
                guard let r = Fields.valueRange(f.label, in: e.payload), r.lowerBound >= labelsBefore else {
                    failures.append("\(String(decoding: f.label, as: UTF8.self)) not in order in [\(String(decoding: e.payload, as: UTF8.self))]")
                    continue
                }
                labelsBefore = r.lowerBound
                let text = UnsafeRawBufferPointer(rebasing: e.payload[r])
                let read = RawField.reading(text)
                if f.isNumber { numbers += 1 }
                if Fields.parseInteger(text) != (f.isNumber ? f.value : nil) || read.form != f.form {
                    failures.append("\(String(decoding: f.label, as: UTF8.self))=\(f.value) \(f.form) but the text says [\(String(decoding: e.payload, as: UTF8.self))]")
                }
            }
        }
        func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) {}
    }

    func testNumbersAreWhatThePayloadPrints() throws {
        var files = TraceDatDirectTests.samples()
        let tools = ingestRepoRoot.appendingPathComponent("SampleTraces/tools").path
        files += try FileManager.default.contentsOfDirectory(atPath: tools).filter { $0.hasSuffix(".perf.data") }.sorted().map { tools + "/" + $0 }
        var total = 0
        for path in files {
            for kind in [TraceDatReaderKind.direct, .libtracecmd] where kind == .direct || path.hasSuffix(".dat") && !path.contains("zlib") {
                let withText = Check(text: true), without = Check(text: false)
                for check in [withText, without] {
                    try TraceReader(names: StringTable(), traceDatReader: kind).read(try TraceInput(path: path), into: check) {}
                    XCTAssertEqual(check.failures.prefix(3), [], "\(path) \(kind) text: \(check.text)")
                }
                XCTAssertEqual(without.fields, withText.fields, "\(path) \(kind): the numbers depend on the text")
                total += withText.numbers
            }
        }
        XCTAssertGreaterThan(total, 10_000)
    }

    func testReading() {
        func read(_ s: String) -> (RawField.Form, UInt64) { Array(s.utf8).withUnsafeBytes { let r = RawField.reading($0); return (r.form, r.value) } }
        XCTAssertTrue(read("0x1a2b") == (.hex, 0x1a2b))
        XCTAssertTrue(read("6699") == (.decimal, 6699))
        XCTAssertTrue(read("-12") == (.negativeDecimal, UInt64(bitPattern: -12)))
        XCTAssertTrue(read("do_fault+0x1/0x2") == (.other, 0))
        XCTAssertTrue(read("") == (.other, 0))
        XCTAssertTrue(read("[0x1;0x2]") == (.other, 0))
    }
}
