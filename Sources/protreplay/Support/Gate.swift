import ArgumentParser
import Reports
import ProtReplayKit

/// `--fail-if`: evaluates the conditions, prints one line per tripped condition, exits 3 if any tripped.
enum Gate {
    static let exitStatus: Int32 = 3

    /// Checks the conditions' syntax before any replay (`relativeNeedsBaseline`: `report` without `--baseline`).
    static func validate(_ conditions: [String], relativeAllowed: Bool = true) throws {
        for f in conditions {
            do {
                let t = try Threshold(f)
                if t.isRelative && !relativeAllowed { throw ValidationError("--fail-if '\(f)' is relative: give --baseline FILE.json") }
                try ReportKeys.check(t)
            } catch let e as Threshold.ParseError { throw ValidationError(e.description) }
            catch let e as ConfigurationError { throw ValidationError(e.description) }
        }
    }

    static func check(_ conditions: [String], current: [String: Any], baselinePath: String?, label: String? = nil) throws {
        guard !conditions.isEmpty else { return }
        var baseline: [String: Any]?
        if let b = baselinePath {
            do { baseline = try ReportFiles.savedReport(b).jsonObject } catch {
                Output.fail("--baseline: \(error)")
                throw ExitCode(2)
            }
        }
        try check(conditions, pairs: [(label, current)], baseline: baseline)
    }

    /// Checks every (label, document) against the baseline; prints the reasons; exits 3 if any tripped.
    static func check(_ conditions: [String], pairs: [(String?, [String: Any])], baseline: [String: Any]?) throws {
        var reasons: [String] = []
        do {
            for c in conditions {
                let t = try Threshold(c)
                for (label, doc) in pairs { if let r = try t.check(doc, baseline: baseline, label: label) { reasons.append(r) } }
            }
        } catch {
            Output.fail("\(error)")
            throw ExitCode(2)
        }
        guard !reasons.isEmpty else { return }
        var err = StandardError()
        for r in reasons { print("protreplay: \(r)", to: &err) }
        throw ExitCode(exitStatus)
    }
}
