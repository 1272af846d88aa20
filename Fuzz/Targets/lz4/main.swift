import FuzzSupport
import TraceIngest

/// libFuzzer entry: the lz4 reader (and everything after it) on arbitrary bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    FuzzSupport.run(UnsafeRawBufferPointer(start: data, count: count), format: nil)
    return 0
}
