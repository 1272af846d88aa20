import XCTest
import Foundation
import TestSupport

/// `report --format perfetto`: the file decodes with `protoc` against Perfetto's own merged trace proto
/// (`Tests/perfetto/perfetto_trace.proto`, upstream and unchanged), and holds one slice per window.
final class PerfettoExportTests: XCTestCase {
    /// One `TrackEvent` or `TrackDescriptor` packet of protoc's text output, in file order.
    struct Packet {
        var timestamp: UInt64?
        var type: String?
        var trackUuid: UInt64?
        var name: String?
        /// `track_descriptor` fields.
        var descriptorUuid: UInt64?
        var parentUuid: UInt64?
        /// Names of the `debug_annotations`.
        var argNames: [String] = []
    }

    static let mergedProtoDir = repoRoot.appendingPathComponent("Tests/perfetto").path

    /// Runs `protoc --decode=perfetto.protos.Trace` on `file`; skips when protoc is not installed
    /// (scripts/install-deps installs Debian's protobuf-compiler).
    func decode(_ file: String) throws -> String {
        guard ProcessRunner.output(["protoc", "--version"]) != nil else {
            throw XCTSkip("protoc is not installed (scripts/install-deps installs protobuf-compiler); skipping the decode check")
        }
        let r = try ProcessRunner.run("protoc", ["-I", Self.mergedProtoDir, "--decode=perfetto.protos.Trace", "perfetto_trace.proto"],
                                      stdin: try Data(contentsOf: URL(fileURLWithPath: file)))
        XCTAssertEqual(r.status, 0, r.err)
        return r.out
    }

