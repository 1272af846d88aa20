import XCTest
import TestSupport
import Foundation
@testable import TraceIngest

let ingestRepoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let workloadDir = ingestRepoRoot.appendingPathComponent("SampleTraces/real/6.1.0-56-amd64-x86_64-workload").path
let hostDir = ingestRepoRoot.appendingPathComponent("SampleTraces/real/6.18.44-fc-v595-x86_64-host").path

/// One record as a test sees it (strings copied out of the reader's buffers).
struct Rec: Equatable, CustomStringConvertible {
    var kind: RawRecordKind
    var name: String
    var ts: UInt64
    var cpu: Int32
    var pid: Int32
    var comm: String
    var payload: String
    var flags: TraceFlags
    var lost: UInt64
    var line: Int
    var description: String { "\(kind) \(name) ts=\(ts) cpu=\(cpu) pid=\(pid) comm=\(comm) [\(payload)]" }
}

/// Collects every record (and every malformed line) a reader produces.
final class CollectingSink: RawEventSink {
    let names: StringTable
    var records: [Rec] = []
    var malformed: [(line: Int, reason: String, text: String)] = []
    init(names: StringTable) { self.names = names }
    func consume(_ e: inout RawEvent) {
        records.append(Rec(kind: e.kind, name: e.name == 0 ? "" : names.string(e.name), ts: e.timestamp, cpu: e.cpu, pid: e.pid,
                           comm: String(decoding: e.comm, as: UTF8.self), payload: String(decoding: e.payload, as: UTF8.self),
                           flags: e.flags, lost: e.lostCount, line: e.line))
    }
    func malformed(line: Int, offset: Int, reason: StaticString, text: UnsafeRawBufferPointer) {
        malformed.append((line, "\(reason)", String(decoding: text, as: UTF8.self)))
    }
    var events: [Rec] { records.filter { $0.kind == .event } }
}

/// Reads `path` with the reader its content selects (or `format`), into a collecting sink.
func readAll(_ path: String, format: TraceFormat? = nil) throws -> (CollectingSink, TraceInput) {
    let names = StringTable()
    let sink = CollectingSink(names: names)
    let input = try TraceInput(path: path, forcedFormat: format)
    try TraceReader(names: names).read(input, into: sink) {}
    return (sink, input)
}

/// Runs a command and returns its standard output (nil if it is not installed or fails).
func commandOutput(_ args: [String]) -> String? { ProcessRunner.output(args) }

/// A temporary directory removed at the end of the test.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("protreplay-readers-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}
