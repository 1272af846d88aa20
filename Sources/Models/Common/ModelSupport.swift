import EventModel
import Replay

/// What every model does the same way: asks the run's live-state cap before tracking a new key, names
/// frames, and reports anomalies.
protocol ModelSupport: ProtectionModel {
    /// The run's cap on live entries (`LiveStateLimit`), attached by the engine.
    var limit: LiveStateLimit { get }
    var resolver: AddressResolver { get }
}

extension ModelSupport {
    /// A new key for `map`, which holds `live` entries: admitted, or counted as refused.
    @inline(__always)
    func admit(_ live: Int, _ map: StaticString) -> Bool {
        if limit.admits(live) { return true }
        limit.refuse(name, map)
        return false
    }

    /// A frame by pfn when the `struct page` layout is known, else by its `struct page *`.
    func frameRef(_ page: UInt64) -> FrameRef { resolver.pfn(forPage: page).map { .pfn($0) } ?? .page(page) }

    func anomaly(_ e: ProtEvent, _ kind: String, _ detail: String) -> Anomaly {
        Anomaly(model: name, timestamp: e.timestamp, line: e.line, cpu: e.cpu, pid: e.pid, kind: kind, detail: detail)
    }
}

/// `0x1f`: addresses and pointers in anomaly details.
func hexString(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

/// A trace line kept in model state (4 bytes, not 8: state entries are counted against the live-state cap,
/// docs/reliability.md). 0, "unknown", past line 4,294,967,295.
typealias StoredLine = UInt32

extension StoredLine {
    @inline(__always) init(line: Int) { self = UInt32(exactly: line) ?? 0 }
    @inline(__always) var line: Int { Int(self) }
}
