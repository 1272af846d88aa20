import XCTest
import Foundation
@testable import protreplay
import Reports

/// Adversarial cardinality: a synthetic trace naming 200k distinct pids, comm names and pages, replayed
/// with a small `--max-live-entries`: one warning line, the refusals in the JSON, the tracked entries
/// modelled, every event still accounted for.
final class CardinalityTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("protreplay-card-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static let header = """
    # tracer: nop
    #
    # entries-in-buffer/entries-written: 600000/600000   #P:1
    #
    #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
    #              | |         |   |||||     |         |

    """
    static var headerLines: Int { header.split(separator: "\n", omittingEmptySubsequences: false).count - 1 }

    /// Per task i (pid 1000+i, comm wI): switched in, `kmap()` of its own page, `kmap_local_pfn` of its own
    /// pfn; nothing is ever unmapped, so every task and page stays live.
    func writeTrace(tasks n: Int, name: String = "cardinality.txt") throws -> String {
        let path = dir.appendingPathComponent(name).path
        var out = Self.header
        out.reserveCapacity(n * 330)
        func ts(_ us: Int) -> String {
            let frac = String(us % 1_000_000)
            return "\(1 + us / 1_000_000).\(String(repeating: "0", count: 6 - frac.count))\(frac)"
        }
        for i in 0..<n {
            let pid = 1000 + i
            let prev = i == 0 ? "<idle>-0" : "w\(i - 1)-\(pid - 1)"
            let prevComm = i == 0 ? "swapper/0" : "w\(i - 1)"
            let me = "w\(i)-\(pid)"
            out += "\(prev) [000] d..2. \(ts(3 * i)): sched_switch: prev_comm=\(prevComm) prev_pid=\(i == 0 ? 0 : pid - 1) prev_prio=120 prev_state=S ==> next_comm=w\(i) next_pid=\(pid) next_prio=120\n"
            out += "\(me) [000] ..... \(ts(3 * i + 1)): kmap_high: (kmap_high+0x0/0x260) page=0x\(String(0xc100_0000 + i * 40, radix: 16))\n"
            out += "\(me) [000] ..... \(ts(3 * i + 2)): kmap_local_pfn: (__kmap_local_pfn_prot+0x0/0x180) pfn=0x\(String(0x10_0000 + i, radix: 16))\n"
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(out.utf8)))
        return path
    }

    func testTwoHundredThousandDistinctTasksAndPagesStayUnderTheCap() throws {
        let n = 200_000, cap = 1000
        let path = try writeTrace(tasks: n)
        let r = try runBuiltTool(["report", path, "--model", "highmem", "--arch", "i386", "--format", "json", "--max-live-entries", String(cap)])
        XCTAssertEqual(r.status, 0, r.err)
        // The first refusal: the kmap_high of task `cap` (its slot would be the cap+1-th).
        let line = Self.headerLines + 3 * cap + 2
        let warnings = r.err.split(separator: "\n").filter { $0.contains("warning") }
        XCTAssertEqual(warnings, ["protreplay: warning: \(path):\(line): \(cap) live pkmap slots tracked by the highmem model (the --max-live-entries cap); later new pkmap slots are counted in state_cap_refusals, not modelled"])

        let j = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        XCTAssertEqual(value(j, "trace.events") as? Int, 3 * n)
        XCTAssertEqual(value(j, "trace.max_live_entries") as? Int, cap)
        XCTAssertEqual(value(j, "trace.state_cap_refusals") as? Int, 2 * (n - cap))
        XCTAssertEqual(value(j, "trace.state_cap_refusals_by_map") as? [String: Int],
                       ["highmem.pkmap_slots": n - cap, "highmem.tasks": n - cap])
        XCTAssertEqual(value(j, "trace.state_cap_first.map") as? String, "pkmap_slots")
        XCTAssertEqual(value(j, "trace.state_cap_first.line") as? Int, line)
        XCTAssertEqual(value(j, "trace.comm_names_refused") as? Int, 0)
        // Every event is used or counted: events = used + ignored + unmapped + malformed_events.
        let used = value(j, "trace.events_used") as! Int, ignored = value(j, "trace.events_ignored") as! Int
        XCTAssertEqual(used + ignored + (value(j, "trace.unmapped") as! Int) + (value(j, "trace.malformed_events") as! Int), 3 * n)
        XCTAssertEqual(used, 3 * n)
        // What is tracked is modelled: one pkmap and one fixmap window per tracked task, open at the end.
        XCTAssertEqual(value(j, "exposure.granted.by_api.kmap_high.windows") as? Int, cap)
        XCTAssertEqual(value(j, "exposure.granted.by_api.kmap_local_pfn.windows") as? Int, cap)
        XCTAssertEqual(value(j, "exposure.granted.censored") as? Int, 2 * cap)
        XCTAssertEqual(value(j, "counters.pkmap_installs") as? Int, cap)

    }

    func testTextReportShowsTheRefusalsInItsDataQualityHeader() throws {
        let path = try writeTrace(tasks: 3000, name: "small.txt")
        let t = try runBuiltTool(["report", path, "--model", "highmem", "--arch", "i386", "--max-live-entries", "1000", "--quiet"])
        XCTAssertEqual(t.status, 0, t.err)
        XCTAssertTrue(t.out.contains("# warning:  4000 new state entries not modelled (--max-live-entries 1000): highmem.pkmap_slots 2000, highmem.tasks 2000\n"), t.out)
        XCTAssertTrue(t.out.contains("#           first at line \(Self.headerLines + 3002): 1000 live pkmap slots in highmem (the cap)\n"), t.out)
    }

    func testDefaultCapNeedsNoWarningAndZeroIsRejected() throws {
        let path = try writeTrace(tasks: 50)
        let r = try runBuiltTool(["report", path, "--model", "highmem", "--format", "json"])
        XCTAssertEqual(r.status, 0)
        XCTAssertFalse(r.err.contains("warning"), r.err)
        let j = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        XCTAssertEqual(value(j, "trace.state_cap_refusals") as? Int, 0)
        XCTAssertEqual(value(j, "trace.max_live_entries") as? Int, 1_000_000)
        XCTAssertTrue(value(j, "trace.state_cap_first") is NSNull)
        let bad = try runBuiltTool(["report", path, "--max-live-entries", "0"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("--max-live-entries must be at least 1"), bad.err)
        let help = try runBuiltTool(["report", "--help"])
        XCTAssertTrue(help.out.contains("--max-live-entries"), help.out)
    }
}
