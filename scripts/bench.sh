#!/usr/bin/env bash
# bench.sh: runs every benchmark under every allocator present and compares.
#
#   scripts/bench.sh [--quick | --full] [--runs N] [--only BENCH,...]
#                    [--allocators NAME,...] [--peers-dir DIR] [--threads LIST]
#                    [--bin DIR] [--out DIR] [--timeout SEC] [--no-install]
#
# Allocators: hakmem (the NAME_hakmem binaries), hakmem-secure (the secure
# build, preloaded), glibc (NAME_system), mimalloc, jemalloc, tcmalloc
# (Debian packages, preloaded into NAME_system) and mimalloc-3.4.3,
# mimalloc-2.4.1, snmalloc, rpmalloc (the libraries of the peers folder DIR,
# default ../shared/peers from the repository root; '' leaves them out).
# Missing peers are skipped with a note saying how to install them, and the
# report says which peers were present and which missing.
# --threads LIST (such as 1,2,4,8 or "1 2 4 8"; default 1,2,4) sets the
# thread counts of the multi-threaded benchmarks in full mode.
# Each benchmark case runs N times per allocator, interleaved (A B C D E,
# A B C D E, ...) so noise hits every allocator alike; each run goes through
# bench_runstat, which records the peak RSS from wait4.
#
# Writes to the output directory (default out/bench):
#   runs.csv     one row per run
#   results.csv  median/min/max of throughput and peak RSS, ratios to hakmem,
#                and the RSS after free-all where the benchmark reports it
#   results.md   the tables, issue 4's memory goals, the machine, the
#                commands (for the README)
#   results.png  chart drawn by gnuplot (installs gnuplot-nox if missing)
# and prints the Markdown table on stdout (progress goes to stderr).
# Driven by `make bench` (--quick) and `make bench-full` (--full); see
# docs/BENCHMARKS.md.
set -euo pipefail

cd "$(dirname "$0")/.."

MODE=quick
RUNS=""
ONLY=""
WANT_ALLOCS=""
PEERS=../shared/peers
THREAD_LIST=""
BIN=out/release
OUT=out/bench
TIMEOUT=""
INSTALL=1

usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) MODE=quick ;;
        --full) MODE=full ;;
        --runs) RUNS=${2:?}; shift ;;
        --only) ONLY=${2:?}; shift ;;
        --allocators) WANT_ALLOCS=${2:?}; shift ;;
        --peers-dir) PEERS=${2?}; shift ;;
        --threads) THREAD_LIST=${2:?}; shift ;;
        --bin) BIN=${2:?}; shift ;;
        --out) OUT=${2:?}; shift ;;
        --timeout) TIMEOUT=${2:?}; shift ;;
        --no-install) INSTALL=0 ;;
        -h|--help) usage ;;
        *) echo "bench.sh: unknown argument '$1'" >&2; usage ;;
    esac
    shift
done

