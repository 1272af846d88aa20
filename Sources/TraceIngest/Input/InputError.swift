/// Why an input could not be read. Every case names the file and, where it applies, the byte offset,
/// so a user can find the spot with `xxd -s OFFSET`.
public enum InputError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case empty(path: String)
    case truncatedLZ4(path: String, offset: Int)
    case corruptLZ4(path: String, offset: Int, reason: String)
    /// A gzip, xz or zstd stream that ends in the middle (`compression` names the container).
    case truncatedCompressed(path: String, compression: String, offset: Int)
    case corruptCompressed(path: String, compression: String, offset: Int, reason: String)
    case unsupportedFormat(path: String, detected: String)
    case readFailed(path: String, reason: String)
    /// A binary file that is structurally broken at `offset` (wrong magic, truncated file or section,
    /// corrupt compressed block): `what` says what was expected there.
    case corrupt(path: String, format: TraceFormat, offset: Int, what: String)
    /// A binary file that is well formed but cannot be used (no tracing data, event formats that
    /// libtraceevent cannot parse, an unsupported feature).
    case unusable(path: String, format: TraceFormat, what: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "\(path): cannot open: \(reason)"
        case let .empty(path):
            return "\(path): empty input: no trace events to read"
        case let .truncatedLZ4(path, offset):
            return "\(path): truncated LZ4 frame: input ends at byte offset \(offset) in the middle of a frame"
        case let .corruptLZ4(path, offset, reason):
            return "\(path): corrupt LZ4 data near byte offset \(offset): \(reason)"
        case let .truncatedCompressed(path, compression, offset):
            return "\(path): truncated \(compression) stream: input ends at compressed byte offset \(offset) in the middle of it"
        case let .corruptCompressed(path, compression, offset, reason):
            return "\(path): corrupt \(compression) data near compressed byte offset \(offset): \(reason)"
        case let .unsupportedFormat(path, detected):
            return "\(path): \(detected) is not a supported input format; supported: \(TraceFormat.supportedList)"
        case let .readFailed(path, reason):
            return "\(path): read failed: \(reason)"
        case let .corrupt(path, format, offset, what):
            return "\(path): \(format.rawValue): byte offset \(offset): \(what)"
        case let .unusable(path, format, what):
            return "\(path): \(format.rawValue): \(what)"
        }
    }
}
