#!/usr/bin/env bash
# Records the perf and trace-cmd test files in this directory (see README.md). Run as root from here.
set -euo pipefail
wl_small() { dd if=/dev/zero of=/dev/null bs=4k count=2000 2>/dev/null; ls /usr/share/doc >/dev/null; /usr/bin/printf 'one write:\nsecond line\nthird line\n' > /sys/kernel/tracing/trace_marker; }
wl() { dd if=/dev/zero of=/dev/null bs=4k count=30000 2>/dev/null; ls -lR /usr/share/doc >/dev/null; }
export -f wl wl_small
# 1. perf: cpu-clock call graphs, a mixed cpu-clock + tracepoint + page-faults file, pipe mode, -z.
perf record -q -g -e cpu-clock -F 2000 -o cpuclock-g.perf.data -- bash -c wl
perf record -q -e cpu-clock:u -e task-clock:k -F 1000 -o modifiers.perf.data -- bash -c wl
perf record -q -g --sample-cpu -e cpu-clock -e sched:sched_switch -e page-faults -F 1000 -o mixed.perf.data -- bash -c wl
perf record -q -g --sample-cpu -e cpu-clock -e sched:sched_switch -e page-faults -F 1000 -o - -- bash -c wl > mixed-pipe.perf.data
perf record -q -g -z -e cpu-clock -e sched:sched_switch -F 1000 -o mixed-zstd.perf.data -- bash -c wl
for f in cpuclock-g mixed mixed-zstd; do perf script -i $f.perf.data > $f.perf-script.txt 2>/dev/null; done
perf script -i - < mixed-pipe.perf.data > mixed-pipe.perf-script.txt 2>/dev/null
perf script -i cpuclock-g.perf.data -F comm,tid,time,event,ip,sym > cpuclock-g.F-comm-tid-time-event-ip-sym.txt
perf script -i cpuclock-g.perf.data -F comm,pid,tid,time,period,event,ip,sym,dso --ns > cpuclock-g.F-pid-tid-period-dso-ns.txt
perf script -i cpuclock-g.perf.data -F time,event,ip,sym > cpuclock-g.F-time-event-ip-sym.txt
perf script -i cpuclock-g.perf.data -G -F comm,tid,time,event,ip,sym > cpuclock-g.no-callchain.txt
perf script -i cpuclock-g.perf.data -F comm,tid,time,event,ip,sym,srcline > cpuclock-g.F-srcline.txt
perf script -i modifiers.perf.data > modifiers.perf-script.txt
# 2. trace-cmd (trace-cmd record cannot run here: /proc/sys/kernel/ftrace_enabled is read-only, so it
#    fails with "Can't enable ftrace"): events are enabled through tracefs and the buffer is taken with
#    trace-cmd extract, once per file version, so v6, v7+zstd, ftrace text and report text hold the same events.
T=/sys/kernel/tracing
tc_begin() { echo 0 > $T/tracing_on; echo > $T/trace; echo "$1" > $T/set_event; echo 1 > $T/tracing_on; }
tc_end() { echo 0 > $T/tracing_on; }
tc_begin "sched:sched_switch kmem:mm_page_alloc"; wl_small; tc_end
cat $T/trace > same-buffer.trace.txt
# /proc/kallsyms is hidden (bind-mounted /dev/null) so the file does not carry 1 MB of kernel symbols.
nokallsyms() { unshare -m sh -c 'mount --bind /dev/null /proc/kallsyms && exec "$@"' sh "$@"; }
nokallsyms trace-cmd extract -o same-buffer.v7-zstd.dat >/dev/null
trace-cmd convert --file-version 6 -i same-buffer.v7-zstd.dat -o same-buffer.v6.dat >/dev/null
trace-cmd convert --compression none -i same-buffer.v7-zstd.dat -o same-buffer.v7-none.dat >/dev/null
trace-cmd report -i same-buffer.v7-zstd.dat > same-buffer.report.txt 2>/dev/null
# v7 with zlib sections. Debian's trace-cmd 3.1.6 is built without zlib (`trace-cmd list -c` lists only zstd: its
# build had no zlib1g-dev), so the same release is built here from Debian's source, trace-cmd_3.1.6.orig.tar.gz
# (sha256 from trace-cmd_3.1.6-1.dsc), with zlib1g-dev installed: its Makefile then compiles trace-compress-zlib.c
# (it links a test program with -lz). Built in the git-ignored .capture-work/ (never committed); it converts the
# zstd file, and its report of the result must be same-buffer.report.txt byte for byte.
zlib_trace_cmd() {
    local w uris want
    w=$(cd ../.. && pwd)/.capture-work/trace-cmd-zlib
    mkdir -p "$w/apt/lists/partial" "$w/apt/cache/archives/partial"
    uris=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources | head -1)
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uris" > "$w/apt/src.sources"
    local apto=(-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$w/apt" -o Dir::State::Lists="$w/apt/lists" -o Dir::Cache="$w/apt/cache")
    apt-get "${apto[@]}" -qq update
    # On the recording host (2026-11-25) the archive served the .dsc but answered 404 for both tarballs: the orig
    # tarball was then placed in $w by hand (see README.md); it is used only if its sha256 is the .dsc's.
    (cd "$w" && apt-get "${apto[@]}" source --download-only trace-cmd=3.1.6-1) || [ -f "$w/trace-cmd_3.1.6.orig.tar.gz" ]
    want=$(awk '/^Checksums-Sha256:/ { s = 1; next } s && /orig\.tar\.gz$/ { print $1; exit }' "$w/trace-cmd_3.1.6-1.dsc")
    echo "$want  $w/trace-cmd_3.1.6.orig.tar.gz" | sha256sum -c --quiet -
    rm -rf "$w/trace-cmd-v3.1.6" && tar -C "$w" -xzf "$w/trace-cmd_3.1.6.orig.tar.gz"
    make -C "$w/trace-cmd-v3.1.6" -j2 trace-cmd >/dev/null
    ZLIB_TC=$w/trace-cmd-v3.1.6/tracecmd/trace-cmd
    "$ZLIB_TC" list -c | grep -q zlib
    "$ZLIB_TC" convert --compression zlib --file-version 7 -i same-buffer.v7-zstd.dat -o same-buffer.v7-zlib.dat >/dev/null
    "$ZLIB_TC" report -i same-buffer.v7-zlib.dat 2>/dev/null | cmp - same-buffer.report.txt
}
zlib_trace_cmd
# Two buffers: the top one and an instance "second" with its own events.
mkdir -p $T/instances/second
tc_begin "sched:sched_switch"; echo "sched:sched_wakeup" > $T/instances/second/set_event; echo 1 > $T/instances/second/tracing_on
wl_small; tc_end; echo 0 > $T/instances/second/tracing_on
nokallsyms trace-cmd extract -t -a -o instances.dat >/dev/null
trace-cmd report -i instances.dat > instances.report.txt 2>/dev/null
[ -d $T/instances/second ] && rmdir $T/instances/second
# The latency-format option: CPU and flags in one word, microseconds since the first entry.
tc_begin "sched:sched_switch"; sleep 0.05; /usr/bin/printf 'a\nb\n' > $T/trace_marker; tc_end
echo latency-format > $T/trace_options; cat $T/trace > latency-format.trace.txt; echo nolatency-format > $T/trace_options
# An event that does not fire: an empty trace.
tc_begin "initcall:initcall_start"; true; tc_end
nokallsyms trace-cmd extract -o empty.dat >/dev/null
# Leave tracefs as found: no events, tracing on.
echo > $T/set_event; echo > $T/trace; echo 1 > $T/tracing_on
# Compressed copies (the readers detect compression by magic): the v6 file is mostly empty ring-buffer pages.
lz4 -q -9 -f same-buffer.v6.dat same-buffer.v6.dat.lz4 && rm same-buffer.v6.dat
lz4 -q -9 -f same-buffer.v7-none.dat same-buffer.v7-none.dat.lz4 && rm same-buffer.v7-none.dat
gzip -9 -k -f same-buffer.trace.txt && xz -9 -k -f same-buffer.trace.txt && zstd -q -19 -k -f same-buffer.trace.txt
lz4 -q -9 -f cpuclock-g.perf-script.txt cpuclock-g.perf-script.txt.lz4 && rm cpuclock-g.perf-script.txt
# Versions and kernel, for the README.
{ uname -r; perf --version; trace-cmd --version 2>&1 | grep '^trace-cmd version'; zstd --version; gzip --version | head -1; xz --version | head -1; lz4 --version
  echo "same-buffer.v7-zlib.dat: $("$ZLIB_TC" --version 2>&1 | grep '^trace-cmd version'), built from Debian's trace-cmd_3.1.6.orig.tar.gz, $("$ZLIB_TC" list -c | grep -o 'zlib, .*')"; } > versions.txt
