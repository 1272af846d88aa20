import XCTest
import Foundation
@testable import TraceIngest

/// The numbers the binary readers hand over with a record (`RawEvent.fields`) are the numbers its
/// payload text prints: the normalizer takes them instead of parsing the text back, so the two must
/// never disagree. Checked on every record of every trace.dat and perf.data under SampleTraces/.
final class RawFieldTests: XCTestCase {
    final class Check: RawEventSink {
        var events = 0, numbers = 0, failures: [String] = []
        func consume(_ e: inout RawEvent) {
            guard e.kind == .event else { return }
            events += 1
            var labelsBefore = 0
            for f in e.fields {
                // Printed in order, each as `label=value` after the previous ones.
                guard let r = Fields.valueRange(f.label, in: e.payload) else {
                    failures.append("\(String(decoding: f.label, as: UTF8.self)) not in [\(String(decoding: e.payload, as: UTF8.self))]")
                    continue
                }
                XCTAssertGreaterThanOrEqual(r.lowerBound, labelsBefore)
                labelsBefore = r.lowerBound
                guard f.isNumber else { continue }
                numbers += 1
                let text = UnsafeRawBufferPointer(rebasing: e.payload[r])
                if Fields.parseInteger(text) != f.value || text.starts(with: "0x".utf8) != f.isHex {
                    failures.append("\(String(decoding: f.label, as: UTF8.self))=\(f.value) hex \(f.isHex) but the text says [\(String(decoding: e.payload, as: UTF8.self))]")
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
                let check = Check()
                try TraceReader(names: StringTable(), traceDatReader: kind).read(try TraceInput(path: path), into: check) {}
                XCTAssertEqual(check.failures.prefix(3), [], "\(path) \(kind)")
                total += check.numbers
            }
        }
        XCTAssertGreaterThan(total, 10_000)
    }
}
