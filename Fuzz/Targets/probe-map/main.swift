import FuzzSupport

/// libFuzzer entry: the probe-map JSON loader on arbitrary bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ count: Int) -> CInt {
    FuzzSupport.probeMap(UnsafeRawBufferPointer(start: data, count: count))
    return 0
}
