import XCTest
import Foundation
@testable import protreplay

/// Golden scenarios: `SampleTraces/scenarios/<name>/trace.txt` in, `expected.json` out.
/// `expected.json` lists only the values worked out by hand (reasoning in the folder's README.md);
/// every key it gives must equal the report's value (objects compared on the keys given).
final class GoldenScenarioTests: XCTestCase {
    static let scenarios = repoRoot.appendingPathComponent("SampleTraces/scenarios")

    func testEveryScenarioMatchesItsHandWorkedExpectation() throws {
        let fm = FileManager.default
        let names = try fm.contentsOfDirectory(atPath: Self.scenarios.path).filter {
            fm.fileExists(atPath: Self.scenarios.appendingPathComponent("\($0)/expected.json").path)
        }.sorted()
        XCTAssertFalse(names.isEmpty, "no scenarios found")
        for name in names {
            let dir = Self.scenarios.appendingPathComponent(name)
            var args = [dir.appendingPathComponent("trace.txt").path]
            if let extra = try? String(contentsOf: dir.appendingPathComponent("args"), encoding: .utf8) {
                args += extra.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            }
            let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("expected.json")))
            let actual = try report(args)
            var mismatches: [String] = []
            subsetMismatches(expected, actual, path: "", into: &mismatches)
            XCTAssertTrue(mismatches.isEmpty, "scenario \(name):\n  " + mismatches.joined(separator: "\n  "))
        }
    }
}
