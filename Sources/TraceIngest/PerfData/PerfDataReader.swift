public final class PerfDataReader {
    public let names: StringTable
    public init(names: StringTable) { self.names = names }
    public func read(_ input: TraceInput, into sink: RawEventSink, check: () throws -> Void) throws {
        throw InputError.unusable(path: input.path, format: .perfData, what: "not yet")
    }
}
