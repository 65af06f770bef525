#!/usr/bin/env bash
# update-readme.sh: puts the latest benchmark results into README.md.
#
#   scripts/update-readme.sh [RESULTS_MD [README]]
#
# Two sections of README (default README.md), each between a pair of marker
# lines that are kept:
#   <!-- bench:begin --> ... <!-- bench:end -->    RESULTS_MD (default
#       out/bench/results.md, written by `make bench-full` or `make bench`);
#       its chart results.png is copied to docs/bench-results.png
#   <!-- memory:begin --> ... <!-- memory:end -->  memory-policy.md from the
#       same directory (written by `make bench-full` or `make bench-memory`);
#       its chart rss-over-time.png is copied to docs/bench-rss-over-time.png
#   <!-- instr:begin --> ... <!-- instr:end -->    instr.md from the same
#       directory (written by `make bench-instr`)
# and the chart links are rewritten to point into docs/. So the README's
# numbers always come from a run, never from typing. A section whose file is
# missing is left as it is (with a note); if README has no memory markers
# yet, they are appended at its end.
set -euo pipefail

cd "$(dirname "$0")/.."

results=${1:-out/bench/results.md}
readme=${2:-README.md}
memory=$(dirname "$results")/memory-policy.md

[ -f "$readme" ] || { echo "update-readme.sh: $readme not found" >&2; exit 1; }
if [ ! -f "$results" ] && [ ! -f "$memory" ]; then
    echo "update-readme.sh: neither $results nor $memory found (run make bench-full)" >&2
    exit 1
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# markers_ok BEGIN END: README has exactly one BEGIN line, later one END line.
markers_ok() {
    local nb ne
    nb=$(grep -cxF "$1" "$readme" || true)
    ne=$(grep -cxF "$2" "$readme" || true)
    [ "$nb" = 1 ] && [ "$ne" = 1 ] &&
        [ "$(grep -nxF "$1" "$readme" | cut -d: -f1)" -lt "$(grep -nxF "$2" "$readme" | cut -d: -f1)" ]
}

# section BEGIN END SOURCE CHART DEST: replaces the lines between the markers
# with SOURCE; a line linking to CHART (the file name, beside SOURCE) is
# rewritten to link to DEST, where the chart is copied; without the chart
# the line is dropped.
section() {
    local begin=$1 end=$2 src=$3 chart=$4 dest=$5 chart_src link_to=""
    chart_src=$(dirname "$src")/$chart
    if ! markers_ok "$begin" "$end"; then
        echo "update-readme.sh: $readme needs exactly one '$begin' line followed by one '$end' line" >&2
        exit 1
    fi
    if grep -q '^quick mode' "$src"; then
        echo "update-readme.sh: note: $src is from a quick run; the README is meant for a full run (make bench-full)" >&2
    fi
    [ -f "$chart_src" ] && link_to=$dest
    awk -v begin="$begin" -v end="$end" -v src="$src" -v chart="$chart" -v link_to="$link_to" '
        $0 == begin {
            print
            pat = "](" chart ")"
            while ((getline line < src) > 0) {
                if ((i = index(line, pat)) > 0) {
                    if (link_to == "") continue
                    line = substr(line, 1, i - 1) "](" link_to ")" substr(line, i + length(pat))
                }
                print line
            }
            close(src)
            skipping = 1
            next
        }
        $0 == end { skipping = 0 }
        !skipping
    ' "$readme" >"$tmp"
    if [ -n "$link_to" ]; then
        mkdir -p "$(dirname "$dest")"
        cp "$chart_src" "$dest"
    fi
    cat "$tmp" >"$readme"
    echo "update-readme.sh: $readme: section $begin from $src${link_to:+ (chart: $dest)}" >&2
}

if [ -f "$results" ]; then
    section '<!-- bench:begin -->' '<!-- bench:end -->' "$results" results.png docs/bench-results.png
else
    echo "update-readme.sh: note: $results not found; the bench section is left as it is" >&2
fi

if [ -f "$memory" ]; then
    mb='<!-- memory:begin -->' me='<!-- memory:end -->'
    if ! grep -qxF "$mb" "$readme" && ! grep -qxF "$me" "$readme"; then
        printf '\n%s\n%s\n' "$mb" "$me" >>"$readme"
        echo "update-readme.sh: appended the markers $mb / $me to $readme" >&2
    fi
    section "$mb" "$me" "$memory" rss-over-time.png docs/bench-rss-over-time.png
else
    echo "update-readme.sh: note: $memory not found (make bench-memory); the memory section is left as it is" >&2
fi

instr=$(dirname "$results")/instr.md
if [ -f "$instr" ] && markers_ok '<!-- instr:begin -->' '<!-- instr:end -->'; then
    section '<!-- instr:begin -->' '<!-- instr:end -->' "$instr" none.png docs/none.png
else
    echo "update-readme.sh: note: $instr or the instr markers missing; that section is left as it is" >&2
fi
