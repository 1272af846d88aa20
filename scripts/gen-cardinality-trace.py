#!/usr/bin/env python3
"""Generate an adversarial-cardinality ftrace text trace (docs/reliability.md, "Bounded live state").

Every one of N tasks has its own pid and comm name and touches its own pages, and nothing is ever
released, so every map of live state grows with N unless capped:

    sched_switch   -> task N (new pid, new comm name)         pks contexts, comm string table
    kmap_high      page P_N (new struct page *)              highmem pkmap slots, pks kmap() holds
    kmap_local_pfn pfn 0x100000+N (new pfn, on task N)        highmem tasks and slots, pks grants
    try_grab_folio page G_N, FOLL_PIN (new frame)             s390pv frames (pinned, never released)

usage: gen-cardinality-trace.py OUT N
"""
import sys

out_path, n = sys.argv[1], int(sys.argv[2])

HEADER = """# tracer: nop
#
# entries-in-buffer/entries-written: {e}/{e}   #P:1
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""


def ts(us):
    return "%d.%06d" % (1 + us // 1_000_000, us % 1_000_000)


with open(out_path, "w", buffering=1 << 22) as out:
    out.write(HEADER.format(e=4 * n))
    prev, prev_comm, prev_pid = "<idle>-0", "swapper/0", 0
    lines = []
    for i in range(n):
        pid = 1000 + i
        comm = "w%d" % i
        me = "%s-%d" % (comm, pid)
        t = 4 * i
        lines.append("%s [000] d..2. %s: sched_switch: prev_comm=%s prev_pid=%d prev_prio=120 prev_state=S ==> next_comm=%s next_pid=%d next_prio=120\n"
                     % (prev, ts(t), prev_comm, prev_pid, comm, pid))
        lines.append("%s [000] ..... %s: kmap_high: (kmap_high+0x0/0x260) page=0x%x\n" % (me, ts(t + 1), 0xC1000000 + i * 40))
        lines.append("%s [000] ..... %s: kmap_local_pfn: (__kmap_local_pfn_prot+0x0/0x180) pfn=0x%x\n" % (me, ts(t + 2), 0x100000 + i))
        lines.append("%s [000] d.... %s: try_grab_folio: (try_grab_folio+0x0/0x370) page=0x%x refs=1 flags=0x40000\n"
                     % (me, ts(t + 3), 0xFFFFEA0100000000 + i * 64))
        prev, prev_comm, prev_pid = me, comm, pid
        if len(lines) >= 40000:
            out.write("".join(lines))
            lines.clear()
    out.write("".join(lines))
