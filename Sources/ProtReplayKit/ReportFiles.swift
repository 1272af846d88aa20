import TraceIngest
import Reports
#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing report files (saved JSON reports, rendered output).
public enum ReportFiles {
    /// Reads a whole text file.
    public static func read(_ path: String) throws -> String {
        guard let f = fopen(path, "rb") else { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: buf[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A saved `protreplay.report/1` JSON report.
    public static func savedReport(_ path: String) throws -> ReportDocument {
        try ReportDocument(json: try read(path), source: path)
    }

    /// Writes `text` to `path`, or to stdout when `path` is nil.
    public static func write(_ text: String, to path: String?) throws {
        guard let path else { print(text, terminator: ""); return }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { throw InputError.readFailed(path: path, reason: "write: " + String(cString: strerror(errno))) }
            off += n
        }
    }

    /// Fails, before any replay, when `path` could not be written: its folder is missing or not
    /// writable, or the file exists and is not writable. Nothing is created.
    public static func checkWritable(_ path: String) throws {
        if access(path, F_OK) == 0 {
            guard access(path, W_OK) == 0 else { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
            var st = stat()
            if stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { throw InputError.cannotOpen(path: path, reason: "is a directory") }
            return
        }
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        guard access(dir, W_OK | X_OK) == 0 else {
            throw InputError.cannotOpen(path: path, reason: "folder \(dir): " + String(cString: strerror(errno)))
        }
    }

    /// A saved report starts with `{` (a trace, compressed or not, never does).
    public static func looksLikeJSON(_ path: String) -> Bool {
        guard path != "-", let f = fopen(path, "rb") else { return false }
        defer { fclose(f) }
        while true {
            let c = fgetc(f)
            if c == EOF { return false }
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { continue }
            return c == 0x7B
        }
    }
}
