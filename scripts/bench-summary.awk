# bench-summary.awk: summarizes out/bench/runs.csv (written by scripts/bench.sh).
#
#   awk -F, -v allocs="hakmem glibc ..." -v out=DIR -f bench-summary.awk runs.csv
#
# For every benchmark case and allocator: median, min and max over the
# successful runs of throughput (ops_per_sec) and peak RSS (peak_rss_kb), and
# the ratio of the medians to hakmem's; and, where the benchmark reports it
# (bench_memory), the RSS after free-all (rss_free_all_kb). Writes into DIR:
#   results.csv  one row per case and allocator
#   table.md     the same as a Markdown table (M ops/s, MiB)
#   memory.md    bench_memory's RSS after each phase (medians), if it ran
#   goals.md     issue 4's memory goals per case: hakmem's peak RSS against
#                the leanest peer's, its RSS after free-all against the
#                lowest peer's (medians; the peers are the allocators not
#                named hakmem*)
#   chart.dat    gnuplot data for scripts/bench-chart.sh: one block per case
#   chart.titles one line per case, in block order: OK|TITLE|FACTOR|UNIT,
#                OK = 0 when no allocator has a successful run of the case;
#                the chart multiplies chart.dat's M ops/s by FACTOR to draw
#                them in UNIT (ops/s or K ops/s for bench_large_churn's small
#                figures, M ops/s otherwise)
# Plain POSIX awk (Debian's default is mawk).

# Sorts a[1..n] in place, ascending (n is small: the number of runs).
function sort_num(a, n,    i, j, t) {
    for (i = 2; i <= n; i++) {
        t = a[i]
        for (j = i - 1; j >= 1 && a[j] > t; j--)
            a[j + 1] = a[j]
        a[j + 1] = t
    }
}

# Fills s["med"], s["min"], s["max"] from v[1..n] (sorted in place).
function stats(v, n, s) {
    sort_num(v, n)
    s["min"] = v[1]
    s["max"] = v[n]
    s["med"] = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}

# Copies column `col` of the successful runs of key k into v[]; returns count.
function collect(k, col, v,    i, n) {
    n = 0
    for (i = 1; i <= nok[k]; i++)
        if ((k, col, i) in val && val[k, col, i] != "")
            v[++n] = val[k, col, i] + 0
    return n
}

# M ops/s; below 0.1 M (bench_large_churn) three significant digits, not
# 0.00 (and no exponent: 0.000163)
function mops(x,    v, d, t) {
    if (x >= 100e6) return sprintf("%.1f", x / 1e6)
    if (x >= 0.1e6 || x <= 0) return sprintf("%.2f", x / 1e6)
    v = x / 1e6; d = 3; t = 0.1
    while (v < t && d < 12) { d++; t /= 10 }
    return sprintf("%." d "f", v)
}
function mib(x)  { return sprintf("%.1f", x / 1024) }
function ratio(x, base) { return (base > 0 && x != "") ? sprintf("%.2f", x / base) : "n/a" }

# an allocator's bar colour: the table's, else teal
function rgb(a) { return (a in color) ? color[a] : 1556175 }

NR == 1 { next }    # header
{
    c = $1; a = $5
    if (!(c in bench)) {
        order[++ncase] = c
        bench[c] = $2; threads[c] = $3; args[c] = $4
    }
    k = c SUBSEP a
    nruns[k]++
    if ($7 != "ok")
        next
    i = ++nok[k]
    for (col = 8; col <= 14; col++)
        val[k, col, i] = $col
}

