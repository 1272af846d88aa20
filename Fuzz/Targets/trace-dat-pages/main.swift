import Glibc
import FuzzSupport
import TraceIngest

// libFuzzer on the direct trace.dat page decoder alone (RingBufferCPU): the first byte picks the
// long size (bit 0), the compression (bits 1-2: none, zstd, zlib) and the page size (bits 3-4:
// 256, 1024, 4096, 4096); the rest is one CPU's ring-buffer data. Whole files go through
// `fuzz-trace-dat`, which reads them with the direct decoder too (the default reader).
exit(FuzzSupport.runDriver { data, count in
    guard let data, count > 1 else { return }
    let mode = data.load(as: UInt8.self)
    let compression: String? = [nil, "zstd", "zlib", nil][Int(mode >> 1) & 3]
    let pageSize = [256, 1024, 4096, 4096][Int(mode >> 3) & 3]
    _ = try? RingBufferPages.decode(UnsafeRawBufferPointer(start: data + 1, count: count - 1), pageSize: pageSize,
                                    longSize: mode & 1 == 0 ? 8 : 4, compression: compression)
})
