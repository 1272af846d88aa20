#if canImport(Glibc)
import Glibc
#endif
import TraceIngest
import EventModel
import Replay

/// Streams one CSV row per exposure window as it closes (`--windows FILE.csv`), RFC 4180 quoted:
/// comm names and symbols come from the trace and may hold commas, quotes or newlines.
public final class WindowCSVWriter {
    private let file: CSVFile
    private let comms: StringTable
    private let symbols: StringTable
    public var path: String { file.path }
    public static let header = "model,layer,frame,scope,alias,api,holder_pid,holder_comm,holder_context,cpu,open_ns,close_ns,duration_ns,open_site,close_cause,censored,uncertain,open_line,close_line"

    /// - Throws: `InputError.cannotOpen` if the file cannot be created.
    public init(path: String, comms: StringTable, symbols: StringTable) throws {
        file = try CSVFile(path: path, header: WindowCSVWriter.header)
        self.comms = comms
        self.symbols = symbols
    }

    public func write(_ w: ExposureWindow) {
        let fields = ["\(w.model)", w.layer.rawValue, CSV.frame(w.frame), w.scope.rawValue, "\(w.alias)", "\(w.api)", w.holderPid < 0 ? "" : String(w.holderPid),
                      CSV.quote(w.holderComm == 0 ? "" : comms.string(w.holderComm)), w.holderContext.rawValue, w.cpu < 0 ? "" : String(w.cpu), String(w.openNs),
                      String(w.closeNs), String(w.durationNs), CSV.quote(w.site == 0 ? "" : symbols.string(w.site)),
                      w.closeCause.rawValue, w.censored ? "1" : "0", w.uncertain ? "1" : "0",
                      w.openLine > 0 ? String(w.openLine) : "", w.closeLine > 0 ? String(w.closeLine) : ""]
        file.row(fields)
    }

    public func flush() { file.flush() }
}
