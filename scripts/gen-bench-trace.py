#!/usr/bin/env python3
"""Tile a real ftrace capture into a large benchmark trace: the one place benchmark text traces are made.

Takes the event lines of a real trace (default: the i386 HIGHMEM sample,
SampleTraces/real/6.1.0-50-686-pae-i386-workload/trace.lz4: sched, irq/softirq, faults,
kmap_local map/pfn/ret/unmap, kmap_high, gup, filemap, writeback, block, stack traces) and repeats
them with timestamps shifted forward each round (by the capture's span plus 1 ms), so time keeps
increasing, until the output reaches the requested size. Pids, comms and every other byte of a line
are untouched, so the mix of events is exactly the real kernel's; `protreplay report` reads the
result with 0 malformed lines and 0 lost events (scripts/bench checks).

The header lines (`# tracer: nop`, the column legend) are written once. The one dropped is
`# entries-in-buffer/entries-written: 18179/18179   #P:2`: its counts describe the capture, not
the tiled file.

usage: gen-bench-trace.py OUT SIZE_BYTES [SOURCE_TRACE(.lz4)] [--lz4]
  --lz4   also write OUT.lz4 with `lz4 -1` (the CLI's defaults: independent 4 MiB blocks, content checksum)

scripts/bench makes bench-data/bench-1073741824.txt (1 GiB) and bench-data/bench-1300000000.txt
(1.3 GB, issue 17's "real capture tiled to >= 1 GB") with it, each with its .lz4.
"""
import re
import subprocess
import sys

args = [a for a in sys.argv[1:] if a != "--lz4"]
want_lz4 = "--lz4" in sys.argv[1:]
if len(args) < 2:
    sys.exit(__doc__)
out_path, size = args[0], int(args[1])
src = args[2] if len(args) > 2 else "SampleTraces/real/6.1.0-50-686-pae-i386-workload/trace.lz4"
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
if want_lz4:
    subprocess.run(["lz4", "-q", "-f", "-1", out_path, out_path + ".lz4"], check=True)
    print(f"{out_path}.lz4: lz4 -1", file=sys.stderr)
