# bench-memory-summary.awk: summarizes out/bench/memory-policy-runs.csv
# (written by scripts/bench-memory.sh).
#
#   awk -F, -v allocs="hakmem-adaptive ..." -v base=hakmem-adaptive -v out=DIR \
#       -f bench-memory-summary.awk memory-policy-runs.csv
#
# For every allocator: median, min and max over its successful runs of each
# measure, and the ratio of the medians to base's. The measures are the
# columns of runs.csv plus cpu_sec = user_sec + sys_sec (the whole process:
# every thread, hakmem's purge thread included). Writes into DIR:
#   memory-policy.csv          one row per allocator
#   memory-policy-table.md     the Markdown tables: medians with the ratio to
#                              base, then the spread of the noisy measures
#   memory-policy-verdict.md   a few sentences: base against the fixed
#                              policies, and who is lowest on each measure
#                              (allocators within 1% of the best share it)
#   rss-chart.list             for scripts/bench-memory-chart.sh, one line per
#                              allocator with a successful run:
#                              ALLOCATOR|SERIES_FILE|INTEGRAL, of the run whose
#                              integral is the median (the lower middle one
#                              for an even count)
# Plain POSIX awk (Debian's default is mawk).

# Sorts a[1..n] ascending, and idx[1..n] along with it.
function sort_num(a, idx, n,    i, j, t, u) {
    for (i = 2; i <= n; i++) {
        t = a[i]; u = idx[i]
        for (j = i - 1; j >= 1 && a[j] > t; j--) {
            a[j + 1] = a[j]; idx[j + 1] = idx[j]
        }
        a[j + 1] = t; idx[j + 1] = u
    }
}

# Statistics of measure m of allocator al: S[al, m, "med"|"min"|"max"], and
# S[al, m, "mid"], the run at the median.
function stats(al, m,    v, idx, i, n) {
    n = 0
    for (i = 1; i <= nok[al]; i++)
        if (val[al, m, i] != "") { v[++n] = val[al, m, i] + 0; idx[n] = i }
    if (n == 0) return 0
    sort_num(v, idx, n)
    S[al, m, "min"] = v[1]
    S[al, m, "max"] = v[n]
    S[al, m, "med"] = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    S[al, m, "mid"] = idx[int((n + 1) / 2)]
    return n
}

function med(al, m) { return ((al, m, "med") in S) ? S[al, m, "med"] : "" }
function ratio(al, m,    b) {
    b = med(base, m)
    return (b != "" && b > 0 && med(al, m) != "") ? sprintf("%.2f", med(al, m) / b) : "n/a"
}
# a number as the tables show it: M ops/s, MiB, seconds or MiB*s
function fmt(m, x) {
    if (m == "ops_per_sec") return sprintf("%.2f", x / 1e6)
    if (m ~ /_kb$/) return sprintf("%.1f", x / 1024)
    if (m == "rss_integral_mib_s") return sprintf("%.0f", x)
    return sprintf("%.2f", x)
}
# "median (ratio to base)"
function cell(al, m) { return med(al, m) == "" ? "n/a" : fmt(m, med(al, m)) " (" ratio(al, m) ")" }
function range(al, m) { return med(al, m) == "" ? "n/a" : fmt(m, S[al, m, "min"]) " - " fmt(m, S[al, m, "max"]) }

NR == 1 {
    for (i = 1; i <= NF; i++) colno[$i] = i
    next
}
{
    al = $1
    nruns[al]++
    if ($3 != "ok") next
    i = ++nok[al]
    for (name in colno) val[al, name, i] = $(colno[name])
    val[al, "cpu_sec", i] = $(colno["user_sec"]) + $(colno["sys_sec"])
}

