// liblzma (liblzma-dev): `.xz` inputs, streamed with lzma_code (concatenated streams).
#include <lzma.h>
