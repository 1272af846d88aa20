#if canImport(Glibc)
import Glibc
#endif
import TraceIngest
import EventModel
import Replay

/// Streams one CSV row per unprotected access as it is observed (`--accesses FILE.csv`), RFC 4180
/// quoted like `WindowCSVWriter`: the comm and the call site come from the trace.
public final class AccessCSVWriter {
    private let file: CSVFile
    private let comms: StringTable
    private let symbols: StringTable
    public var path: String { file.path }
    public static let header = "model,ts_ns,line,cpu,pid,comm,context,address,frame,write,class,outcome,site,uncertain"

    /// - Throws: `InputError.cannotOpen` if the file cannot be created.
    public init(path: String, comms: StringTable, symbols: StringTable) throws {
        file = try CSVFile(path: path, header: AccessCSVWriter.header)
        self.comms = comms
        self.symbols = symbols
    }

    public func write(_ a: AccessRecord) {
        // No placeholders: an unknown CPU, task or address is an empty field, not -1 or 0x0.
        file.row(["\(a.model)", String(a.timestamp), String(a.line), a.cpu < 0 ? "" : String(a.cpu), a.pid < 0 ? "" : String(a.pid),
                  CSV.quote(a.comm == 0 ? "" : comms.string(a.comm)), a.context.rawValue, a.address == 0 ? "" : "0x" + String(a.address, radix: 16), CSV.frame(a.frame),
                  a.write ? "1" : "0", "\(a.accessClass)", a.outcome.rawValue,
                  CSV.quote(a.site == 0 ? "" : symbols.string(a.site)), a.uncertain ? "1" : "0"])
    }

    public func flush() { file.flush() }
}
