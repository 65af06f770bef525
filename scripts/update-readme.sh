#!/usr/bin/env bash
# update-readme.sh: puts the latest benchmark results into README.md.
#
#   scripts/update-readme.sh [RESULTS_MD [README]]
#
# Replaces everything between the lines <!-- bench:begin --> and
# <!-- bench:end --> of README (default README.md) with RESULTS_MD (default
# out/bench/results.md, written by `make bench-full` or `make bench`), so the
# README's numbers always come from a run, never from typing. The chart
# results.png next to RESULTS_MD is copied to docs/bench-results.png and the
# link rewritten to point there. The marker lines themselves are kept.
set -euo pipefail

cd "$(dirname "$0")/.."

results=${1:-out/bench/results.md}
readme=${2:-README.md}
begin='<!-- bench:begin -->'
end='<!-- bench:end -->'
chart_src=$(dirname "$results")/results.png
chart_dst=docs/bench-results.png

[ -f "$results" ] || { echo "update-readme.sh: $results not found (run make bench-full)" >&2; exit 1; }
[ -f "$readme" ] || { echo "update-readme.sh: $readme not found" >&2; exit 1; }
nb=$(grep -cxF "$begin" "$readme" || true)
ne=$(grep -cxF "$end" "$readme" || true)
if [ "$nb" != 1 ] || [ "$ne" != 1 ] ||
   [ "$(grep -nxF "$begin" "$readme" | cut -d: -f1)" -gt "$(grep -nxF "$end" "$readme" | cut -d: -f1)" ]; then
    echo "update-readme.sh: $readme needs exactly one '$begin' line followed by one '$end' line" >&2
    exit 1
fi
if grep -q '^quick mode' "$results"; then
    echo "update-readme.sh: note: $results is from a quick run; the README is meant for a full run (make bench-full)" >&2
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# The chart link is rewritten only if the chart exists to be copied.
link_to=""
[ -f "$chart_src" ] && link_to=$chart_dst
awk -v begin="$begin" -v end="$end" -v results="$results" -v link_to="$link_to" '
    $0 == begin {
        print
        while ((getline line < results) > 0) {
            if (line ~ /\]\(results\.png\)/) {
                if (link_to == "") continue
                sub(/\]\(results\.png\)/, "](" link_to ")", line)
            }
            print line
        }
        close(results)
        skipping = 1
        next
    }
    $0 == end { skipping = 0 }
    !skipping
' "$readme" >"$tmp"

if [ -n "$link_to" ]; then
    mkdir -p "$(dirname "$chart_dst")"
    cp "$chart_src" "$chart_dst"
fi
cat "$tmp" >"$readme"
echo "update-readme.sh: $readme updated from $results${link_to:+ (chart: $chart_dst)}" >&2
