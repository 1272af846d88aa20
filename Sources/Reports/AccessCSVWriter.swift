#if canImport(Glibc)
import Glibc
#endif
import TraceIngest
import EventModel
import Replay

/// Streams one CSV row per unprotected access as it is observed (`--accesses FILE.csv`), RFC 4180
/// quoted like `WindowCSVWriter`: the comm and the call site come from the trace.
public final class AccessCSVWriter {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let comms: StringTable
    private let symbols: StringTable
    public let path: String
    public static let header = "model,ts_ns,line,cpu,pid,comm,context,address,frame,write,class,outcome,site,uncertain"

    /// - Throws: `InputError.cannotOpen` if the file cannot be created.
    public init(path: String, comms: StringTable, symbols: StringTable) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        self.path = path
        self.comms = comms
        self.symbols = symbols
        buffer.reserveCapacity(1 << 16)
        append(AccessCSVWriter.header + "\r\n")
    }

    public func write(_ a: AccessRecord) {
        var frame = ""
        switch a.frame {
        case let .pfn(p)?: frame = "pfn:0x" + String(p, radix: 16)
        case let .page(p)?: frame = "page:0x" + String(p, radix: 16)
        case nil: frame = ""
        }
        let fields = ["\(a.model)", String(a.timestamp), String(a.line), String(a.cpu), String(a.pid),
                      CSV.quote(comms.string(a.comm)), a.context.rawValue, "0x" + String(a.address, radix: 16), frame,
                      a.write ? "1" : "0", "\(a.accessClass)", a.outcome.rawValue,
                      CSV.quote(a.site == 0 ? "" : symbols.string(a.site)), a.uncertain ? "1" : "0"]
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
