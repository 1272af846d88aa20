import TraceIngest

/// Where a parallel read (`ParallelIngest`) gets its pieces, and how a worker decodes one.
protocol PieceSource: AnyObject {
    /// The event names every decoder uses, all interned before any thread runs (perf.data names its
    /// events when it reads the headers); nil: each worker interns into a table of its own.
    var sharedNames: StringTable? { get }
    /// A decoder for one worker, whose event names go into `names`. Made on the calling thread,
    /// before any piece is read.
    func makeDecoder(names: StringTable) -> PieceDecoder
    /// Calls `body` with consecutive pieces, in input order, all on one thread.
    func forEachPiece(_ body: (InputPiece) throws -> Void) throws
}

/// Decodes pieces into raw events on one worker thread.
protocol PieceDecoder: AnyObject {
    /// Every record of `piece` into `sink`; returns how many lines (text) or records (binary) it held.
    func decode(_ piece: InputPiece, into sink: RawEventSink) throws -> Int
}
