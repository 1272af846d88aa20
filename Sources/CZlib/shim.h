// zlib (zlib1g-dev): `.gz` inputs, streamed with inflate (gzip header, concatenated members), and the
// zlib blocks of trace.dat v7 files (`uncompress`, as trace-cmd's zlib protocol reads them).
#include <zlib.h>
