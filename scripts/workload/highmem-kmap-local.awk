# kmap_local_pfn entries whose previous kmap_local* event on the same CPU is a kmap_local_page entry,
# i.e. __kmap_local_page_prot went on to __kmap_local_pfn_prot because the page is in highmem.
!/^#/ && !/^ =>/ && NF {
  for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) {
    cpu = $(i-2); n = $(i+1)
    if (n !~ /^k(un)?map_local/) break
    if (n == "kmap_local_pfn:") { pfn++; if (last[cpu] == "kmap_local_page:") hm++ }
    if (n == "kmap_local_page:") page++
    last[cpu] = n; break
  }
}
END { printf "kmap_local_page=%d kmap_local_pfn=%d highmem=%d lowmem=%d\n", page, pfn, hm, page - hm }
