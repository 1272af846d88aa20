import Glibc
import FuzzSupport
import TraceIngest

// libFuzzer on the gzip, xz and zstd stream decoders (chosen by magic, seeded with one file of each)
// and whatever reader the decompressed text selects.
exit(FuzzSupport.runDriver { data, count in
    FuzzSupport.run(UnsafeRawBufferPointer(start: data, count: count), format: nil)
})