END {
    nal = split(allocs, AL, " ")
    nm = split("ops_per_sec cpu_sec peak_rss_kb rss_free_all_kb rss_free_all_lull_kb rss_integral_mib_s rss_mean_kb wall_sec", M, " ")
    for (ai = 1; ai <= nal; ai++)
        for (k = 1; k <= nm; k++) stats(AL[ai], M[k])

    csv = out "/memory-policy.csv"; md = out "/memory-policy-table.md"
    verdict = out "/memory-policy-verdict.md"; list = out "/rss-chart.list"
    printf "allocator,runs,ok_runs" > csv
    for (k = 1; k <= nm; k++)
        printf ",%s_median,%s_min,%s_max,%s_vs_%s", M[k], M[k], M[k], M[k], base > csv
    printf "\n" > csv
    print "| allocator | M ops/s | CPU s | peak RSS MiB | RSS after free-all MiB | RSS after the lull MiB | RSS x time MiB*s | mean RSS MiB | run s |" > md
    print "|---|--:|--:|--:|--:|--:|--:|--:|--:|" > md
    printf "" > list

    for (ai = 1; ai <= nal; ai++) {
        al = AL[ai]
        printf "%s,%d,%d", al, nruns[al], nok[al] > csv
        for (k = 1; k <= nm; k++) {
            m = M[k]
            if (med(al, m) == "") printf ",,,,n/a" > csv
            else printf ",%s,%s,%s,%s", S[al, m, "med"], S[al, m, "min"], S[al, m, "max"], ratio(al, m) > csv
        }
        printf "\n" > csv
        if (nok[al] + 0 == 0) {
            printf "| %s | failed | | | | | | | |\n", al > md
            continue
        }
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", al,
            cell(al, "ops_per_sec"), cell(al, "cpu_sec"), cell(al, "peak_rss_kb"),
            cell(al, "rss_free_all_kb"), cell(al, "rss_free_all_lull_kb"),
            cell(al, "rss_integral_mib_s"), cell(al, "rss_mean_kb"),
            fmt("wall_sec", med(al, "wall_sec")) > md
        printf "%s|%s|%s\n", al, val[al, "series", S[al, "rss_integral_mib_s", "mid"]],
            S[al, "rss_integral_mib_s", "med"] > list
    }
    print "" > md
    print "Spread over the runs (min - max):" > md
    print "" > md
    print "| allocator | M ops/s | CPU s | RSS x time MiB*s | run s |" > md
    print "|---|--:|--:|--:|--:|" > md
    for (ai = 1; ai <= nal; ai++) {
        al = AL[ai]
        if (nok[al] + 0 == 0) continue
        printf "| %s | %s | %s | %s | %s |\n", al, range(al, "ops_per_sec"), range(al, "cpu_sec"),
            range(al, "rss_integral_mib_s"), range(al, "wall_sec") > md
    }

    # base against the fixed policies
    printf "" > verdict
    line = ""
    for (ai = 1; ai <= nal; ai++) {
        al = AL[ai]
        if (al == base || al !~ /^hakmem-/ || med(al, "rss_integral_mib_s") == "" ||
            med(base, "rss_integral_mib_s") == "")
            continue
        line = line sprintf("%s against %s: RSS x time %.2f (%s), throughput %.2f, CPU time %.2f, peak RSS %.2f, RSS after the lull %s. ",
            base, al,
            med(base, "rss_integral_mib_s") / med(al, "rss_integral_mib_s"),
            (med(base, "rss_integral_mib_s") < med(al, "rss_integral_mib_s") ? "lower" : "NOT lower"),
            med(base, "ops_per_sec") / med(al, "ops_per_sec"),
            med(base, "cpu_sec") / med(al, "cpu_sec"),
            med(base, "peak_rss_kb") / med(al, "peak_rss_kb"),
            (med(al, "rss_free_all_lull_kb") > 0 ? sprintf("%.2f", med(base, "rss_free_all_lull_kb") / med(al, "rss_free_all_lull_kb")) : "n/a"))
    }
    if (line != "") {
        print line "(Ratios of the medians, " base "'s over the other's.)" > verdict
        print "" > verdict
    }

    # who is best on each measure
    nw = split("rss_integral_mib_s rss_mean_kb peak_rss_kb rss_free_all_kb rss_free_all_lull_kb ops_per_sec", WHAT, " ")
    split("lowest RSS x time|lowest mean RSS|lowest peak RSS|lowest RSS after free-all|lowest RSS after the lull|highest throughput", WNAME, "|")
    line = ""
    for (w = 1; w <= nw; w++) {
        m = WHAT[w]; high = (m == "ops_per_sec")
        best = ""
        for (ai = 1; ai <= nal; ai++) {
            x = med(AL[ai], m)
            if (x == "") continue
            if (best == "" || (high ? x > bx : x < bx)) { best = AL[ai]; bx = x }
        }
        if (best == "") continue
        who = ""
        for (ai = 1; ai <= nal; ai++) {
            x = med(AL[ai], m)
            if (x == "") continue
            if (high ? x >= bx * 0.99 : x <= bx * 1.01) who = who (who == "" ? "" : ", ") AL[ai]
        }
        line = line (line == "" ? "" : "; ") WNAME[w] ": " who
    }
    if (line != "")
        print toupper(substr(line, 1, 1)) substr(line, 2) "." > verdict
    close(csv); close(md); close(verdict); close(list)
}
