import TraceIngest
import Replay

/// Workload phases from `trace_marker` lines: `wl phase sendfile` opens a segment named `sendfile`,
/// `wl phase sendfile done` closes it; a new phase marker also closes the open one, and the trace end
/// closes the last. Filled in trace order as the markers are replayed; the `SummaryBuilder` credits
/// windows (clipped to each segment they overlap) and accesses (by timestamp) to segments.
public final class PhaseSegments {
    public struct Segment: Sendable, Equatable {
        /// Marker text (untrusted: escaped wherever it is shown).
        public var name: String
        public var startNs: UInt64
        /// Nil while open.
        public var endNs: UInt64?
        /// Trace lines of the opening and closing markers (0: closed by another phase or the trace end).
        public var startLine: Int
        public var endLine = 0
    }
    public private(set) var segments: [Segment] = []
    /// Segments started: bounded by the number of markers (each marker is one event).
    public init() {}

    /// A phase marker's text after the prefix: `NAME` or `NAME done`.
    public func marker(_ text: String, at ts: UInt64, line: Int) {
        if text.hasSuffix(" done") {
            let name = String(text.dropLast(5))
            if let i = segments.indices.last, segments[i].endNs == nil, segments[i].name == name {
                segments[i].endNs = ts
                segments[i].endLine = line
            }
            return
        }
        closeOpen(at: ts)
        segments.append(Segment(name: text, startNs: ts, endNs: nil, startLine: line))
    }

    /// The trace ended: an open segment ends at its last event.
    public func finish(at ts: UInt64) { closeOpen(at: ts) }

    private func closeOpen(at ts: UInt64) {
        if let i = segments.indices.last, segments[i].endNs == nil { segments[i].endNs = max(ts, segments[i].startNs) }
    }

    /// The part of `w` inside `s` (an open segment runs on): nil when they do not overlap. A clipped end
    /// is no longer censored (the cut is the segment's, inside the capture).
    public static func clip(_ w: ExposureWindow, to s: Segment) -> ExposureWindow? {
        let end = s.endNs ?? .max
        guard w.closeNs >= s.startNs, w.openNs <= end else { return nil }
        var p = w
        if p.openNs < s.startNs { p.openNs = s.startNs; p.censoredLeft = false }
        if p.closeNs > end { p.closeNs = end; p.censoredRight = false }
        return p
    }

    /// Phase names in order of first appearance.
    public var names: [String] {
        var seen = Set<String>(), out: [String] = []
        for s in segments where seen.insert(s.name).inserted { out.append(s.name) }
        return out
    }
}

/// One phase's share of a model's observations (`by_phase` in the JSON).
public struct PhaseTotals: Sendable, Equatable {
    public var name: String
    public var segments = 0
    /// Time inside the phase's segments.
    public var spanNs: UInt64 = 0
    public var grantedWindows = 0, grantedNs: UInt64 = 0
    public var effectiveWindows = 0, effectiveNs: UInt64 = 0
    public var accesses = 0
    public init(name: String) { self.name = name }
}
