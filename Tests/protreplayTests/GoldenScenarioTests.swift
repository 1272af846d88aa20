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
            compare(expected, actual, path: "", into: &mismatches)
            XCTAssertTrue(mismatches.isEmpty, "scenario \(name):\n  " + mismatches.joined(separator: "\n  "))
        }
    }

    func compare(_ expected: Any, _ actual: Any?, path: String, into out: inout [String]) {
        switch expected {
        case let e as [String: Any]:
            guard let a = actual as? [String: Any] else { out.append("\(path): expected an object, got \(String(describing: actual))"); return }
            for (k, v) in e where k != "_comment" { compare(v, a[k], path: path.isEmpty ? k : "\(path).\(k)", into: &out) }
        case let e as [Any]:
            guard let a = actual as? [Any], a.count == e.count else { out.append("\(path): expected \(e), got \(String(describing: actual))"); return }
            for (i, v) in e.enumerated() { compare(v, a[i], path: "\(path)[\(i)]", into: &out) }
        default:
            let es = "\(expected)", asd = actual.map { "\($0)" } ?? "missing"
            if es != asd { out.append("\(path): expected \(es), got \(asd)") }
        }
    }
}
