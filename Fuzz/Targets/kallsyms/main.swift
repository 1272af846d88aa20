import Glibc
import FuzzSupport
import TraceIngest

// libFuzzer on the --kallsyms parser and the lookups trace-cmd report's bare kprobe addresses need.
exit(FuzzSupport.runDriver { data, count in
    FuzzSupport.kallsyms(UnsafeRawBufferPointer(start: data, count: count))
})
