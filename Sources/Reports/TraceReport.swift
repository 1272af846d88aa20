import TraceIngest
import EventModel
import Replay
import Analysis

/// Everything a `protreplay report` prints: what was read, the kernel profile, and one summary per model.
public struct TraceReport: Sendable {
    public struct Input: Sendable {
        public var path: String
        public var format: String
        public var compression: String
        public var bytes: Int
        public init(path: String, format: String, compression: String, bytes: Int) {
            self.path = path; self.format = format; self.compression = compression; self.bytes = bytes
        }
    }

    public var input: Input
    public var ingest: IngestStats
    public var replay: ReplayEngine.Stats
    public var profile: KernelProfile
    public var calibration: PageCalibration
    /// Unmapped event names and their counts, sorted by name.
    public var unmappedByName: [(String, Int)]
    public var models: [ModelSummary]
    /// New comm names and symbols the string tables refused (past their capacity; shown as `<overflow>`).
    public var stringsRefused: (comms: Int, symbols: Int) = (0, 0)

    public init(input: Input, ingest: IngestStats, replay: ReplayEngine.Stats, profile: KernelProfile,
                calibration: PageCalibration, unmappedByName: [(String, Int)], models: [ModelSummary]) {
        self.input = input; self.ingest = ingest; self.replay = replay; self.profile = profile
        self.calibration = calibration; self.unmappedByName = unmappedByName; self.models = models
    }

    /// Events read but deliberately not used: mapped to IGNORE, or wanted by no active model.
    /// `events = events_used + events_ignored + unmapped + malformed_events`.
    public var eventsIgnored: Int {
        ingest.events - replay.eventsUsed - ingest.unmapped - ingest.malformedEvents
    }

    /// The `struct page` layout in force: fixed or learned from `@vmemmap_base`, else calibrated.
    public var pageLayout: (base: UInt64, size: UInt64, source: String)? {
        if let b = profile.memMapBase, let s = profile.structPageSize { return (b, s, "profile") }
        if let b = calibration.base, let s = calibration.size { return (b, s, "calibrated") }
        return nil
    }
}
