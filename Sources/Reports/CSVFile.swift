#if canImport(Glibc)
import Glibc
#endif
import TraceIngest
import EventModel

/// A CSV file written through one buffer: header first, CRLF rows.
final class CSVFile {
    private let fd: Int32
    private var buffer: [UInt8] = []
    let path: String

    init(path: String, header: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        self.path = path
        buffer.reserveCapacity(1 << 16)
        append(header + "\r\n")
    }

    /// One row of already-quoted fields.
    func row(_ fields: [String]) { append(fields.joined(separator: ",") + "\r\n") }

    private func append(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
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
    /// `pfn:0x...`, `page:0x...` or empty.
    static func frame(_ f: FrameRef?) -> String {
        switch f {
        case let .pfn(p)?: return "pfn:0x" + String(p, radix: 16)
        case let .page(p)?: return "page:0x" + String(p, radix: 16)
        case nil: return ""
        }
    }

    public static func quote(_ s: String) -> String {
        if s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) || s.hasPrefix(" ") || s.hasSuffix(" ") {
            var out = "\""
            for c in s { if c == "\"" { out += "\"\"" } else { out.append(c) } }
            return out + "\""
        }
        return s
    }
}
