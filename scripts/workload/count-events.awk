# per-event-name counts of an ftrace text trace (see SampleTraces/README.md)
!/^#/ && !/^ =>/ && NF {
  for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) {
    n = $(i+1)
    if (n == "<stack") n = "<stack trace>"
    else if (n ~ /\(/) n = substr(n, 1, index(n, "(") - 1)
    else if ($(i+2) == "->") n = n " ->"
    else sub(/:$/, "", n)
    print n; break
  }
}
