// LZ4 frame API (liblz4-dev). protreplay reads `.lz4` traces with LZ4F_decompress, streamed.
#include <lz4frame.h>
