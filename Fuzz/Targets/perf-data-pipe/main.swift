import Glibc
import FuzzSupport
import TraceIngest

// libFuzzer on pipe-mode perf.data (`perf record -o -`): the input is the record stream after the
// 16-byte pipe header (HEADER_ATTR, HEADER_FEATURE, HEADER_TRACING_DATA + its data, EVENT_UPDATE, samples).
exit(FuzzSupport.runDriver { data, count in
    FuzzSupport.perfPipe(UnsafeRawBufferPointer(start: data, count: count))
})
