#!/usr/bin/env bash
# bench-memory.sh: hakmem's free policies and the peers on the phased memory
# benchmark, with the RSS sampled over time.
#
#   scripts/bench-memory.sh [--quick | --full] [--runs N] [--size MB]
#                           [--pause MS] [--interval MS] [--allocators NAME,...]
#                           [--peers-dir DIR] [--bin DIR] [--out DIR]
#                           [--timeout SEC] [--no-install]
#
# Runs `bench_memory SIZE 42 PAUSE` (grow, free-most, lull, regrow, free-all,
# lull) under hakmem with HAKMEM_FREE_POLICY=adaptive, eager and lazy
# (allocators hakmem-adaptive, hakmem-eager, hakmem-lazy; "hakmem" in
# --allocators means all three) and under glibc, mimalloc, jemalloc,
# tcmalloc and the peers of the folder DIR (default ../shared/peers:
# mimalloc-3.4.3, mimalloc-2.4.1, snmalloc, rpmalloc; '' leaves them out),
# preloaded into bench_memory_system, found as scripts/bench.sh finds them. Runs are interleaved, N of each. bench_runstat samples each
# run's RSS every INTERVAL ms into out/bench/rss/bench_memory-ALLOC-RUN.tsv
# and reports the RSS-over-time integral and the time-weighted mean RSS.
#
# Quick mode (make bench-memory): 3 runs, 128 MiB, lulls of 2000 ms.
# Full mode (part of make bench-full): 5 runs, 512 MiB, lulls of 3000 ms.
#
# Writes to the output directory (default out/bench):
#   memory-policy-runs.csv  one row per run
#   memory-policy.csv       median/min/max per allocator, ratios to hakmem-adaptive
#   memory-policy.md        the table, the machine, the command (for the README)
#   rss-over-time.png       RSS over time, one line per allocator (gnuplot)
#   rss/                    the series of every run
# and prints the table on stdout (progress goes to stderr). See
# docs/BENCHMARKS.md.
set -euo pipefail

cd "$(dirname "$0")/.."

MODE=quick
RUNS="" SIZE="" PAUSE="" INTERVAL=10 TIMEOUT=""
WANT=""
PEERS=../shared/peers
BIN=out/release
OUT=out/bench
INSTALL=1
SEED=42
BASE=hakmem-adaptive

usage() {
    sed -n '5,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) MODE=quick ;;
        --full) MODE=full ;;
        --runs) RUNS=${2:?}; shift ;;
        --size) SIZE=${2:?}; shift ;;
        --pause) PAUSE=${2:?}; shift ;;
        --interval) INTERVAL=${2:?}; shift ;;
        --allocators) WANT=${2:?}; shift ;;
        --peers-dir) PEERS=${2?}; shift ;;
        --bin) BIN=${2:?}; shift ;;
        --out) OUT=${2:?}; shift ;;
        --timeout) TIMEOUT=${2:?}; shift ;;
        --no-install) INSTALL=0 ;;
        -h|--help) usage ;;
        *) echo "bench-memory.sh: unknown argument '$1'" >&2; usage ;;
    esac
    shift
done

if [ "$MODE" = quick ]; then
    : "${RUNS:=3}" "${SIZE:=128}" "${PAUSE:=2000}" "${TIMEOUT:=120}"
else
    : "${RUNS:=5}" "${SIZE:=512}" "${PAUSE:=3000}" "${TIMEOUT:=900}"
fi
for v in "$RUNS" "$SIZE" "$INTERVAL" "$TIMEOUT"; do
    case "$v" in ''|*[!0-9]*|0) echo "bench-memory.sh: --runs, --size, --interval and --timeout take a positive integer, not '$v'" >&2; exit 2 ;; esac
done
case "$PAUSE" in ''|*[!0-9]*) echo "bench-memory.sh: --pause takes an integer >= 0, not '$PAUSE'" >&2; exit 2 ;; esac
ARGS="$SIZE $SEED $PAUSE"

# ---- allocators -------------------------------------------------------------
. scripts/bench-lib.sh

RUNSTAT=$BIN/bench_runstat
if [ ! -x "$RUNSTAT" ] || [ ! -x "$BIN/bench_memory_system" ]; then
    echo "bench-memory.sh: benchmarks not built in $BIN; run 'make benches' first" >&2
    exit 1
fi

# --allocators names the policies separately; find_allocators knows "hakmem".
base_want=""
if [ -n "$WANT" ]; then
    base_want=$(printf '%s\n' "$WANT" | tr ',' '\n' | sed 's/^hakmem-.*/hakmem/' | paste -sd, -)
