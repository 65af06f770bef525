#!/usr/bin/env bash
# bench-chart.sh: draws DIR/results.png from DIR/chart.dat and DIR/chart.titles
# (written by scripts/bench-summary.awk) with gnuplot.
#
#   scripts/bench-chart.sh DIR RUNS ALLOCATOR...
#
# One row per benchmark case: throughput on the left (M ops/s, or K ops/s or
# ops/s where the figures are small: the unit chart.titles gives), peak RSS
# (MiB) on the right; one bar per allocator at its median, with a line from
# min to max. The allocators' names stand under their bars at 45 degrees, so
# ten or more of them stay readable side by side. Called by scripts/bench.sh.
set -euo pipefail

dir=$1 runs=$2
shift 2
nalloc=$#
ncase=$(wc -l <"$dir/chart.titles")
[ "$ncase" -gt 0 ] || { echo "bench-chart.sh: no data" >&2; exit 1; }

# per row: the plot, and below it the slanted names (as long as "mimalloc-3.4.3")
height=$((ncase * 330 + 60))
script=$dir/chart.gp
{
    echo "set terminal pngcairo noenhanced size 1200,$height font 'sans,9'"
    echo "set output '$dir/results.png'"
    echo "set multiplot layout $ncase,2 title 'allocator comparison: median of $runs run$( [ "$runs" = 1 ] || echo s) (bars), min to max (lines)' font 'sans,11'"
    echo "unset key"
    echo "set style fill solid 0.85 border rgb 'black'"
    echo "set boxwidth 0.7"
    echo "set grid ytics"
    echo "set xrange [-0.6:$nalloc - 0.4]"
    echo "set yrange [0:*]"
    echo "set xtics nomirror scale 0 rotate by 45 right"
    i=0
    while IFS='|' read -r ok title factor unit; do
        : "${factor:=1}" "${unit:=M ops/s}"
        for metric in throughput rss; do
            if [ "$metric" = throughput ]; then
                cols=(3 4 5) label="throughput, $unit (higher is better)" f=$factor
            else
                cols=(6 7 8) label="peak RSS, MiB (lower is better)" f=1
            fi
            printf 'set title "%s\\n%s"\n' "$title" "$label"   # gnuplot reads \n
            if [ "$ok" = 1 ]; then
                echo "plot '$dir/chart.dat' index $i using 1:(\$${cols[0]}*$f):9:xtic(2) with boxes lc rgb variable, \\"
                echo "     '' index $i using 1:(\$${cols[1]}*$f):(0):((\$${cols[2]}-\$${cols[1]})*$f) with vectors nohead lc rgb 'black' lw 1.5"
            else
                # gnuplot refuses a plot with no defined point: draw an empty frame
                echo "set label 1 'no successful run' at graph 0.5, 0.5 center"
                echo "plot [] [0:1] 2 notitle"
                echo "unset label 1"
            fi
        done
        i=$((i + 1))
    done <"$dir/chart.titles"
    echo "unset multiplot"
} >"$script"

gnuplot "$script"
