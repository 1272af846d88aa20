import Glibc
import FuzzSupport
import TraceIngest

// libFuzzer on the records inside `perf record -z` COMPRESSED records: the input is the decompressed
// stream, compressed here so that the reader's zstd path, record splitting across compressed
// records and the trimming of its buffer all run on it.
exit(FuzzSupport.runDriver { data, count in
    FuzzSupport.perfZstd(UnsafeRawBufferPointer(start: data, count: count))
})
