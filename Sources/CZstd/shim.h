// Zstandard (libzstd-dev): `.zst` inputs and perf.data compressed records (`perf record -z`),
// decompressed as streams with ZSTD_decompressStream.
#include <zstd.h>
