import Foundation
import TraceIngest
import EventModel
import Replay

/// `protreplay windows`: one row per exposure window, with the trace lines that opened and closed it,
/// rendered as aligned text, CSV (RFC 4180) or JSON (`protreplay.windows/1`).
public struct WindowRow: Codable, Sendable, Equatable {
    public var model: String
    public var layer: String
    public var openNs: UInt64
    public var closeNs: UInt64
    public var durationNs: UInt64
    /// Trace line numbers (record index for binary input); nil when not known (see `ExposureWindow`).
    public var openLine: Int?
    public var closeLine: Int?
    /// `pfn:0x…`, `page:0x…`; nil for a window over a key rather than a frame.
    public var frame: String?
    public var alias: String
    /// The holder's name and id; nil for a window no task holds (a global key, a device).
    public var comm: String?
    public var pid: Int?
    public var context: String
    public var cpu: Int?
    public var api: String
    public var scope: String
    public var site: String?
    public var closeCause: String
    public var censored: Bool
    public var uncertain: Bool

    enum CodingKeys: String, CodingKey {
        case model, layer, frame, alias, comm, pid, context, cpu, api, scope, site, censored, uncertain
        case openNs = "open_ns", closeNs = "close_ns", durationNs = "duration_ns", openLine = "open_line", closeLine = "close_line"
        case closeCause = "close_cause"
    }

    /// The row of `w`, its strings read from the pipeline's tables.
    public init(_ w: ExposureWindow, comms: StringTable, symbols: StringTable) {
        model = "\(w.model)"; layer = w.layer.rawValue
        openNs = w.openNs; closeNs = w.closeNs; durationNs = w.durationNs
        openLine = w.openLine > 0 ? w.openLine : nil
        closeLine = w.closeLine > 0 ? w.closeLine : nil
        let f = CSV.frame(w.frame)
        frame = f.isEmpty ? nil : f
        alias = "\(w.alias)"
        comm = w.holderComm == 0 || w.holderPid < 0 ? nil : comms.string(w.holderComm)
        pid = w.holderPid < 0 ? nil : Int(w.holderPid)
        context = w.holderContext.rawValue
        cpu = w.cpu < 0 ? nil : Int(w.cpu)
        api = "\(w.api)"; scope = w.scope.rawValue
        site = w.site == 0 ? nil : symbols.string(w.site)
        closeCause = w.closeCause.rawValue
        censored = w.censored; uncertain = w.uncertain
    }

    /// `censored,uncertain`, or `-`.
    public var flags: String {
        let f = [censored ? "censored" : nil, uncertain ? "uncertain" : nil].compactMap { $0 }
        return f.isEmpty ? "-" : f.joined(separator: ",")
    }
}

public enum WindowTable {
    public static let schema = "protreplay.windows/1"
    public static let csvHeader = "model,layer,open_ns,close_ns,duration_ns,open_line,close_line,frame,alias,comm,pid,context,cpu,api,scope,site,close_cause,censored,uncertain"

    /// How rows are ordered.
    public enum Order: String, CaseIterable, Sendable {
        /// By open time (trace order), then open line.
        case open
        case close
        /// Longest first.
        case duration
    }

    /// Sorts (stably: ties keep the order the windows closed in) and keeps the first `limit`.
    public static func arrange(_ rows: [WindowRow], by order: Order, limit: Int?) -> [WindowRow] {
        let indexed = rows.enumerated().map { ($0.offset, $0.element) }
        let sorted = indexed.sorted { a, b in
            let (x, y) = (a.1, b.1)
            switch order {
            case .open: if x.openNs != y.openNs { return x.openNs < y.openNs }
            case .close: if x.closeNs != y.closeNs { return x.closeNs < y.closeNs }
            case .duration: if x.durationNs != y.durationNs { return x.durationNs > y.durationNs }
            }
            return a.0 < b.0
        }.map(\.1)
        return limit.map { Array(sorted.prefix($0)) } ?? sorted
    }

    /// Aligned text, one window a line; `total` is the number of windows before `--limit`.
    public static func text(_ rows: [WindowRow], total: Int, filter: String?) -> String {
        var out = "# protreplay windows: \(rows.count) of \(total) windows" + (filter.map { "; filter: \(TextReport.clean($0))" } ?? "") + "\n"
        out += "# lines: the trace lines of the opening and closing events (- when not recorded, or closed by the trace end)\n"
        let header = ["open", "close", "duration", "lines", "model", "layer", "frame", "alias", "task", "cpu", "api", "scope", "cause", "flags"]
        var table = [header]
        for r in rows {
            let task = r.pid.map { "\(r.comm ?? "")-\($0)" } ?? "-"
            let ctx = r.context == "task" ? "" : "/" + r.context
            table.append([TextReport.seconds(r.openNs), TextReport.seconds(r.closeNs), TextReport.duration(r.durationNs),
                          "\(r.openLine.map(String.init) ?? "-")..\(r.closeLine.map(String.init) ?? "-")",
                          r.model, r.layer, r.frame ?? "-", r.alias, TextReport.clean(task) + ctx, r.cpu.map(String.init) ?? "-",
                          r.api, r.scope, r.closeCause, r.flags])
        }
        var widths = [Int](repeating: 0, count: header.count)
        for row in table { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        for (n, row) in table.enumerated() {
            var line = n == 0 ? "#" : " "
            for (i, c) in row.enumerated() {
                let right = i < 3
                let pad = String(repeating: " ", count: widths[i] - c.count)
                line += " " + (right ? pad + c : c + (i == row.count - 1 ? "" : pad))
            }
            out += line + "\n"
        }
        return out
    }

    public static func csv(_ rows: [WindowRow]) -> String {
        var out = csvHeader + "\r\n"
        func n<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "" }
        for r in rows {
            out += [r.model, r.layer, String(r.openNs), String(r.closeNs), String(r.durationNs), n(r.openLine), n(r.closeLine),
                    r.frame ?? "", r.alias, CSV.quote(r.comm ?? ""), n(r.pid), r.context, n(r.cpu), r.api, r.scope,
                    CSV.quote(r.site ?? ""), r.closeCause, r.censored ? "1" : "0", r.uncertain ? "1" : "0"].joined(separator: ",") + "\r\n"
        }
        return out
    }

    struct Document: Encodable {
        var schema = WindowTable.schema
        var input: String
        var total: Int
        var filter: String?
        var windows: [WindowRow]
    }

    public static func json(_ rows: [WindowRow], input: String, total: Int, filter: String?) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! e.encode(Document(input: input, total: total, filter: filter, windows: rows)), as: UTF8.self) + "\n"
    }
}
