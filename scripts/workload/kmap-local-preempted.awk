# Context switches away from a task that holds highmem kmap_local slots (spec E8). A slot is counted as held from
# the entry of __kmap_local_pfn_prot (kmap_local_pfn: the point where a kmap_local_page is known to map a highmem
# page; the kernel pushes the slot inside it) to the entry of the kunmap_local of a fixmap address (0xff......; a
# lowmem address is the kunmap_local of a page that was never mapped). Per sched_switch whose prev_pid holds
# slots: `switches` counts it once, `slot_pieces` once per held slot (each held slot's on-CPU window ends there),
# split by prev_state (R/R+ = preempted, D/S = blocked). `pending` counts switches that fell between a
# kmap_local_page entry and its kmap_local_pfn (not counted above). Independent of protreplay; see
# SampleTraces/README.md.
function pidof(task) { sub(/.*-/, "", task); return task }
!/^#/ && !/^ =>/ && NF {
  for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) {
    n = $(i+1); pid = pidof($(i-3))
    if (n == "kmap_local_page:") { pend[pid] = 1; tent[pid] = 0 }
    else if (n == "kmap_local_page_ret:") pend[pid] = 0
    else if (n == "kmap_local_pfn:") { if (pend[pid]) pending += tent[pid]; pend[pid] = 0; depth[pid]++ }
    else if (n == "kunmap_local:") {
      v = $NF; sub(/^vaddr=/, "", v)
      if (length(v) == 10 && substr(v, 3, 2) == "ff" && depth[pid] > 0) depth[pid]--
    } else if (n == "sched_switch:") {
      p = ""; st = ""
      for (j = i + 2; j <= NF; j++) {
        if ($j ~ /^prev_pid=/) { p = $j; sub(/^prev_pid=/, "", p) }
        if ($j ~ /^prev_state=/) { st = $j; sub(/^prev_state=/, "", st) }
      }
      if (depth[p] > 0) { sw++; pieces += depth[p]; bystate[st]++ }
      else if (pend[p]) tent[p]++
    }
    break
  }
}
END {
  printf "switches=%d slot_pieces=%d pending=%d", sw, pieces, pending
  for (s in bystate) printf " %s=%d", s, bystate[s]
  printf "\n"
}
