// libtracecmd (trace.dat reading) and libtraceevent (event formats, field decoding, kallsyms).
// Debian: libtracecmd-dev libtraceevent-dev libtracefs-dev (libtracecmd.pc requires libtracefs).
#include <trace-cmd.h>
#include <event-parse.h>
#include <trace-seq.h>
#include <kbuffer.h>
