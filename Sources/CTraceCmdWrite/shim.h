// Writing trace.dat through libtracecmd, and recording through libtracefs.
// Debian: libtracecmd-dev libtracefs-dev. libtracefs is public API (tracefs.h). libtracecmd's public header
// declares only the reading side; the writing side is exported by libtracecmd.so.1 but declared in trace-cmd's
// private header (lib/trace-cmd/include/private/trace-cmd-private.h, trace-cmd 3.x). The prototypes below are
// those of trace-cmd 3.1 (Debian bookworm/trixie: 3.1.x), the same calls `trace-cmd record` makes.
#include <tracefs.h>

struct tracecmd_output;

/// A linked list of "system/event" globs: the events whose formats go into the file (NULL: all).
struct tracecmd_event_list {
    struct tracecmd_event_list *next;
    const char *glob;
};

struct tracecmd_option;

/// Option ids (trace-cmd-private.h): TRACECMD_OPTION_TRACECLOCK = 4, TRACECMD_OPTION_UNAME = 5.
enum { PROTREPLAY_TRACECMD_OPTION_TRACECLOCK = 4, PROTREPLAY_TRACECMD_OPTION_UNAME = 5 };

struct tracecmd_output *tracecmd_output_create(const char *output_file);
void tracecmd_set_quiet(struct tracecmd_output *handle, _Bool set_quiet);
int tracecmd_set_out_clock(struct tracecmd_output *handle, const char *clock);
struct tracecmd_option *tracecmd_add_option(struct tracecmd_output *handle, unsigned short id, int size,
                                            const void *data);
int tracecmd_output_write_headers(struct tracecmd_output *handle, struct tracecmd_event_list *list);
int tracecmd_write_cmdlines(struct tracecmd_output *handle);
int tracecmd_write_cpus(struct tracecmd_output *handle, int cpus);
int tracecmd_write_options(struct tracecmd_output *handle);
int tracecmd_write_cpu_data(struct tracecmd_output *handle, int cpus, char * const *cpu_data_files,
                            const char *buff_name);
void tracecmd_output_close(struct tracecmd_output *handle);