# ---- benchmark cases --------------------------------------------------------
# One line per case: BENCH|THREADS|ARGS. THREADS is what the table shows
# (bench_xthread's argument is pairs: 1 pair = 2 threads).
# Thread counts of full mode's multi-threaded cases: --threads, comma- or
# space-separated, each 1..1024, duplicates dropped.
TLIST=""
for t in ${THREAD_LIST//,/ }; do
    case "$t" in
        ''|*[!0-9]*) echo "bench.sh: --threads takes thread counts such as 1,2,4, not '$THREAD_LIST'" >&2; exit 2 ;;
    esac
    t=$((10#$t))
    if [ "$t" -lt 1 ] || [ "$t" -gt 1024 ]; then
        echo "bench.sh: --threads: $t is out of range [1, 1024]" >&2; exit 2
    fi
    [[ " $TLIST " == *" $t "* ]] || TLIST="${TLIST:+$TLIST }$t"
done
if [ -n "$THREAD_LIST" ] && [ -z "$TLIST" ]; then
    echo "bench.sh: --threads '$THREAD_LIST' names no thread count" >&2; exit 2
fi
: "${TLIST:=1 2 4}"

CASES=""
add_case() { CASES="${CASES:+$CASES
}$1"; }
if [ "$MODE" = quick ]; then
    : "${RUNS:=3}" "${TIMEOUT:=60}"
    [ -z "$THREAD_LIST" ] || echo "bench.sh: note: --threads applies to --full only; the quick cases keep their thread counts" >&2
    add_case "larson|4|1 8 128 1024 1 12345 4"
    add_case "bench_random_mixed|1|20000000 8192 42"
    add_case "bench_mid_large_mt|2|2 1000000 256 42"
    add_case "bench_xthread|2|1 1000000 42"
    add_case "bench_memory|1|128 42"
    add_case "bench_thread_churn|2|2 800 300 42"
    add_case "bench_large_churn|1|1 1s 20 5120 25600 42"
    add_case "bench_large_churn|2|2 1s 64 64 1024 42"
else
    : "${RUNS:=5}" "${TIMEOUT:=900}"
    for t in $TLIST; do add_case "larson|$t|10 8 128 1024 1 12345 $t"; done
    add_case "larson|42|1 5 1 1000 100 10000 42"
    add_case "bench_random_mixed|1|2000000 8192 42"
    add_case "bench_random_mixed|1|100000000 8192 42"
    for t in $TLIST; do add_case "bench_mid_large_mt|$t|$t 4000000 256 42"; done
    # bench_xthread runs pairs: T threads are T/2 pairs (at least one)
    pairs=""
    for t in $TLIST; do
        p=$((t / 2)); [ "$p" -ge 1 ] || p=1
        [[ " $pairs " == *" $p "* ]] || pairs="$pairs $p"
    done
    for p in $pairs; do add_case "bench_xthread|$((2 * p))|$p 4000000 42"; done
    add_case "bench_memory|1|1024 42"
    for t in $TLIST; do add_case "bench_thread_churn|$t|$t 3000 300 42"; done
    for t in $TLIST; do add_case "bench_large_churn|$t|$t 4s 20 5120 25600 42"; done
    for t in $TLIST; do add_case "bench_large_churn|$t|$t 3s 64 64 1024 42"; done
fi
for v in "$RUNS" "$TIMEOUT"; do
    case "$v" in ''|*[!0-9]*|0) echo "bench.sh: --runs and --timeout take a positive integer, not '$v'" >&2; exit 2 ;; esac
done

if [ -n "$ONLY" ]; then
    CASES=$(printf '%s\n' "$CASES" | awk -F'|' -v only=",$ONLY," 'index(only, "," $1 ",")')
    [ -n "$CASES" ] || { echo "bench.sh: --only '$ONLY' matches no benchmark" >&2; exit 2; }
fi
BENCHES=$(printf '%s\n' "$CASES" | cut -d'|' -f1 | awk '!seen[$0]++')

# ---- allocators -------------------------------------------------------------
. scripts/bench-lib.sh

RUNSTAT=$BIN/bench_runstat
for b in $BENCHES; do
    if [ ! -x "$RUNSTAT" ] || [ ! -x "$BIN/${b}_system" ]; then
        echo "bench.sh: benchmarks not built in $BIN; run 'make benches' first" >&2
        exit 1
    fi
done

find_allocators "$BIN" "$BENCHES" "$WANT_ALLOCS" "$PEERS"
[ ${#ALLOCS[@]} -gt 0 ] || { echo "bench.sh: no allocator selected" >&2; exit 2; }
echo "bench.sh: $MODE mode, $RUNS run$( [ "$RUNS" = 1 ] || echo s) of each case, allocators: ${ALLOCS[*]}" >&2
[ "$MODE" = quick ] || echo "bench.sh: thread counts of the multi-threaded cases: $TLIST" >&2
report_missing

# ---- running ------------------------------------------------------------------
mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

RUNS_CSV=$OUT/runs.csv
echo "case,bench,threads,args,allocator,run,status,ops_per_sec,peak_rss_kb,wall_sec,rss_grow_kb,rss_free_most_kb,rss_regrow_kb,rss_free_all_kb" >"$RUNS_CSV"

ncases=$(printf '%s\n' "$CASES" | wc -l)
total=$((ncases * RUNS * ${#ALLOCS[@]}))
step=0
failures=0
start=$(date +%s)

case_id=0
while IFS='|' read -r bench threads args; do
    for run in $(seq 1 "$RUNS"); do
        for alloc in "${ALLOCS[@]}"; do
            step=$((step + 1))
            bin=$BIN/${bench}_${SUFFIX[$alloc]}
            pre=()
            [ -z "${PRELOAD[$alloc]}" ] || pre=(-p "${PRELOAD[$alloc]}")
            rm -f "$TMP/stat"
            set +e
            # shellcheck disable=SC2086  # args are separate words on purpose
            "$RUNSTAT" -t "$TIMEOUT" -o "$TMP/stat" "${pre[@]+"${pre[@]}"}" -- \
                "$bin" $args >"$TMP/out" 2>"$TMP/err" </dev/null
            rc=$?
            set -e
            read_kv "$TMP/out" "$TMP/stat"
            err=$(<"$TMP/err")
            status=ok
            if [ "$rc" -ne 0 ] || [ -z "${KV[ops_per_sec]-}" ] || [ -z "${KV[maxrss_kb]-}" ]; then
                status="fail($rc)"
                [ "${KV[timed_out]-}" != 1 ] || status=timeout
            elif [[ $err == *"cannot be preloaded"* ]]; then
                status=nopreload   # ld.so ignored the peer: the run was glibc's
            fi
            if [ "$status" = ok ]; then
                ops=${KV[ops_per_sec]-} rss=${KV[maxrss_kb]-}
                m=$((ops / 10000)) r=$((rss * 10 / 1024))
                if [ "$ops" -ge 100000 ]; then
                    shown=$(printf '%d.%02d M ops/s' $((m / 100)) $((m % 100)))
                else   # bench_large_churn: a few hundred replacements/s
                    shown="$ops ops/s"
                fi
                shown="$shown$(printf ', peak RSS %d.%d MiB' $((r / 10)) $((r % 10)))"
            else
                ops="" rss="" shown=$status
                failures=$((failures + 1))
                {
                    echo "  FAILED: $alloc: $bin $args ($status); stderr:"
                    tail -n5 "$TMP/err" | sed 's/^/    /'
                } >&2
            fi
            echo "$case_id,$bench,$threads,$args,$alloc,$run,$status,$ops,$rss,${KV[wall_sec]-},${KV[rss_grow_kb]-},${KV[rss_free_most_kb]-},${KV[rss_regrow_kb]-},${KV[rss_free_all_kb]-}" >>"$RUNS_CSV"
            printf '[%3d/%d] %-18s %3s thr  %-8s run %d/%d: %s\n' "$step" "$total" \
                "$bench" "$threads" "$alloc" "$run" "$RUNS" "$shown" >&2
        done
    done
    case_id=$((case_id + 1))
done <<<"$CASES"
elapsed=$(( $(date +%s) - start ))

# ---- summary and chart --------------------------------------------------------
awk -F, -v allocs="${ALLOCS[*]}" -v out="$OUT" -f scripts/bench-summary.awk "$RUNS_CSV"

# gnuplot draws the chart; installed on the spot if missing (as the issue asks).
rm -f "$OUT/results.png"
if ensure_gnuplot "$INSTALL" "$TMP/apt.log"; then
    bash scripts/bench-chart.sh "$OUT" "$RUNS" "${ALLOCS[@]}" ||
        { echo "bench.sh: gnuplot failed, no chart" >&2; rm -f "$OUT/results.png"; }
else
    echo "bench.sh: gnuplot unavailable, no chart (sudo apt-get install gnuplot-nox)" >&2
fi

describe_alloc() {
    case "$1" in
        hakmem) echo "hakmem $(allocator_version hakmem) (linked: NAME_hakmem)" ;;
        glibc) echo "glibc $(allocator_version glibc) (NAME_system)" ;;
        *) echo "$1 $(allocator_version "$1") (NAME_system, LD_PRELOAD=${PRELOAD[$1]})" ;;
    esac
}
if [ "$MODE" = quick ]; then MAKE_CMD="make bench"; else MAKE_CMD="make bench-full"; fi

{
    echo "### Benchmark results"
    echo
    echo "$MODE mode: \`$MAKE_CMD\` (scripts/bench.sh --$MODE), $RUNS run$( [ "$RUNS" = 1 ] || echo s) of"
    echo "each benchmark under each allocator, interleaved; $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo
    echo "Machine: $(machine_description)."
    echo
    echo "Allocators:"
    for a in "${ALLOCS[@]}"; do echo "- $(describe_alloc "$a")"; done
    echo
    peers_summary
    echo
    if [ "$MODE" = full ]; then
        echo "Thread counts of the multi-threaded benchmarks: ${TLIST// /, } (\`--threads\`, \`make bench-full BENCH_THREADS=...\`)."
        echo
    fi
    cat "$OUT/table.md"
    echo
    echo "Throughput is operations (mallocs + frees) per second, as each benchmark"
    echo "reports it, except bench_large_churn's: replacements (free, malloc and"
    echo "memset of a large block) per second, hence the small figures: higher is"
    echo "better. Peak RSS is the process's maximum resident set size (wait4"
    echo "rusage): lower is better. Each cell is the median of the runs, with min"
    echo "and max beside it; \"vs hakmem\" divides an allocator's median by"
    echo "hakmem's (above 1: more throughput, or more memory, than hakmem)."
    echo "RSS after free-all is shown where the benchmark reports it (bench_memory:"
    echo "read by the program right after its last free, median of the runs)."
    if [ -s "$OUT/goals.md" ]; then
        echo
        echo "Memory goals of issue 4, per benchmark: hakmem's peak RSS at most that of"
        echo "the leanest peer, and its RSS after free-all at most that of any peer"
        echo "(medians; the peers are the other allocators in the table, not hakmem-secure):"
        echo
        cat "$OUT/goals.md"
    fi
    if [ -s "$OUT/memory.md" ]; then
        echo
        echo "bench_memory, resident set size after each phase (median, MiB):"
        echo
        cat "$OUT/memory.md"
    fi
    echo
    echo "Commands (in out/release; glibc and the peers run NAME_system instead):"
    echo
    printf '%s\n' "$CASES" | awk -F'|' '{ printf "- `%s_hakmem %s`\n", $1, $3 }'
    if [ -f "$OUT/results.png" ]; then
        echo
        echo "![throughput and peak RSS per benchmark and allocator](results.png)"
    fi
} >"$OUT/results.md"

cat "$OUT/table.md"
if [ -s "$OUT/memory.md" ]; then echo; cat "$OUT/memory.md"; fi
if [ -s "$OUT/goals.md" ]; then echo; cat "$OUT/goals.md"; fi
{
    echo
    echo "bench.sh: $total runs in ${elapsed}s, $failures failed; wrote $OUT/results.md, $OUT/results.csv, $OUT/runs.csv$( [ -f "$OUT/results.png" ] && echo ", $OUT/results.png")"
} >&2
[ "$failures" -eq 0 ]
