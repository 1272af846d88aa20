import Glibc
import FuzzSupport
import TraceIngest

// libFuzzer on the perf-script reader (and everything after it). SwiftPM links its own `main`, so the
// libFuzzer driver is started from here with the test callback.
exit(FuzzSupport.runDriver { data, count in
    FuzzSupport.run(UnsafeRawBufferPointer(start: data, count: count), format: .perfScript)
})
