import XCTest
import Foundation
@testable import TraceIngest

final class TraceDatReaderTests: XCTestCase {
    func testDebugDump() throws {
        let (dat, _) = try readAll(workloadDir + "/trace.dat")
        let (txt, _) = try readAll(workloadDir + "/trace")
        var out = ""
        for (a, b) in zip(dat.records, txt.records) where a.payload != b.payload || a.name != b.name || a.kind != b.kind {
            out += "DAT \(a)\nTXT \(b)\n"
        }
        try out.write(toFile: "/tmp/dbg/payloads.txt", atomically: true, encoding: .utf8)
    }
}
