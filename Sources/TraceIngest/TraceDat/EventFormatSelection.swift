/// Which of a trace.dat's event formats are given to libtraceevent. A kernel's tracefs holds some
/// 1,500 formats and `trace-cmd` saves them all, whatever it recorded; parsing each one (in the
/// `FormatGuard` child, then in the process) and planning it per decoder cost more than reading a
/// hundred megabytes of records. Only the formats whose fields are read need parsing; for the
/// others the record's name (from the format's own header) and its common fields are enough:
///
///     name: mm_page_alloc
///     ID: 485
///     format:
///             field:unsigned short common_type;   offset:0;   size:2; signed:0;
///
/// Always parsed: ftrace's own formats (markers, stack traces) and every kprobe or uprobe format
/// (one with a `__probe_ip` or `__probe_func` field), whose records name the probed function, which
/// decides what they map to. A format whose header cannot be read is parsed too, so that
/// libtraceevent judges it as before.
struct EventFormatSelection {
    /// The formats to give libtraceevent, in the file's order.
    var parsed: [(system: String, text: [UInt8])] = []
    /// Event id -> name of the formats left out.
    var nameOnly: [Int: String] = [:]

    /// - Parameter wanted: whether the fields of the event `system:name` are read; nil keeps every format.
    init(_ formats: [(system: String, text: [UInt8])], wanted: ((_ system: String, _ name: String) -> Bool)?) {
        guard let wanted else { parsed = formats; return }
        for f in formats {
            if f.system != "ftrace", let (name, id) = EventFormatSelection.header(f.text),
               !EventFormatSelection.isProbe(f.text), !wanted(f.system, name) {
                nameOnly[id] = name
            } else {
                parsed.append(f)
            }
        }
    }

    /// `name:` and `ID:` from the first lines of a format; nil when either is missing or implausible.
    static func header(_ text: [UInt8]) -> (name: String, id: Int)? {
        var name: String?
        var id: Int?
        var lineStart = 0
        var lines = 0
        while lineStart < text.count && lines < 4 && (name == nil || id == nil) {
            var end = lineStart
            while end < text.count && text[end] != 0x0A { end += 1 }
            let line = text[lineStart..<end]
            if line.starts(with: "name: ".utf8) {
                let n = line.dropFirst(6)
                if !n.isEmpty && n.count < 256 && !n.contains(0x20) && !n.contains(0) { name = String(decoding: n, as: UTF8.self) }
            } else if line.starts(with: "ID: ".utf8) {
                var v = 0
                var digits = 0
                for b in line.dropFirst(4) {
                    guard b >= 0x30 && b <= 0x39, digits < 7 else { v = -1; break }
                    v = v * 10 + Int(b - 0x30)
                    digits += 1
                }
                if digits > 0 && v >= 0 && v < 1 << 20 { id = v }
            }
            lineStart = end + 1
            lines += 1
        }
        guard let name, let id else { return nil }
        return (name, id)
    }

    /// True for a kprobe, kretprobe or uprobe format.
    static func isProbe(_ text: [UInt8]) -> Bool {
        let needle = Array("__probe_".utf8)
        var i = 0
        while i + needle.count <= text.count {
            if text[i] == 0x5F && text[i..<i + needle.count].elementsEqual(needle) {
                let rest = text[(i + needle.count)...]
                if rest.starts(with: "ip".utf8) || rest.starts(with: "func".utf8) { return true }
            }
            i += 1
        }
        return false
    }
}