END {
    nal = split(allocs, AL, " ")
    color["hakmem"] = 14034728      # 0xD62728 red
    color["glibc"] = 8355711        # 0x7F7F7F grey
    color["mimalloc"] = 2062260     # 0x1F77B4 blue
    color["jemalloc"] = 2924588     # 0x2CA02C green
    color["tcmalloc"] = 16744206    # 0xFF7F0E orange
    color["hakmem-secure"] = 16750742  # 0xFF9896 light red
    color["mimalloc-3.4.3"] = 1452398  # 0x16296E dark blue
    color["mimalloc-2.4.1"] = 7057110  # 0x6BAED6 light blue
    color["snmalloc"] = 9725885     # 0x9467BD purple
    color["rpmalloc"] = 9197131     # 0x8C564B brown
    # anything else: 0x17BECF teal (below)

    csv = out "/results.csv"; md = out "/table.md"; mem = out "/memory.md"
    goals = out "/goals.md"
    dat = out "/chart.dat"; titles = out "/chart.titles"
    print "bench,threads,args,allocator,runs,ok_runs,ops_per_sec_median,ops_per_sec_min,ops_per_sec_max,ops_vs_hakmem,peak_rss_kb_median,peak_rss_kb_min,peak_rss_kb_max,rss_vs_hakmem,rss_free_all_kb_median,rss_free_all_vs_hakmem" > csv
    print "| benchmark (arguments) | threads | allocator | M ops/s median | min | max | vs hakmem | peak RSS MiB median | min | max | vs hakmem | RSS after free-all MiB | vs hakmem |" > md
    print "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|" > md
    printf "" > dat; printf "" > titles
    nmem = 0

    for (ci = 1; ci <= ncase; ci++) {
        c = order[ci]
        # hakmem's medians first: the base of the ratios
        base_ops = 0; base_rss = 0; base_fa = 0
        k = c SUBSEP "hakmem"
        if ((n = collect(k, 8, v)) > 0) { stats(v, n, s); base_ops = s["med"] }
        if ((n = collect(k, 9, v)) > 0) { stats(v, n, s); base_rss = s["med"] }
        if ((n = collect(k, 14, v)) > 0) { stats(v, n, s); base_fa = s["med"] }
        # the leanest peer on peak RSS and on RSS after free-all (hakmem's own
        # variants, such as hakmem-secure, are not peers)
        lean = ""; lean_rss = 0; low = ""; low_fa = 0

        if (ci > 1) printf "\n\n" > dat
        any_ok = 0
        for (ai = 1; ai <= nal; ai++)
            if (nok[c, AL[ai]] > 0) any_ok = 1
        # the unit of the throughput panel, from the largest median
        top = 0
        for (ai = 1; ai <= nal; ai++)
            if ((n = collect(c SUBSEP AL[ai], 8, v)) > 0) { stats(v, n, s); if (s["med"] > top) top = s["med"] }
        if (top >= 1e6 || top == 0) { factor = 1; unit = "M ops/s" }
        else if (top >= 1e4) { factor = 1000; unit = "K ops/s" }
        else { factor = 1000000; unit = "ops/s" }
        printf "%d|%s %s, %d thread%s|%d|%s\n", any_ok, bench[c], args[c], threads[c],
            (threads[c] == 1 ? "" : "s"), factor, unit > titles

        for (ai = 1; ai <= nal; ai++) {
            a = AL[ai]; k = c SUBSEP a
            om = oi = ox = rm = ri = rx = fa = ""
            if ((n = collect(k, 8, v)) > 0) { stats(v, n, s); om = s["med"]; oi = s["min"]; ox = s["max"] }
            if ((n = collect(k, 9, v)) > 0) { stats(v, n, s); rm = s["med"]; ri = s["min"]; rx = s["max"] }
            if ((n = collect(k, 14, v)) > 0) { stats(v, n, s); fa = s["med"] }
            ok = nok[k] + 0
            if (a !~ /^hakmem/ && rm != "" && (lean == "" || rm < lean_rss)) { lean = a; lean_rss = rm }
            if (a !~ /^hakmem/ && fa != "" && (low == "" || fa < low_fa)) { low = a; low_fa = fa }
            printf "%s,%s,%s,%s,%d,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", bench[c], threads[c], args[c], a,
                nruns[k], ok, om, oi, ox, ratio(om, base_ops), rm, ri, rx, ratio(rm, base_rss),
                fa, (fa == "" ? "" : ratio(fa, base_fa)) > csv
            if (ok > 0)
                printf "| %s `%s` | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", bench[c], args[c], threads[c], a,
                    mops(om), mops(oi), mops(ox), ratio(om, base_ops),
                    mib(rm), mib(ri), mib(rx), ratio(rm, base_rss),
                    (fa == "" ? "" : mib(fa)), (fa == "" ? "" : ratio(fa, base_fa)) > md
            else
                printf "| %s `%s` | %s | %s | failed | | | | | | | | | |\n", bench[c], args[c], threads[c], a > md
            if (ok > 0)
                printf "%d %s %.7g %.7g %.7g %.2f %.2f %.2f %d\n", ai - 1, a,
                    om / 1e6, oi / 1e6, ox / 1e6, rm / 1024, ri / 1024, rx / 1024, rgb(a) > dat
            else
                printf "%d %s NaN NaN NaN NaN NaN NaN %d\n", ai - 1, a, rgb(a) > dat

            # bench_memory's phases
            if (bench[c] == "bench_memory" && ok > 0) {
                if (nmem++ == 0) {
                    print "| size MiB | allocator | after grow | after free-most | after regrow | after free-all | peak |" > mem
                    print "|--:|---|--:|--:|--:|--:|--:|" > mem
                }
                split(args[c], arg, " ")
                line = "| " arg[1] " | " a
                for (col = 11; col <= 14; col++) {
                    n = collect(k, col, v)
                    if (n > 0) { stats(v, n, s); line = line " | " mib(s["med"]) }
                    else line = line " | n/a"
                }
                print line " | " mib(rm) " |" > mem
            }
        }

        # issue 4's goals: peak RSS at most the leanest peer's, RSS after
        # free-all at most every peer's
        if (base_rss > 0 && lean != "") {
            line = "| " bench[c] " `" args[c] "` | " threads[c] " | " mib(base_rss) " | " lean " | " mib(lean_rss) \
                " | " sprintf("%.2f", base_rss / lean_rss) " | " (base_rss <= lean_rss ? "met" : "**not met**")
            if (base_fa > 0 && low != "")
                line = line " | " mib(base_fa) " | " low " | " mib(low_fa) " | " sprintf("%.2f", base_fa / low_fa) \
                    " | " (base_fa <= low_fa ? "met" : "**not met**") " |"
            else
                line = line " | | | | | |"
            goal_rows = goal_rows line "\n"
            ngoals++
        }
    }
    if (nmem == 0) printf "" > mem
    if (ngoals > 0) {
        print "| benchmark (arguments) | threads | hakmem peak RSS MiB | leanest peer | its peak RSS MiB | hakmem / peer | peak goal | hakmem RSS after free-all MiB | lowest peer | its RSS after free-all MiB | hakmem / peer | free-all goal |" > goals
        print "|---|--:|--:|---|--:|--:|---|--:|---|--:|--:|---|" > goals
        printf "%s", goal_rows > goals
    } else
        printf "" > goals
    close(csv); close(md); close(mem); close(dat); close(titles); close(goals)
}
