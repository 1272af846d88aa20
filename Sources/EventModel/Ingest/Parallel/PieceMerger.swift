import Dispatch
import TraceIngest
#if canImport(Glibc)
import Glibc
#endif

/// Replays parsed pieces in input order: renumbers each worker's strings into the shared tables
/// (in the order they first occur in the input), makes line numbers absolute and sums statistics.
final class PieceMerger {
    let comms: StringTable
    let symbols: StringTable
    var sink: ProtEventSink?
    private(set) var stats = IngestStats()
    /// Lines before the next piece.
    private(set) var lines = 0
    /// Per worker: its string id -> the shared id.
    private var commIDs: [[StringTable.ID]]
    private var symbolIDs: [[StringTable.ID]]

    init(comms: StringTable, symbols: StringTable, workers: Int) {
        self.comms = comms
        self.symbols = symbols
        commIDs = Array(repeating: [0], count: workers)
        symbolIDs = Array(repeating: [0], count: workers)
    }

    func merge(_ p: ParsedPiece) {
        PieceMerger.adopt(p.newComms, into: comms, map: &commIDs[p.worker])
        PieceMerger.adopt(p.newSymbols, into: symbols, map: &symbolIDs[p.worker])
        let base = lines
        guard let sink else { return }
        commIDs[p.worker].withUnsafeBufferPointer { commMap in
            symbolIDs[p.worker].withUnsafeBufferPointer { symbolMap in
                @inline(__always) func comm(_ id: StringTable.ID) -> StringTable.ID {
                    id == StringTable.overflowID ? id : commMap[Int(id)]
                }
                for item in p.items {
                    switch item {
                    case var .event(e):
                        e.line += base
                        e.comm = comm(e.comm)
                        if e.site != 0 { e.site = e.site == StringTable.overflowID ? e.site : symbolMap[Int(e.site)] }
                        switch e.kind {
                        case let .contextSwitch(prevPid, prevComm, prevRunnable, nextPid, nextComm):
                            e.kind = .contextSwitch(prevPid: prevPid, prevComm: comm(prevComm), prevRunnable: prevRunnable,
                                                    nextPid: nextPid, nextComm: comm(nextComm))
                        case let .taskFork(parentPid, childPid, childComm):
                            e.kind = .taskFork(parentPid: parentPid, childPid: childPid, childComm: comm(childComm))
                        case let .marker(phase) where phase != 0:
                            e.kind = .marker(phase: phase == StringTable.overflowID ? phase : symbolMap[Int(phase)])
                        default: break
                        }
                        sink.consume(e)
                    case let .tick(cpu, pid, ts, flags, line): sink.tick(cpu: cpu, pid: pid, timestamp: ts, flags: flags, line: line + base)
                    case let .lost(cpu, count, line): sink.lost(cpu: cpu, count: count, line: line + base)
                    case let .bufferStarted(cpu, line): sink.bufferStarted(cpu: cpu, line: line + base)
                    case let .fact(f): sink.addressFact(f)
                    }
                }
            }
        }
        stats.add(p.stats, lineBase: base)
        lines += p.lines
    }

    private static func adopt(_ new: ParsedPiece.NewStrings, into table: StringTable, map: inout [StringTable.ID]) {
        guard !new.lengths.isEmpty else { return }
        precondition(Int(new.first) == map.count, "pieces of one worker merged out of order")
        new.bytes.withUnsafeBytes { all in
            var at = 0
            for n in new.lengths {
                map.append(table.intern(UnsafeRawBufferPointer(rebasing: all[at..<at + n])))
                at += n
            }
        }
    }
}
