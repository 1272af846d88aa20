import XCTest
import Foundation
@testable import Capture

/// The session's restore, in-process (root and a writable tracefs; skipped otherwise). Holds /tmp/tracefs.lock
/// (flock) like every tracefs user on the shared machine.
final class TracefsSessionTests: XCTestCase {
    func withTracefsLock(_ body: () throws -> Void) throws {
        guard getuid() == 0, access("/sys/kernel/tracing/instances", W_OK) == 0 else { throw XCTSkip("needs root and tracefs") }
        let fd = open("/tmp/tracefs.lock", O_RDWR | O_CREAT, 0o666)
        guard fd >= 0 else { throw XCTSkip("cannot open /tmp/tracefs.lock") }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        try body()
    }

    func read(_ file: String) -> String? { KernelHost.readWhole("/sys/kernel/tracing/" + file) }

    /// A raised top-level setting and the instance are undone by close(); the instance exists only in between.
    func testCloseUndoesInstanceAndTopLevelSettings() throws {
        try withTracefsLock {
            let before = try XCTUnwrap(read("saved_cmdlines_size"))
            let current = try XCTUnwrap(Int(before.trimmingCharacters(in: .whitespacesAndNewlines)))
            let session = try TracefsSession(name: "protreplay-test-\(getpid())")
            XCTAssert(FileManager.default.fileExists(atPath: session.instanceDir))
            XCTAssert(session.raiseTopLevel("saved_cmdlines_size", atLeast: current + 1))
            // The kernel rounds the size up to whole pages of entries (6.8+: 6553 reads back as 19659).
            XCTAssertGreaterThanOrEqual(Int(read("saved_cmdlines_size")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0, current + 1)
            XCTAssert(session.enable("sched", "sched_switch"))
            session.close()
            XCTAssertEqual(read("saved_cmdlines_size"), before)
            XCTAssertFalse(FileManager.default.fileExists(atPath: session.instanceDir))
            session.close()   // idempotent
        }
    }
}
