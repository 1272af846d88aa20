import Foundation
import EventModel

/// Which frames a model treats as protected: pfn ranges from `--protect`, or every frame the trace
/// shows a certain kind of call reaching (`kmapped`, `touched`), learned as the replay goes.
public enum ProtectedFrames: Sendable, Equatable {
    case ranges([ClosedRange<UInt64>])
    /// pks: every frame a kmap-family call touched.
    case kmapped
    /// s390pv: every frame gup, writeback or I/O reached.
    case touched
    /// Every frame the model sees (directmap: frames removed from the direct map).
    case all

    /// Parses `--protect`: `kmapped`, `touched`, or comma-separated pfn ranges `0x100000-0x13ffff,0x200000`.
    public static func parse(_ s: String) -> ProtectedFrames? {
        switch s {
        case "kmapped": return .kmapped
        case "touched": return .touched
        case "all": return .all
        default: break
        }
        var ranges: [ClosedRange<UInt64>] = []
        for part in s.split(separator: ",") {
            let ends = part.split(separator: "-", maxSplits: 1).map { parseNumber(String($0)) }
            guard let lo = ends.first ?? nil else { return nil }
            let hi = ends.count == 2 ? ends[1] : lo
            guard let h = hi, h >= lo else { return nil }
            ranges.append(lo...h)
        }
        return ranges.isEmpty ? nil : .ranges(ranges)
    }

    static func parseNumber(_ s: String) -> UInt64? {
        let t = s.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("0x") || t.hasPrefix("0X") { return UInt64(t.dropFirst(2), radix: 16) }
        return UInt64(t)
    }

    public var description: String {
        switch self {
        case .kmapped: return "kmapped"
        case .touched: return "touched"
        case .all: return "all"
        case let .ranges(r): return r.map { "0x\(String($0.lowerBound, radix: 16))-0x\(String($0.upperBound, radix: 16))" }.joined(separator: ",")
        }
    }

    /// Whether `pfn` is protected; `learned` frames count for the learned kinds.
    public func contains(pfn: UInt64?) -> Bool {
        switch self {
        case .kmapped, .touched, .all: return true
        case let .ranges(r):
            guard let pfn else { return false }
            return r.contains { $0.contains(pfn) }
        }
    }
}
