// zlib (zlib1g-dev): `.gz` inputs, streamed with inflate (gzip header, concatenated members).
#include <zlib.h>
