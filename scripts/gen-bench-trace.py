#!/usr/bin/env python3
"""Generate a large, realistic ftrace text trace for benchmarks.

Takes the event lines of a real trace (default: the i386 HIGHMEM sample: sched, faults,
kmap_local map/pfn/ret/unmap, kmap_high, gup, filemap, writeback, block, stack traces) and repeats
them with timestamps shifted forward each round, until the output reaches the requested size.
The mix of events is therefore exactly the real kernel's.

usage: gen-bench-trace.py OUT SIZE_BYTES [SOURCE_TRACE(.lz4)]
"""
import re
import subprocess
import sys

out_path, size = sys.argv[1], int(sys.argv[2])
src = sys.argv[3] if len(sys.argv) > 3 else "SampleTraces/real/6.1.0-50-686-pae-i386-workload/trace.lz4"
raw = subprocess.run(["lz4", "-dc", src], check=True, capture_output=True).stdout if src.endswith(".lz4") else open(src, "rb").read()
lines = raw.decode("utf-8", "replace").splitlines(keepends=True)
header = [l for l in lines if l.startswith("#")]
body = [l for l in lines if not l.startswith("#")]

ts_re = re.compile(r"^(.*?\] (?:\S+ +)?)(\d+)\.(\d{6}): ")
parts = []  # (prefix, ts_us, suffix) or (line,)
first = last = None
for l in body:
    m = ts_re.match(l)
    if m and not l.startswith(" =>"):
        ts = int(m.group(2)) * 1_000_000 + int(m.group(3))
        first = ts if first is None else first
        last = ts
        parts.append((m.group(1), ts, l[m.end():]))
    else:
        parts.append((l,))
span = (last - first) + 1000  # microseconds per round, plus a gap

with open(out_path, "w") as out:
    out.write("".join(h for h in header if "entries-in-buffer" not in h))
    written = 0
    rnd = 0
    while written < size:
        shift = rnd * span
        chunk = []
        for p in parts:
            if len(p) == 1:
                chunk.append(p[0])
            else:
                t = p[1] + shift
                chunk.append(f"{p[0]}{t // 1_000_000}.{t % 1_000_000:06d}: {p[2]}")
        s = "".join(chunk)
        out.write(s)
        written += len(s)
        rnd += 1
print(f"{out_path}: {written} bytes, {rnd} rounds of {len(parts)} lines", file=sys.stderr)
