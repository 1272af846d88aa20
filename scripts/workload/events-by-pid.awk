# per-event-name counts of the events of some pids, in ftrace text or `trace-cmd report` output:
#   awk -v pids="12 13 14" -f events-by-pid.awk FILE      -> "name count" lines
# The pid is the number after the comm in "comm-PID [CPU]"; the name is the field after the timestamp.
BEGIN { n = split(pids, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
/^#/ || /^ *=>/ { next }
{
  if (!match($0, /-[0-9]+ +\[[0-9]+\]/)) next
  pid = substr($0, RSTART + 1) + 0
  if (!(pid in want)) next
  for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) {
    ev = $(i + 1)
    if (ev !~ /^</) { sub(/:$/, "", ev); count[ev]++ }
    break
  }
}
END { for (e in count) print e, count[e] }
