# Context switches away from a task that holds highmem kmap_local slots (spec E8), with the window convention of
# the spec: a slot is held from the entry of the API call -- kmap_local_page (__kmap_local_page_prot) when it goes
# on to kmap_local_pfn (__kmap_local_pfn_prot: a highmem page), or a direct kmap_local_pfn -- to the entry of the
# kunmap_local of a fixmap address (0xff......; a lowmem address is the kunmap_local of a page never mapped).
# A kmap_local_page entry is decided at the task's next kmap_local_pfn (highmem) or kmap_local_page_ret (lowmem);
# switches in between are counted once it is decided highmem (`pending` of them).
# Per sched_switch whose prev_pid holds slots: `switches` counts it once, `slot_pieces` once per held slot (each
# held slot's on-CPU window ends there); by prev_state (R/R+ = preempted, D/S = blocked).
# Independent of protreplay; see SampleTraces/README.md.
function pidof(task) { sub(/.*-/, "", task); return task }
!/^#/ && !/^ =>/ && NF {
  for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) {
    n = $(i+1); pid = pidof($(i-3))
    if (n == "kmap_local_page:") { pend[pid] = 1; tsw[pid] = 0; tpc[pid] = 0; tst[pid] = "" }
    else if (n == "kmap_local_page_ret:") pend[pid] = 0
    else if (n == "kmap_local_pfn:") {
      if (pend[pid]) {
        sw += tsw[pid]; pieces += tpc[pid]; pending += tpc[pid]
        k = split(tst[pid], sts, " "); for (j = 1; j <= k; j++) bystate[sts[j]]++
      }
      pend[pid] = 0; depth[pid]++
    } else if (n == "kunmap_local:") {
      v = $NF; sub(/^vaddr=/, "", v)
      if (length(v) == 10 && substr(v, 3, 2) == "ff" && depth[pid] > 0) depth[pid]--
    } else if (n == "sched_switch:") {
      p = ""; st = ""
      for (j = i + 2; j <= NF; j++) {
        if ($j ~ /^prev_pid=/) { p = $j; sub(/^prev_pid=/, "", p) }
        if ($j ~ /^prev_state=/) { st = $j; sub(/^prev_state=/, "", st) }
      }
      if (depth[p] > 0) { sw++; pieces += depth[p]; bystate[st]++ }
      if (pend[p]) { tpc[p]++; if (depth[p] == 0) { tsw[p]++; tst[p] = tst[p] " " st } }
    }
    break
  }
}
END {
  printf "switches=%d slot_pieces=%d pending=%d", sw, pieces, pending
  for (s in bystate) printf " %s=%d", s, bystate[s]
  printf "\n"
}
