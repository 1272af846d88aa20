/// One rule of the probe map: which raw event (by name, or by probed function for kprobes)
/// becomes which normalized event, and where its fields are.
///
/// In JSON (`--probe-map FILE`, see `docs/probe-map.md`):
///
///     { "function": "__kmap_local_page_prot", "probe": "entry", "maps_to": "KMAP", "api": "kmap_local_page",
///       "fields": { "page": "page" } }
public struct ProbeMapEntry: Codable, Equatable, Sendable {
    /// Match on the event name as the trace prints it (`page_fault_user`, `my_kmap_probe`).
    public var event: String?
    /// Match every event whose name starts with this (`sys_enter_`).
    public var eventPrefix: String?
    /// Match a kprobe/kretprobe on the function it probes, whatever the event was called.
    public var function: String?
    /// For `function` rules: `entry` (kprobe), `return` (kretprobe) or nil for both.
    public var probe: String?
    /// A `ProtEventTag` raw value (`KMAP`, `CTX_SWITCH`, ...) or `IGNORE` (known, deliberately unused).
    public var mapsTo: String
    /// Sub-kind: the kmap API (`kmap_high`, `kmap_local_page`, `kmap_local_pfn`), gup API (`get`, `pin`),
    /// IRQ kind (`hardirq`, `softirq`), fault side (`user`, `kernel`).
    public var api: String?
    /// gup path: `fast`, `slow`, `remote`.
    public var path: String?
    /// Role -> field name in the payload (`{"page": "pg"}`); roles not given use the defaults.
    public var fields: [String: String]?

    enum CodingKeys: String, CodingKey {
        case event, function, probe, api, path, fields
        case eventPrefix = "event_prefix"
        case mapsTo = "maps_to"
    }

    public init(event: String? = nil, eventPrefix: String? = nil, function: String? = nil, probe: String? = nil, mapsTo: String,
                api: String? = nil, path: String? = nil, fields: [String: String]? = nil) {
        self.event = event; self.eventPrefix = eventPrefix; self.function = function; self.probe = probe; self.mapsTo = mapsTo
        self.api = api; self.path = path; self.fields = fields
    }
}
