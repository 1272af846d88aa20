#if canImport(Glibc)
import Glibc
#endif
import SwiftProtobuf
import TraceIngest
import EventModel
import Replay

/// Streams a Perfetto trace (`perfetto.protos.Trace` of TrackEvent packets, `report --format perfetto`)
/// as the replay observes windows, unprotected accesses and anomalies; open it in ui.perfetto.dev.
///
/// Tracks: one per model; under it one per CPU (`CPU 3`, or `no CPU`); under that one per layer and scope
/// (`effective cpu`) holding every window that opened on that CPU as a slice (name: the API; arguments:
/// frame, task, context, close cause, alias, call site, censored, uncertain), and `unprotected accesses`
/// and `anomalies` holding instant events.
///
/// Slices on one Perfetto track must nest, and windows of one layer and scope on one CPU need not (a
/// global `kmap` held across a sleep overlaps whatever that CPU maps next). So a track is drawn as
/// lanes: sibling tracks of the same name, which the UI shows as one (`SiblingMergeBehavior`'s
/// default), each window going to the first lane it nests in (`Lane.admits`). Nothing is dropped: every
/// window is one slice, every access and anomaly one instant.
///
/// The file is the `Trace` message written one `packet` field (field 1, length-delimited) at a time, so
/// no window is kept in memory after it is written.
public final class PerfettoTraceWriter {
    public let path: String
    /// Slices written (one per window) and instant events written (one per access or anomaly).
    public private(set) var slices = 0
    public private(set) var instants = 0

    private let fd: Int32
    private var buffer: [UInt8] = []
    private var writeError: String?
    private let comms: StringTable
    private let symbols: StringTable
    private var nextUuid: UInt64 = 1
    private var wroteFirstPacket = false
    private var modelTracks: [String: UInt64] = [:]
    private var cpuTracks: [CPUTrackKey: UInt64] = [:]
    private var laneGroups: [LaneKey: [Lane]] = [:]
    private var instantTracks: [InstantTrackKey: UInt64] = [:]

    /// The one packet sequence this writer is (TrackEvent packets need a non-zero sequence id).
    static let sequenceID: UInt32 = 1

    private struct CPUTrackKey: Hashable { var model: String; var cpu: Int32 }
    private struct LaneKey: Hashable { var model: String; var cpu: Int32; var layer: WindowLayer; var scope: Scope }
    private struct InstantTrackKey: Hashable { var model: String; var cpu: Int32; var anomalies: Bool }

