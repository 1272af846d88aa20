import Dispatch
import TraceIngest

/// Carries normalized events from the reading thread to the replaying thread, in order, through a
/// few fixed batches: reading and normalizing (the first half of the work) overlaps with replay,
/// models and analysis (the second half).
///
/// Everything the replay side reads while the read goes on is either in the batch (events, ticks,
/// lost spans) or handed over at the exact event where it changed (the address layout), so a
/// pipelined run gives the same results as a serial one. String tables are shared; their slow paths
/// are locked (`StringTable`).
public final class ProtEventPipe: ProtEventSink {
    enum Item {
        case event(ProtEvent)
        case tick(cpu: Int32, pid: Int32, timestamp: UInt64, flags: TraceFlags, line: Int)
        case lost(cpu: Int32, count: UInt64, line: Int)
        case bufferStarted(cpu: Int32, line: Int)
        case layout(AddressResolver.Layout)
    }

    static let batches = 4
    static let batchSize = 8192

    /// Fixed slots (raw memory: each thread touches only the slots the semaphores give it).
    private let ring: UnsafeMutablePointer<[Item]>
    private let closed: UnsafeMutablePointer<Bool>
    /// Created at 0 and signalled up: libdispatch traps when a semaphore is freed below its initial value.
    private let free = DispatchSemaphore(value: 0)
    private let ready = DispatchSemaphore(value: 0)
    private var writeIndex = 0
    private var current: [Item] = []
    private let resolver: AddressResolver
    private var layoutVersion: Int

    /// - Parameter resolver: the reading side's resolver; its layout changes travel with the events.
    public init(resolver: AddressResolver) {
        self.resolver = resolver
        layoutVersion = resolver.layoutVersion
        ring = .allocate(capacity: ProtEventPipe.batches)
        ring.initialize(repeating: [], count: ProtEventPipe.batches)
        closed = .allocate(capacity: ProtEventPipe.batches)
        closed.initialize(repeating: false, count: ProtEventPipe.batches)
        current.reserveCapacity(ProtEventPipe.batchSize)
        for _ in 1..<ProtEventPipe.batches { free.signal() }   // one slot is taken by the batch being filled
    }

    deinit {
        ring.deinitialize(count: ProtEventPipe.batches)
        ring.deallocate()
        closed.deallocate()
    }

    // MARK: Reading side

    @inline(__always)
    private func append(_ item: Item) {
        if resolver.layoutVersion != layoutVersion {
            layoutVersion = resolver.layoutVersion
            current.append(.layout(resolver.layout))
        }
        current.append(item)
        if current.count >= ProtEventPipe.batchSize { hand(last: false) }
    }

    private func hand(last: Bool) {
        let slot = writeIndex % ProtEventPipe.batches
        ring[slot] = current
        closed[slot] = last
        writeIndex += 1
        current = []
        current.reserveCapacity(ProtEventPipe.batchSize)
        ready.signal()
        if !last { free.wait() }
    }

    public func consume(_ event: ProtEvent) { append(.event(event)) }
    public func lost(cpu: Int32, count: UInt64, line: Int) { append(.lost(cpu: cpu, count: count, line: line)) }
    public func bufferStarted(cpu: Int32, line: Int) { append(.bufferStarted(cpu: cpu, line: line)) }
    public func tick(cpu: Int32, pid: Int32, timestamp: UInt64, flags: TraceFlags, line: Int) {
        append(.tick(cpu: cpu, pid: pid, timestamp: timestamp, flags: flags, line: line))
    }

    /// Hands over what is left; the replay side stops after it. Call exactly once, also after an error.
    public func close() { hand(last: true) }

    // MARK: Replay side

    /// Replays every item into `sink` until the reading side closes, installing layout changes into
    /// `resolver` (the models' resolver) at the point they happened.
    public func drain(into sink: ProtEventSink, resolver: AddressResolver) {
        var readIndex = 0
        while true {
            ready.wait()
            let slot = readIndex % ProtEventPipe.batches
            let batch = ring[slot]
            let last = closed[slot]
            ring[slot] = []
            readIndex += 1
            for item in batch {
                switch item {
                case let .event(e): sink.consume(e)
                case let .tick(cpu, pid, ts, flags, line): sink.tick(cpu: cpu, pid: pid, timestamp: ts, flags: flags, line: line)
                case let .lost(cpu, count, line): sink.lost(cpu: cpu, count: count, line: line)
                case let .bufferStarted(cpu, line): sink.bufferStarted(cpu: cpu, line: line)
                case let .layout(l): resolver.install(l)
                }
            }
            if last { return }
            free.signal()
        }
    }
}
