#!/usr/bin/env bash
# docs/fleet.md "Spark: pipe": the wrapper each Spark partition pipes its trace paths through. One
# `protreplay report` per line of stdin; prints the report's path. PROTREPLAY (the binary) and
# REPORT_DIR (a directory every task can write) come from the environment Spark passes to `pipe`.
# A report is named after the trace's path (slashes as underscores): traces that share a file name
# (every capture here is called `trace`) get reports of their own.
set -euo pipefail
while IFS= read -r t; do
  [ -n "$t" ] || continue
  out="$REPORT_DIR/${t//\//_}.json"
  "$PROTREPLAY" report "$t" --model highmem,pks,s390pv,directmap --format json -o "$out" --quiet
  echo "$out"
done
