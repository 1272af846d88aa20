import FuzzSupport
import TraceIngest

/// libFuzzer entry: the ftrace-text reader (and everything after it) on arbitrary bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    FuzzSupport.run(UnsafeRawBufferPointer(start: data, count: count), format: .ftraceText)
    return 0
}
