/// Bounds the state a replay keeps by what is live (open windows, held slots, tasks not yet exited,
/// calls in flight), never by trace length or by how many distinct pids, pages or context instances
/// the trace names (`docs/reliability.md`, "Bounded live state").
///
/// One instance per run, shared by the `ReplayEngine` and every model. Each map keyed by pid, page,
/// pfn or context instance asks `admits(map.count)` before it inserts a NEW key (one integer compare;
/// updates of existing keys and removals never ask). At the cap the new key is not tracked: the
/// insertion is counted in `refusals` (by map), the first one is recorded with its trace line, and
/// everything already tracked keeps working. Removing state when it ends (unmap, free, exit) frees
/// room again, so the cap is on live entries.
///
/// A few per-owner lists have a fixed limit instead (`refuse(_:_:fixedLimit:)`): IRQ nesting per
/// CPU, kmap_local depth per task. They are counted the same way.
public final class LiveStateLimit {
    /// The default `--max-live-entries`.
    public static let defaultCap = 1_000_000

    /// Most entries any one map may hold.
    public let cap: Int
    /// The trace line being replayed (the engine sets it before each event reaches the models).
    public var line = 0
    /// New keys not admitted, over all maps.
    public private(set) var refusals = 0
    /// Called once, at the first refusal (the CLI prints its warning from here).
    public var onFirstRefusal: ((Hit) -> Void)?

    /// The first map that refused a new key.
    public struct Hit: Sendable, Equatable {
        /// `highmem`, `pks`, `s390pv`, `directmap`, or `replay` (the engine).
        public var model: String
        /// The map's name in the report (`frames`, `tasks`, `pkmap_slots`, ...).
        public var map: String
        /// What it holds, for the message (`frames`, `kmap_local slots on one task's stack`).
        public var noun: String
        public var line: Int
        /// How many entries it held: the cap, or the map's fixed limit.
        public var limit: Int
        /// True for a fixed per-owner limit (not `--max-live-entries`).
        public var fixed: Bool

        public init(model: String, map: String, noun: String, line: Int, limit: Int, fixed: Bool) {
            self.model = model; self.map = map; self.noun = noun; self.line = line; self.limit = limit; self.fixed = fixed
        }

        /// `TRACE:LINE: 1000000 live frames tracked by the s390pv model (the --max-live-entries cap); ...`
        public func warning(source: String) -> String {
            let owner = model == "replay" ? "the replay engine" : "the \(model) model"
            let why = fixed ? "a fixed limit" : "the --max-live-entries cap"
            return "\(source):\(line): \(limit) live \(noun) tracked by \(owner) (\(why)); later new \(noun) are counted in state_cap_refusals, not modelled"
        }
    }
    public private(set) var first: Hit?

    /// Refusals per map: few distinct maps, compared by the static strings' addresses.
    private var byMap: [(model: StaticString, map: StaticString, count: Int)] = []

    public init(cap: Int = LiveStateLimit.defaultCap) {
        precondition(cap >= 1, "the live-state cap must be at least 1")
        self.cap = cap
    }

    /// True when a map holding `live` entries may take one more key.
    @inline(__always)
    public func admits(_ live: Int) -> Bool { live < cap }

    /// Counts a new key that `model`'s `map` did not take (it was at the cap, or at `fixedLimit`).
    public func refuse(_ model: StaticString, _ map: StaticString, fixedLimit: Int? = nil, noun: StaticString? = nil) {
        refusals += 1
        if let i = byMap.firstIndex(where: { $0.model.utf8Start == model.utf8Start && $0.map.utf8Start == map.utf8Start }) {
            byMap[i].count += 1
        } else {
            byMap.append((model, map, 1))
        }
        guard first == nil else { return }
        let name = "\(map)"
        let hit = Hit(model: "\(model)", map: name, noun: noun.map { "\($0)" } ?? String(name.map { $0 == "_" ? " " : $0 }),
                      line: line, limit: fixedLimit ?? cap, fixed: fixedLimit != nil)
        first = hit
        onFirstRefusal?(hit)
    }

    /// Refusals by `model.map`, for the report.
    public var refusalsByMap: [String: Int] {
        var out: [String: Int] = [:]
        for e in byMap { out["\(e.model).\(e.map)", default: 0] += e.count }
        return out
    }

    /// What the report carries.
    public struct Summary: Sendable, Equatable {
        public var cap: Int
        public var refusals: Int
        public var refusalsByMap: [String: Int]
        public var first: Hit?
        public init(cap: Int = LiveStateLimit.defaultCap, refusals: Int = 0, refusalsByMap: [String: Int] = [:], first: Hit? = nil) {
            self.cap = cap; self.refusals = refusals; self.refusalsByMap = refusalsByMap; self.first = first
        }
    }

    public var summary: Summary { Summary(cap: cap, refusals: refusals, refusalsByMap: refusalsByMap, first: first) }
}
