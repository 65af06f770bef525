#!/usr/bin/env bash
# bench-memory-chart.sh: draws DIR/rss-over-time.png, the RSS over time of
# every allocator on one chart, from DIR/rss-chart.list (written by
# scripts/bench-memory-summary.awk) with gnuplot.
#
#   scripts/bench-memory-chart.sh DIR TITLE RUNS
#
# One line per allocator: the sampled RSS (MiB) against seconds since the
# start of its run whose RSS-time integral is the median of RUNS runs. The
# hakmem policies are red (adaptive solid and thick, eager dashed, lazy
# dotted); the peers keep the colours of scripts/bench-chart.sh. Called by
# scripts/bench-memory.sh.
set -euo pipefail

dir=$1 title=$2 runs=$3
list=$dir/rss-chart.list
[ -s "$list" ] || { echo "bench-memory-chart.sh: no data in $list" >&2; exit 1; }

# allocator -> gnuplot line style
style() {
    case "$1" in
        hakmem-adaptive) echo "lc rgb '#D62728' lw 2.5 dt 1" ;;
        hakmem-eager) echo "lc rgb '#8C1A1B' lw 1.5 dt (8,4)" ;;
        hakmem-lazy) echo "lc rgb '#F28E8E' lw 1.8 dt (2,3)" ;;
        glibc) echo "lc rgb '#7F7F7F' lw 1.5 dt 1" ;;
        mimalloc) echo "lc rgb '#1F77B4' lw 1.5 dt 1" ;;
        jemalloc) echo "lc rgb '#2CA02C' lw 1.5 dt 1" ;;
        tcmalloc) echo "lc rgb '#FF7F0E' lw 1.5 dt 1" ;;
        mimalloc-3.4.3) echo "lc rgb '#16296E' lw 1.5 dt (6,3)" ;;
        mimalloc-2.4.1) echo "lc rgb '#6BAED6' lw 1.5 dt (3,3)" ;;
        snmalloc) echo "lc rgb '#9467BD' lw 1.5 dt 1" ;;
        rpmalloc) echo "lc rgb '#8C564B' lw 1.5 dt 1" ;;
        *) echo "lc rgb '#17BECF' lw 1.5 dt 1" ;;
    esac
}

script=$dir/rss-over-time.gp
{
    echo "set terminal pngcairo noenhanced size 1100,620 font 'sans,10'"
    echo "set output '$dir/rss-over-time.png'"
    echo "set title \"$title: RSS over time (per allocator its run with the median RSS x time of $runs)\" font 'sans,11'"
    echo "set xlabel 'seconds since start'"
    echo "set ylabel 'RSS, MiB'"
    echo "set grid"
    echo "set key outside right top vertical"
    echo "set yrange [0:*]"
    echo "set xrange [0:*]"
    printf 'plot '
    first=1
    while IFS='|' read -r alloc series integral; do
        [ -s "$series" ] || continue
        [ "$first" = 1 ] || printf ', \\\n     '
        first=0
        printf "'%s' using 1:(\$2/1024) with lines %s title '%s (%.0f MiB*s)'" \
            "$series" "$(style "$alloc")" "$alloc" "$integral"
    done <"$list"
    echo
} >"$script"

gnuplot "$script"
