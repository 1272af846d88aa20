#if canImport(Glibc)
import Glibc
#endif
import TraceIngest
import EventModel
import Replay

/// Streams one CSV row per exposure window as it closes (`--windows FILE.csv`), RFC 4180 quoted:
/// comm names and symbols come from the trace and may hold commas, quotes or newlines.
public final class WindowCSVWriter {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let comms: StringTable
    private let symbols: StringTable
    public let path: String
    public static let header = "model,layer,frame,scope,alias,api,holder_pid,holder_comm,holder_context,cpu,open_ns,close_ns,duration_ns,open_site,close_cause,censored,uncertain"

    /// - Throws: `InputError.cannotOpen` if the file cannot be created.
    public init(path: String, comms: StringTable, symbols: StringTable) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        self.path = path
        self.comms = comms
        self.symbols = symbols
        buffer.reserveCapacity(1 << 16)
        append(WindowCSVWriter.header + "\r\n")
    }

    public func write(_ w: ExposureWindow) {
        var frame = ""
        switch w.frame {
        case let .pfn(p)?: frame = "pfn:0x" + String(p, radix: 16)
        case let .page(p)?: frame = "page:0x" + String(p, radix: 16)
        case nil: frame = ""
        }
        let fields = ["\(w.model)", w.layer.rawValue, frame, w.scope.rawValue, "\(w.alias)", "\(w.api)", String(w.holderPid),
                      CSV.quote(comms.string(w.holderComm)), w.holderContext.rawValue, String(w.cpu), String(w.openNs),
                      String(w.closeNs), String(w.durationNs), CSV.quote(w.site == 0 ? "" : symbols.string(w.site)),
                      w.closeCause.rawValue, w.censored ? "1" : "0", w.uncertain ? "1" : "0"]
        append(fields.joined(separator: ",") + "\r\n")
    }

    private func append(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    public func flush() {
        var off = 0
        buffer.withUnsafeBytes { b in
            while off < b.count {
                let n = Glibc.write(fd, b.baseAddress! + off, b.count - off)
                if n <= 0 { break }
                off += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    deinit {
        flush()
        close(fd)
    }
}

/// RFC 4180 quoting.
public enum CSV {
    public static func quote(_ s: String) -> String {
        if s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) || s.hasPrefix(" ") || s.hasSuffix(" ") {
            var out = "\""
            for c in s { if c == "\"" { out += "\"\"" } else { out.append(c) } }
            return out + "\""
        }
        return s
    }
}
