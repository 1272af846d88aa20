// XXH32 (libxxhash-dev): the checksums of LZ4 frames.
#include <xxhash.h>