fi
find_allocators "$BIN" bench_memory "$base_want" "$PEERS"
MALLOCS=()
declare -A POLICY=()
for a in "${ALLOCS[@]}"; do
    [ "$a" != hakmem-secure ] || continue   # the policies are the point here
    if [ "$a" = hakmem ]; then
        for p in adaptive eager lazy; do
            if [ -z "$WANT" ] || [[ ",$WANT," == *",hakmem,"* ]] || [[ ",$WANT," == *",hakmem-$p,"* ]]; then
                MALLOCS+=("hakmem-$p"); POLICY[hakmem-$p]=$p
                SUFFIX[hakmem-$p]=hakmem; PRELOAD[hakmem-$p]=""
            fi
        done
    else
        MALLOCS+=("$a"); POLICY[$a]=""
    fi
done
[ ${#MALLOCS[@]} -gt 0 ] || { echo "bench-memory.sh: no allocator selected" >&2; exit 2; }
echo "bench-memory.sh: $MODE mode, bench_memory $ARGS, $RUNS run$( [ "$RUNS" = 1 ] || echo s) each, RSS every $INTERVAL ms, allocators: ${MALLOCS[*]}" >&2
report_missing

# ---- running ------------------------------------------------------------------
mkdir -p "$OUT/rss"
rm -f "$OUT"/rss/bench_memory-*.tsv
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

RUNS_CSV=$OUT/memory-policy-runs.csv
echo "allocator,run,status,ops_per_sec,seconds,peak_rss_kb,rss_free_most_kb,rss_free_most_lull_kb,rss_regrow_kb,rss_free_all_kb,rss_free_all_lull_kb,rss_integral_mib_s,rss_mean_kb,wall_sec,user_sec,sys_sec,series" >"$RUNS_CSV"

total=$((RUNS * ${#MALLOCS[@]}))
step=0 failures=0
start=$(date +%s)
for run in $(seq 1 "$RUNS"); do
    for alloc in "${MALLOCS[@]}"; do
        step=$((step + 1))
        bin=$BIN/bench_memory_${SUFFIX[$alloc]}
        series=$OUT/rss/bench_memory-$alloc-$run.tsv
        pre=()
        [ -z "${PRELOAD[$alloc]}" ] || pre=(-p "${PRELOAD[$alloc]}")
        env=(env -u HAKMEM_FREE_POLICY)
        [ -z "${POLICY[$alloc]}" ] || env=(env HAKMEM_FREE_POLICY="${POLICY[$alloc]}")
        rm -f "$TMP/stat"
        set +e
        # shellcheck disable=SC2086  # ARGS are separate words on purpose
        "${env[@]}" "$RUNSTAT" -t "$TIMEOUT" -o "$TMP/stat" -s "$series" -i "$INTERVAL" \
            "${pre[@]+"${pre[@]}"}" -- "$bin" $ARGS >"$TMP/out" 2>"$TMP/err" </dev/null
        rc=$?
        set -e
        read_kv "$TMP/out" "$TMP/stat"
        err=$(<"$TMP/err")
        status=ok
        if [ "$rc" -ne 0 ] || [ -z "${KV[ops_per_sec]-}" ] || [ -z "${KV[rss_integral_mib_s]-}" ]; then
            status="fail($rc)"
            [ "${KV[timed_out]-}" != 1 ] || status=timeout
        elif [[ $err == *"cannot be preloaded"* ]]; then
            status=nopreload   # ld.so ignored the peer: the run was glibc's
        elif [[ $alloc == hakmem-* && $err == *HAKMEM_* ]]; then
            status=badoption   # hakmem refused the policy: the run used the default
        fi
        if [ "$status" = ok ]; then
            m=$((KV[ops_per_sec] / 10000)) r=$((KV[maxrss_kb] * 10 / 1024))
            shown=$(printf '%d.%02d M ops/s, peak RSS %d.%d MiB, %s MiB*s' \
                $((m / 100)) $((m % 100)) $((r / 10)) $((r % 10)) "${KV[rss_integral_mib_s]}")
            echo "$alloc,$run,ok,${KV[ops_per_sec]},${KV[seconds]},${KV[maxrss_kb]},${KV[rss_free_most_kb]-},${KV[rss_free_most_lull_kb]-},${KV[rss_regrow_kb]-},${KV[rss_free_all_kb]-},${KV[rss_free_all_lull_kb]-},${KV[rss_integral_mib_s]},${KV[rss_mean_kb]},${KV[wall_sec]},${KV[user_sec]},${KV[sys_sec]},$series" >>"$RUNS_CSV"
        else
            shown=$status
            failures=$((failures + 1))
            {
                echo "  FAILED: $alloc: $bin $ARGS ($status); stderr:"
                tail -n5 "$TMP/err" | sed 's/^/    /'
            } >&2
            echo "$alloc,$run,$status,,,,,,,,,,,,,," >>"$RUNS_CSV"
        fi
        printf '[%3d/%d] %-16s run %d/%d: %s\n' "$step" "$total" "$alloc" "$run" "$RUNS" "$shown" >&2
    done
done
elapsed=$(( $(date +%s) - start ))

# ---- summary and chart --------------------------------------------------------
awk -F, -v allocs="${MALLOCS[*]}" -v base="$BASE" -v out="$OUT" \
    -f scripts/bench-memory-summary.awk "$RUNS_CSV"

rm -f "$OUT/rss-over-time.png"
if ensure_gnuplot "$INSTALL" "$TMP/apt.log"; then
    bash scripts/bench-memory-chart.sh "$OUT" "bench_memory $ARGS" "$RUNS" ||
        { echo "bench-memory.sh: gnuplot failed, no chart" >&2; rm -f "$OUT/rss-over-time.png"; }
else
    echo "bench-memory.sh: gnuplot unavailable, no chart (sudo apt-get install gnuplot-nox)" >&2
fi

describe() {
    case "$1" in
        hakmem-*) echo "$1: hakmem $(allocator_version hakmem), \`HAKMEM_FREE_POLICY=${POLICY[$1]} bench_memory_hakmem\`" ;;
        glibc) echo "glibc $(allocator_version glibc): \`bench_memory_system\`" ;;
        *) echo "$1 $(allocator_version "$1"): \`bench_memory_system\`, LD_PRELOAD=${PRELOAD[$1]}" ;;
    esac
}
if [ "$MODE" = quick ]; then MAKE_CMD="make bench-memory"; else MAKE_CMD="make bench-full"; fi
{
    echo "### Free policies: RSS over time"
    echo
    echo "$MODE mode: \`$MAKE_CMD\` (scripts/bench-memory.sh --$MODE): \`bench_memory $ARGS\`,"
    echo "that is $SIZE MiB, with a lull of $PAUSE ms after free-most and after free-all;"
    echo "$RUNS run$( [ "$RUNS" = 1 ] || echo s) under each allocator, interleaved; RSS sampled every $INTERVAL ms;"
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'). Machine: $(machine_description)."
    echo
    echo "Allocators:"
    for a in "${MALLOCS[@]}"; do echo "- $(describe "$a")"; done
    echo
    peers_summary
    echo
    cat "$OUT/memory-policy-table.md"
    echo
    echo "Each cell is the median of the runs, with in parentheses its ratio to"
    echo "hakmem-adaptive's median; the second table gives the spread of the"
    echo "measures that vary with the load on the machine. Throughput counts the"
    echo "mallocs and frees of the four phases, not the lulls (higher is better);"
    echo "CPU s is user + system time of the whole process, every thread included"
    echo "(lower is better). Peak RSS is wait4's; \"after free-all\" is read by the"
    echo "program right after its last free, \"after the lull\" at the end of the"
    echo "final lull; RSS x time is the area under the RSS sampled from start to"
    echo "exit, the mean RSS that area divided by the run's length (lower is"
    echo "better for all of these); run s is the run's length, lulls included."
    if [ -s "$OUT/memory-policy-verdict.md" ]; then
        echo
        cat "$OUT/memory-policy-verdict.md"
    fi
    if [ -f "$OUT/rss-over-time.png" ]; then
        echo
        echo "![RSS over time on bench_memory, one line per allocator](rss-over-time.png)"
    fi
} >"$OUT/memory-policy.md"

cat "$OUT/memory-policy-table.md"
[ ! -s "$OUT/memory-policy-verdict.md" ] || { echo; cat "$OUT/memory-policy-verdict.md"; }
{
    echo
    echo "bench-memory.sh: $total runs in ${elapsed}s, $failures failed; wrote $OUT/memory-policy.md, $OUT/memory-policy.csv, $OUT/memory-policy-runs.csv$( [ -f "$OUT/rss-over-time.png" ] && echo ", $OUT/rss-over-time.png"), $OUT/rss/"
} >&2
[ "$failures" -eq 0 ]
