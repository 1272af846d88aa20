// LZ4 block API (liblz4-dev). protreplay parses LZ4 frames itself and decodes their blocks with LZ4_decompress_safe.
#include <lz4.h>
