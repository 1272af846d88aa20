// liblz4 (liblz4-dev): protreplay parses LZ4 frames itself and decodes their blocks with LZ4_decompress_safe;
// the frame API is here for the tests, which write frames of small flushed blocks with it.
#include <lz4.h>
#include <lz4frame.h>
