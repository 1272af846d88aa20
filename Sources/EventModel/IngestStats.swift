import TraceIngest

/// Data-quality counters of one read: every input record is counted exactly once, as used by the
/// replay, ignored on purpose, unmapped, or malformed.
public struct IngestStats: Sendable {
    /// Ring-buffer entries: every event line (markers and syscalls included), stack traces excluded.
    public var events = 0
    public var stackTraces = 0
    /// Events that matched `--pid`/`--comm`/`--cpu`/`--time` (nil: no filter; see `EventFilter`).
    public var eventsMatched = 0
    /// Events whose name no probe-map rule matched.
    public var unmapped = 0
    /// Events a rule maps to `IGNORE`.
    public var ignored = 0
    /// Lines that could not be parsed, plus mapped events whose fields could not be decoded.
    public var malformed = 0
    /// Mapped events whose fields could not be decoded (a subset of `malformed`, also counted in `events`).
    public var malformedEvents = 0
    public var malformedExamples: [MalformedLine] = []
    public var lostEvents: UInt64 = 0
    /// `[LOST EVENTS]` markers that did not say how many.
    public var lostMarkersWithoutCount = 0
    public var lostMarkers = 0
    public var bufferStarts = 0
    public static let exampleLimit = 5

    public init() {}

    /// Lost-event counts come from the input (a perf.data `PERF_RECORD_LOST` says any number): they add up
    /// to at most `UInt64.max` ("more than can be counted") instead of trapping.
    @inline(__always)
    public static func saturatingSum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? .max : s
    }

    /// Adds the statistics of the next piece of the input, whose line numbers start after `lineBase`.
    public mutating func add(_ piece: IngestStats, lineBase: Int) {
        events += piece.events
        stackTraces += piece.stackTraces
        eventsMatched += piece.eventsMatched
        unmapped += piece.unmapped
        ignored += piece.ignored
        malformed += piece.malformed
        malformedEvents += piece.malformedEvents
        lostEvents = IngestStats.saturatingSum(lostEvents, piece.lostEvents)
        lostMarkersWithoutCount += piece.lostMarkersWithoutCount
        lostMarkers += piece.lostMarkers
        bufferStarts += piece.bufferStarts
        for var m in piece.malformedExamples where malformedExamples.count < IngestStats.exampleLimit {
            m.line += lineBase
            malformedExamples.append(m)
        }
    }
}

/// A line that could not be used, for the report: where and why.
public struct MalformedLine: Sendable, Equatable {
    public var line: Int
    public var offset: Int
    public var reason: String
    public var text: String
    public init(line: Int, offset: Int, reason: String, text: String) {
        self.line = line; self.offset = offset; self.reason = reason; self.text = text
    }
}
