import Glibc
import FuzzSupport
import TraceIngest

// libFuzzer on the chunked perf.data reading of `ParallelIngest` (`PerfDataPieceSource`) (the ordering, COMM/FORK state,
// copies of decompressed records, decoders per thread), differential: the input read on one thread and
// in small chunks by two decoders must give the same records and the same error (a difference traps).
exit(FuzzSupport.runDriver { data, count in
    FuzzSupport.perfChunks(UnsafeRawBufferPointer(start: data, count: count))
})