    /// - Throws: `InputError.cannotOpen` if the file cannot be created.
    public init(path: String, comms: StringTable, symbols: StringTable) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw InputError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        self.path = path
        self.comms = comms
        self.symbols = symbols
        buffer.reserveCapacity(1 << 16)
    }

    deinit { close(fd) }

    /// A write to the file failed (reported by `finish`).
    public struct WriteFailure: Error, CustomStringConvertible {
        public var description: String
    }

    // MARK: observations

    /// One window: a begin and an end event on the first lane of its (model, CPU, layer, scope) track it nests in.
    public func write(_ w: ExposureWindow) {
        let model = "\(w.model)"
        let key = LaneKey(model: model, cpu: w.cpu, layer: w.layer, scope: w.scope)
        let close = max(w.closeNs, w.openNs)
        let from = Stamp(ts: w.openNs, seq: 2 * UInt64(slices)), to = Stamp(ts: close, seq: 2 * UInt64(slices) + 1)
        var group = laneGroups[key] ?? []
        var lane = group.firstIndex { $0.admits(begin: from, end: to) }
        if lane == nil {
            let uuid = newTrack(name: "\(w.layer.rawValue) \(w.scope.rawValue)", parent: cpuTrack(model: model, cpu: w.cpu),
                                description: "\(w.layer.rawValue) windows of scope \(w.scope.rawValue)" + (w.cpu >= 0 ? " opened on CPU \(w.cpu)" : " held by no CPU"))
            group.append(Lane(uuid: uuid))
            lane = group.count - 1
        }
        group[lane!].insert(begin: from, end: to)
        let uuid = group[lane!].uuid
        laneGroups[key] = group

        var args: [Perfetto_Protos_DebugAnnotation] = []
        args.reserveCapacity(10)
        if let f = w.frame { args.append(.string("frame", CSV.frame(f))) }
        args.append(.int("pid", Int64(w.holderPid)))
        args.append(.string("comm", comms.string(w.holderComm)))
        args.append(.string("context", w.holderContext.rawValue))
        args.append(.string("close_cause", w.closeCause.rawValue))
        args.append(.string("alias", "\(w.alias)"))
        if w.site != 0 { args.append(.string("site", symbols.string(w.site))) }
        args.append(.uint("duration_ns", w.durationNs))
        if w.censored { args.append(.bool("censored", true)) }
        if w.uncertain { args.append(.bool("uncertain", true)) }

        var begin = Perfetto_Protos_TrackEvent()
        begin.type = .sliceBegin
        begin.trackUuid = uuid
        begin.name = "\(w.api)"
        begin.categories = [model]
        begin.debugAnnotations = args
        emit(timestamp: w.openNs, event: begin)
        var finish = Perfetto_Protos_TrackEvent()
        finish.type = .sliceEnd
        finish.trackUuid = uuid
        emit(timestamp: close, event: finish)
        slices += 1
    }

    /// One unprotected access: an instant named by its class on the CPU's `unprotected accesses` track.
    public func write(_ a: AccessRecord) {
        let model = "\(a.model)"
        var args: [Perfetto_Protos_DebugAnnotation] = [.pointer("address", a.address)]
        if let f = a.frame { args.append(.string("frame", CSV.frame(f))) }
        args.append(.int("pid", Int64(a.pid)))
        args.append(.string("comm", comms.string(a.comm)))
        args.append(.string("context", a.context.rawValue))
        args.append(.bool("write", a.write))
        args.append(.string("outcome", a.outcome.rawValue))
        if a.site != 0 { args.append(.string("site", symbols.string(a.site))) }
        args.append(.uint("line", UInt64(max(0, a.line))))
        if a.uncertain { args.append(.bool("uncertain", true)) }
        instant(name: "\(a.accessClass)", at: a.timestamp, on: instantTrack(model: model, cpu: a.cpu, anomalies: false),
                category: model, args: args)
    }

    /// One anomaly: an instant named by its kind on the CPU's `anomalies` track.
    public func write(_ a: Anomaly) {
        let model = "\(a.model)"
        let args: [Perfetto_Protos_DebugAnnotation] = [.string("detail", a.detail), .int("pid", Int64(a.pid)),
                                                       .uint("line", UInt64(max(0, a.line)))]
        instant(name: a.kind, at: a.timestamp, on: instantTrack(model: model, cpu: a.cpu, anomalies: true),
                category: model, args: args)
    }

    /// Writes what is buffered and closes nothing (the file is closed when the writer goes).
    /// - Throws: `WriteFailure` if any write to the file failed.
    public func finish() throws {
        flush()
        if let e = writeError { throw WriteFailure(description: "\(path): \(e)") }
    }

    // MARK: tracks

    private func modelTrack(_ model: String) -> UInt64 {
        if let t = modelTracks[model] { return t }
        let t = newTrack(name: model, parent: nil, description: "protreplay: model \(model); slices are exposure windows (name: the API)",
                         explicitChildOrder: true)
        modelTracks[model] = t
        return t
    }

    private func cpuTrack(model: String, cpu: Int32) -> UInt64 {
        let key = CPUTrackKey(model: model, cpu: cpu)
        if let t = cpuTracks[key] { return t }
        // cpu -1: a window no context on a CPU holds (pks's global windows cut by the trace end, s390pv's
        // windows built with no context), listed after the CPUs.
        let t = newTrack(name: cpu >= 0 ? "CPU \(cpu)" : "no CPU", parent: modelTrack(model), description: nil,
                         rank: cpu >= 0 ? cpu : Int32.max)
        cpuTracks[key] = t
        return t
    }

    private func instantTrack(model: String, cpu: Int32, anomalies: Bool) -> UInt64 {
        let key = InstantTrackKey(model: model, cpu: cpu, anomalies: anomalies)
        if let t = instantTracks[key] { return t }
        let t = newTrack(name: anomalies ? "anomalies" : "unprotected accesses", parent: cpuTrack(model: model, cpu: cpu), description: nil)
        instantTracks[key] = t
        return t
    }

    /// Writes a `TrackDescriptor` packet for a new track and returns its uuid.
    private func newTrack(name: String, parent: UInt64?, description: String?, rank: Int32? = nil,
                          explicitChildOrder: Bool = false) -> UInt64 {
        let uuid = nextUuid
        nextUuid += 1
        var d = Perfetto_Protos_TrackDescriptor()
        d.uuid = uuid
        if let p = parent { d.parentUuid = p }
        d.name = name
        if let text = description { d.description_p = text }
        if let r = rank { d.siblingOrderRank = r }
        if explicitChildOrder { d.childOrdering = .explicit }
        var p = packet()
        p.trackDescriptor = d
        write(p)
        return uuid
    }

    // MARK: packets

    private func instant(name: String, at ts: UInt64, on track: UInt64, category: String, args: [Perfetto_Protos_DebugAnnotation]) {
        var e = Perfetto_Protos_TrackEvent()
        e.type = .instant
        e.trackUuid = track
        e.name = name
        e.categories = [category]
        e.debugAnnotations = args
        emit(timestamp: ts, event: e)
        instants += 1
    }

    private func emit(timestamp: UInt64, event: Perfetto_Protos_TrackEvent) {
        var p = packet()
        p.timestamp = timestamp
        p.trackEvent = event
        write(p)
    }

    /// A packet of this writer's sequence; the first one says the sequence starts with cleared state.
    private func packet() -> Perfetto_Protos_TracePacket {
        var p = Perfetto_Protos_TracePacket()
        p.trustedPacketSequenceID = PerfettoTraceWriter.sequenceID
        if !wroteFirstPacket {
            p.sequenceFlags = UInt32(Perfetto_Protos_TracePacket.SequenceFlags.seqIncrementalStateCleared.rawValue)
            wroteFirstPacket = true
        }
        return p
    }

    /// Appends `Trace.packet` (field 1, wire type 2): tag, varint length, the packet's bytes.
    private func write(_ p: Perfetto_Protos_TracePacket) {
        let bytes: [UInt8]
        do { bytes = try p.serializedBytes() } catch {
            if writeError == nil { writeError = "cannot encode a packet: \(error)" }
            return
        }
        buffer.append(0x0A)
        var n = UInt64(bytes.count)
        while n >= 0x80 {
            buffer.append(UInt8(truncatingIfNeeded: n) | 0x80)
            n >>= 7
        }
        buffer.append(UInt8(n))
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 16 { flush() }
    }

    private func flush() {
        var off = 0
        buffer.withUnsafeBytes { b in
            while off < b.count {
                let n = Glibc.write(fd, b.baseAddress! + off, b.count - off)
                if n <= 0 {
                    if writeError == nil { writeError = String(cString: strerror(errno)) }
                    break
                }
                off += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Where an event falls in the order Perfetto's trace processor replays a track in: by timestamp, and
/// events with equal timestamps in file order (its sorter breaks ties by position in the file). A
/// window's begin and end are written together when it closes, so `seq` (2n and 2n+1 for the n-th
/// window written) is that file order: no two stamps are equal.
struct Stamp: Comparable {
    var ts: UInt64
    var seq: UInt64
    static func < (a: Stamp, b: Stamp) -> Bool { a.ts != b.ts ? a.ts < b.ts : a.seq < b.seq }
}

/// One lane of a track: the slices on it must nest (in `Stamp` order, so windows that only touch, or
/// last no time at all, nest or follow one another as Perfetto will read them). It remembers its
/// outermost slices (disjoint, in time order), at most `Lane.remembered` of them; a slice that would meet
/// one it forgot is refused unless it encloses every forgotten one, so forgetting never lets a slice
/// cross one already written.
struct Lane {
    let uuid: UInt64
    /// Outermost slices, disjoint, sorted.
    private(set) var outermost: [(begin: Stamp, end: Stamp)] = []
    /// Earliest begin and latest end among the outermost slices forgotten (nil: none forgotten).
    private(set) var forgotten: (begin: Stamp, end: Stamp)?

    static let remembered = 256

    init(uuid: UInt64) { self.uuid = uuid }

    /// Whether the slice [begin, end] nests here: every outermost slice it meets lies inside it, and so
    /// do all forgotten ones unless it begins after the last of them ended.
    func admits(begin: Stamp, end: Stamp) -> Bool {
        if let f = forgotten, begin < f.end, !(begin < f.begin && f.end < end) { return false }
        var i = firstEndingAfter(begin)
        while i < outermost.count && outermost[i].begin < end {
            guard begin < outermost[i].begin && outermost[i].end < end else { return false }
            i += 1
        }
        return true
    }

    /// Records [begin, end] (which `admits`): it replaces the outermost slices it encloses.
    mutating func insert(begin: Stamp, end: Stamp) {
        if let f = forgotten, begin < f.begin && f.end < end { forgotten = nil }
        let first = firstEndingAfter(begin)
        var last = first
        while last < outermost.count && outermost[last].begin < end { last += 1 }
        outermost.replaceSubrange(first..<last, with: [(begin, end)])
        if outermost.count > Lane.remembered {
            let dropped = outermost.removeFirst()
            forgotten = (min(forgotten?.begin ?? dropped.begin, dropped.begin), max(forgotten?.end ?? dropped.end, dropped.end))
        }
    }

    /// Index of the first outermost slice that ends after `t`.
    private func firstEndingAfter(_ t: Stamp) -> Int {
        var lo = 0, hi = outermost.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if outermost[mid].end < t { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

extension Perfetto_Protos_DebugAnnotation {
    static func string(_ name: String, _ value: String) -> Self {
        var a = Self(); a.name = name; a.stringValue = value; return a
    }
    static func int(_ name: String, _ value: Int64) -> Self {
        var a = Self(); a.name = name; a.intValue = value; return a
    }
    static func uint(_ name: String, _ value: UInt64) -> Self {
        var a = Self(); a.name = name; a.uintValue = value; return a
    }
    static func bool(_ name: String, _ value: Bool) -> Self {
        var a = Self(); a.name = name; a.boolValue = value; return a
    }
    static func pointer(_ name: String, _ value: UInt64) -> Self {
        var a = Self(); a.name = name; a.pointerValue = value; return a
    }
}
