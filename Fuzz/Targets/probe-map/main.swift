import Glibc
import FuzzSupport

// libFuzzer on the probe-map JSON loader.
exit(FuzzSupport.runDriver { data, count in
    FuzzSupport.probeMap(UnsafeRawBufferPointer(start: data, count: count))
})
