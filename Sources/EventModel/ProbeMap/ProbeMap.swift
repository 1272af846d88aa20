import Foundation
import TraceIngest

/// Maps raw events to the normalized vocabulary: built-in defaults, plus user rules that add to or
/// override them (`--probe-map FILE`). User rules always win over defaults; within each, a rule on
/// the event name wins over a rule on the probed function.
public struct ProbeMap: Sendable {
    public private(set) var userEntries: [ProbeMapEntry] = []
    public let defaultEntries: [ProbeMapEntry]
    /// `--kallsyms FILE`: names for the bare kernel addresses of text without symbols
    /// (`trace-cmd report` prints kprobe locations as `(ffffffff812c40a0)`).
    public var kernelSymbols: KernelSymbols?

    public init(defaults: [ProbeMapEntry] = DefaultProbes.entries) {
        defaultEntries = defaults
    }

    public enum LoadError: Error, CustomStringConvertible {
        case unreadable(String, String)
        case invalid(String, String)
        public var description: String {
            switch self {
            case let .unreadable(path, why): return "\(path): cannot read probe map: \(why)"
            case let .invalid(path, why): return "\(path): invalid probe map: \(why)"
            }
        }
    }

    private struct File: Decodable { var probes: [ProbeMapEntry] }

    /// Adds the rules of a JSON probe-map file: `{"probes": [ ... ]}` or a bare array.
    /// - Throws: `LoadError` naming the file and the first bad rule.
    public mutating func load(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError.unreadable(path, "no such file or not readable")
        }
        try load(data: data, path: path)
    }

    public mutating func load(data: Data, path: String) throws {
        let decoder = JSONDecoder()
        let entries: [ProbeMapEntry]
        do {
            if let f = try? decoder.decode(File.self, from: data) {
                entries = f.probes
            } else {
                entries = try decoder.decode([ProbeMapEntry].self, from: data)
            }
        } catch {
            throw LoadError.invalid(path, "expected {\"probes\": [...]} or an array of rules with \"maps_to\": \(error)")
        }
        for (i, e) in entries.enumerated() {
            if e.event == nil && e.function == nil && e.eventPrefix == nil {
                throw LoadError.invalid(path, "rule \(i): needs \"event\", \"event_prefix\" or \"function\"")
            }
            if e.mapsTo != "IGNORE" && ProtEventTag(rawValue: e.mapsTo) == nil {
                let known = ProtEventTag.allCases.map(\.rawValue).joined(separator: ", ")
                throw LoadError.invalid(path, "rule \(i): maps_to \"\(e.mapsTo)\" is not one of IGNORE, \(known)")
            }
            if let p = e.probe, p != "entry" && p != "return" {
                throw LoadError.invalid(path, "rule \(i): probe must be \"entry\" or \"return\"")
            }
        }
        userEntries.append(contentsOf: entries)
    }

    /// The function a kprobe probes, when its location was printed as a bare address
    /// (`(ffffffff812c40a0)`, `(ffffffff812c4ec0 <- ffffffff812c6096)`): the kallsyms symbol at that address, else
    /// the function the event's name says (`p:gup/try_grab_page try_grab_page` is named after it;
    /// `r:gup/get_user_pages_fast_ret` after it plus `_ret`, `p:wb/folio_start_writeback __folio_start_writeback`
    /// without its `__`) when a rule knows that function.
    public func function(unresolved address: UInt64?, event name: String, isReturn: Bool) -> String? {
        if let address, let s = kernelSymbols?.symbol(at: address) { return s.name }
        // `folio_start_writeback` probes `__folio_start_writeback` (event names cannot start with "__" in docs/capturing.md).
        var stems = [name]
        if isReturn {
            for suffix in ["_ret", "_return", "__return", "_exit"] where name.hasSuffix(suffix) && name.count > suffix.count {
                stems.append(String(name.dropLast(suffix.count)))
            }
        }
        let candidates = stems.flatMap { [$0, "__" + $0] }
        for entries in [userEntries, defaultEntries] {
            for c in candidates where entries.contains(where: { $0.function == c && ($0.probe == nil || ($0.probe == "return") == isReturn) }) { return c }
        }
        return nil
    }

    /// Whether the normalizer reads the fields of the tracepoint `name` (not a kprobe, whose rule
    /// depends on the function it probes): it maps to a kind in `wantedTags` (to any kind when nil)
    /// that is made from fields (`EventNormalizer.kindsWithoutFields` are not: a syscall is its name).
    /// The same decision as `EventNormalizer`'s binding of the name.
    public func readsFields(ofTracepoint name: String, wantedTags: Set<ProtEventTag>?) -> Bool {
        guard let r = rule(event: name, function: nil, isReturn: false), let tag = ProtEventTag(rawValue: r.mapsTo),
              !EventNormalizer.kindsWithoutFields.contains(tag) else { return false }
        return wantedTags?.contains(tag) ?? true
    }

    /// `readsFields(ofTracepoint:wantedTags:)` for many names (a trace.dat's ~2,000 formats): the
    /// rules' event names and prefixes are gathered once, and only a name one of them matches is looked up.
    public func tracepointFieldReader(wantedTags: Set<ProtEventTag>?) -> (String) -> Bool {
        let entries = userEntries + defaultEntries
        let names = Set(entries.compactMap(\.event))
        let prefixes = entries.compactMap(\.eventPrefix)
        return { name in
            guard names.contains(name) || prefixes.contains(where: { name.hasPrefix($0) }) else { return false }
            return self.readsFields(ofTracepoint: name, wantedTags: wantedTags)
        }
    }

    /// The rule for an event called `name`, which is a kprobe on `function` when `function` is non-nil.
    public func rule(event name: String, function: String?, isReturn: Bool) -> ProbeMapEntry? {
        for entries in [userEntries, defaultEntries] {
            // Later user rules override earlier ones.
            if let r = entries.last(where: { $0.event == name }) { return r }
            if let function,
               let r = entries.last(where: { $0.function == function && ($0.probe == nil || ($0.probe == "return") == isReturn) }) {
                return r
            }
            if function == nil, let r = entries.last(where: { $0.eventPrefix.map { name.hasPrefix($0) } ?? false }) { return r }
        }
        return nil
    }
}
