import XCTest
import Foundation

/// The pipelined read (reading and normalizing on one thread, replay on another) must give exactly
/// what the serial read gives: byte-identical JSON, on every real text sample and every scenario.
final class DeterminismTests: XCTestCase {
    func run(_ args: [String], serial: Bool) throws -> String {
        let candidates = ["debug", "release"].map { repoRoot.appendingPathComponent(".build/\($0)/protreplay").path }
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("protreplay binary not built")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["PROTREPLAY_READER_THREADS"] = serial ? "1" : nil
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, args.joined(separator: " "))
        return String(decoding: data, as: UTF8.self)
    }

    func testSerialAndPipelinedGiveIdenticalJSON() throws {
        var inputs: [[String]] = []
        for dir in try FileManager.default.contentsOfDirectory(atPath: realDir.path).sorted() {
            for name in ["trace.lz4", "trace", "perf-script.txt"] {
                let p = realDir.appendingPathComponent("\(dir)/\(name)").path
                if FileManager.default.fileExists(atPath: p) { inputs.append([p, "--model", "auto"]) }
            }
        }
        let scenarios = repoRoot.appendingPathComponent("SampleTraces/scenarios")
        for dir in try FileManager.default.contentsOfDirectory(atPath: scenarios.path).sorted() {
            let d = scenarios.appendingPathComponent(dir)
            var args = [d.appendingPathComponent("trace.txt").path]
            if let extra = try? String(contentsOf: d.appendingPathComponent("args"), encoding: .utf8) {
                args += extra.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            }
            inputs.append(args)
        }
        XCTAssertGreaterThan(inputs.count, 10)
        for args in inputs {
            let serial = try run(["report"] + args + ["--format", "json"], serial: true)
            let pipelined = try run(["report"] + args + ["--format", "json"], serial: false)
            XCTAssertFalse(serial.isEmpty)
            XCTAssertEqual(serial, pipelined, args.joined(separator: " "))
        }
    }
}