    /// Reads protoc's text format: top-level `packet {` blocks; a field's owner is the block it is in.
    func packets(_ text: String) -> [Packet] {
        var out: [Packet] = []
        var blocks: [String] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("{") {
                let block = String(line.dropLast().trimmingCharacters(in: .whitespaces))
                if blocks.isEmpty { out.append(Packet()) }
                blocks.append(block)
                continue
            }
            if line == "}" { blocks.removeLast(); continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon]), val = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            let unquoted = val.hasPrefix("\"") ? String(val.dropFirst().dropLast()) : val
            switch (blocks.last ?? "", key) {
            case ("packet", "timestamp"): out[out.count - 1].timestamp = UInt64(val)
            case ("track_event", "type"): out[out.count - 1].type = val
            case ("track_event", "track_uuid"): out[out.count - 1].trackUuid = UInt64(val)
            case ("track_event", "name"): out[out.count - 1].name = unquoted
            case ("debug_annotations", "name"): out[out.count - 1].argNames.append(unquoted)
            case ("track_descriptor", "uuid"): out[out.count - 1].descriptorUuid = UInt64(val)
            case ("track_descriptor", "parent_uuid"): out[out.count - 1].parentUuid = UInt64(val)
            case ("track_descriptor", "name"): out[out.count - 1].name = unquoted
            default: break
            }
        }
        return out
    }

    /// The real i386 sample (highmem). Independent counts (`lz4 -dc trace.lz4 > t`, see RealI386TraceTests):
    ///   granted ctx windows = fixmap pushes `grep -c '__kmap_local_pfn_prot+0x0' t` -> 2522, and as many effective
    ///   (each push maps the frame through the fixmap slot); granted global = `grep -c ' kmap_high: (kmap_high+0x0' t`
    ///   -> 16; effective global = one per pkmap slot installed, `awk '/kmap_high_ret/{print $NF}' t | sort -u | wc -l`
    ///   -> 8 (no flush fired: `kmap_flush_unused` was not probed). 2522 + 2522 + 16 + 8 = 5068 windows; no access,
    ///   no anomaly. The `--windows` CSV of the same run and the JSON report's window totals must agree with it.
    func testI386ExportDecodesWithOneSlicePerWindow() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("protreplay-perfetto-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("i386.pftrace").path, csv = dir.appendingPathComponent("windows.csv").path
        let r = try runTool(["report", i386Trace, "--model", "highmem", "--format", "perfetto", "-o", trace, "--windows", csv, "--quiet"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "", "the perfetto format writes only to -o")

        let text = try decode(trace)
        // A field the trimmed proto numbered differently from upstream would decode as a bare number.
        let unknown = text.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).first?.isNumber == true }
        XCTAssertEqual(unknown.count, 0, "fields protoc could not place: \(unknown.prefix(3))")
        let ps = packets(text)
        let begins = ps.filter { $0.type == "TYPE_SLICE_BEGIN" }, ends = ps.filter { $0.type == "TYPE_SLICE_END" }

        let csvRows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\r\n").count - 1
        let j = try report([i386Trace, "--model", "highmem"])
        let jsonWindows = ["granted", "effective", "intended"].map { value(j, "exposure.\($0).windows") as? Int ?? 0 }.reduce(0, +)
        XCTAssertEqual(2522 + 2522 + 16 + 8, 5068)
        XCTAssertEqual(csvRows, 5068)
        XCTAssertEqual(jsonWindows, 5068)
        XCTAssertEqual(begins.count, 5068)
        XCTAssertEqual(ends.count, 5068)
        XCTAssertEqual(ps.filter { $0.type == "TYPE_INSTANT" }.count, 0, "no access, no anomaly in this capture")

        // Slice names are the APIs: the CSV's api column, counted the same way.
        var apiRows: [String: Int] = [:]
        for row in try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\r\n").dropFirst() {
            apiRows[String(row.split(separator: ",", omittingEmptySubsequences: false)[5]), default: 0] += 1
        }
        var sliceNames: [String: Int] = [:]
        for b in begins { sliceNames[b.name ?? "", default: 0] += 1 }
        XCTAssertEqual(sliceNames, apiRows)
        for b in begins.prefix(50) {
            XCTAssertTrue(Set(["frame", "pid", "comm", "close_cause"]).isSubset(of: Set(b.argNames)), "\(b.argNames)")
        }

        // Tracks: declared before use, under a CPU track under the model's track.
        var parent: [UInt64: UInt64] = [:], trackName: [UInt64: String] = [:]
        for p in ps {
            if let u = p.descriptorUuid { parent[u] = p.parentUuid; trackName[u] = p.name }
            if let t = p.trackUuid { XCTAssertNotNil(trackName[t], "event on track \(t) before its descriptor") }
        }
        let cpuTracks = Set(begins.compactMap { $0.trackUuid.flatMap { parent[$0] } }.compactMap { trackName[$0] })
        XCTAssertEqual(cpuTracks, ["CPU 0", "CPU 1"])
        let roots = Set(begins.compactMap { $0.trackUuid.flatMap { parent[$0] }.flatMap { parent[$0] } }.compactMap { trackName[$0] })
        XCTAssertEqual(roots, ["highmem"])

        // Every slice nests on its track as Perfetto's trace processor orders events (timestamp, then
        // position in the file): a window's end closes that window, not another one.
        struct Edge { var ts: UInt64; var index: Int; var slice: Int; var begin: Bool; var track: UInt64 }
        var edges: [Edge] = []
        var slice = 0, open: Int?
        for (i, p) in ps.enumerated() {
            guard let ts = p.timestamp, let track = p.trackUuid else { continue }
            if p.type == "TYPE_SLICE_BEGIN" { open = slice; edges.append(Edge(ts: ts, index: i, slice: slice, begin: true, track: track)); slice += 1 }
            if p.type == "TYPE_SLICE_END" {
                guard let s = open else { XCTFail("end without a begin at packet \(i)"); continue }
                edges.append(Edge(ts: ts, index: i, slice: s, begin: false, track: track))
                open = nil
            }
        }
        edges.sort { ($0.ts, $0.index) < ($1.ts, $1.index) }
        var stacks: [UInt64: [Int]] = [:]
        var misnested = 0
        for e in edges {
            if e.begin { stacks[e.track, default: []].append(e.slice) } else if stacks[e.track]?.last == e.slice {
                stacks[e.track]!.removeLast()
            } else { misnested += 1 }
        }
        XCTAssertEqual(misnested, 0)
        XCTAssertTrue(stacks.values.allSatisfy(\.isEmpty))
    }

    /// Accesses and anomalies become instant events; the hand-worked scenario `pks-kmap-global-unsupported`
    /// (its README): A kmap()s P on CPU 0 at 20.100100 (anomaly `global_kmap_unsupported`: A0 grants nothing)
    /// and touches it at 20.100110 (access `global_kmap`); B, handed the pointer, releases it on CPU 1 at
    /// 20.100400 (access `handoff`). Effective windows: A 20.100110-20.100300 and 20.100600-20.100700 on CPU 0,
    /// B 20.100400-20.100500 on CPU 1, all `relaxed_fixup`, scope task.
    func testScenarioAccessesAndAnomaliesAreInstants() throws {
        let scenario = Repository.scenarios.appendingPathComponent("pks-kmap-global-unsupported")
        let args = try String(contentsOf: scenario.appendingPathComponent("args"), encoding: .utf8).split(whereSeparator: \.isWhitespace).map(String.init)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("protreplay-perfetto-\(UUID().uuidString).pftrace").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try runTool(["report", scenario.appendingPathComponent("trace.txt").path] + args + ["--format", "perfetto", "-o", out])
        XCTAssertEqual(r.status, 0, r.err)
        let ps = packets(try decode(out))
        var trackName: [UInt64: String] = [:], parent: [UInt64: UInt64] = [:]
        for p in ps { if let u = p.descriptorUuid { trackName[u] = p.name; parent[u] = p.parentUuid } }
        func place(_ p: Packet) -> String { "\(trackName[parent[p.trackUuid!]!]!)/\(trackName[p.trackUuid!]!)" }
        let instants = ps.filter { $0.type == "TYPE_INSTANT" }.map { "\($0.timestamp!) \($0.name!) \(place($0))" }
        XCTAssertEqual(instants.sorted(), [
            "20100100000 global_kmap_unsupported CPU 0/anomalies",
            "20100110000 global_kmap CPU 0/unprotected accesses",
            "20100400000 handoff CPU 1/unprotected accesses",
        ])
        var slices: [String] = []
        for (i, p) in ps.enumerated() where p.type == "TYPE_SLICE_BEGIN" {
            XCTAssertEqual(ps[i + 1].type, "TYPE_SLICE_END")
            slices.append("\(p.timestamp!)-\(ps[i + 1].timestamp!) \(p.name!) \(place(p))")
        }
        XCTAssertEqual(slices.sorted(), [
            "20100110000-20100300000 relaxed_fixup CPU 0/effective task",
            "20100400000-20100500000 relaxed_fixup CPU 1/effective task",
            "20100600000-20100700000 relaxed_fixup CPU 0/effective task",
        ])
    }

    /// The trace is binary: it goes to a file, never to the terminal.
    func testPerfettoNeedsOutputFile() throws {
        let r = try runTool(["report", i386Trace, "--format", "perfetto"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("-o FILE.pftrace"), r.err)
    }
}
