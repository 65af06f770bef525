#!/usr/bin/env bash
# bench-instr.sh: instructions per operation of each allocator, under callgrind.
#
#   scripts/bench-instr.sh [--cycles N] [--ws N] [--seed N]
#                          [--allocators NAME,...] [--peers-dir DIR]
#                          [--bin DIR] [--out DIR]
#
# Runs bench_random_mixed CYCLES WS SEED (default 1000000 8192 42) once per
# allocator under `valgrind --tool=callgrind`: hakmem through
# bench_random_mixed_hakmem, glibc and the peers through
# bench_random_mixed_system (peers preloaded: the Debian ones and those of
# the folder DIR, default ../shared/peers, '' for none; snmalloc is left out,
# with a note, as it does not run under valgrind). Instruction counts (Ir) do not
# depend on machine load, so they repeat run after run: a figure for judging
# fast-path changes, where timings on a shared machine are too noisy.
#
# callgrind is told to dump its counters when the timed loop (run_cycles)
# starts and ends, which splits the run into start-up, loop and exit parts.
# Reported per allocator: total Ir, total Ir / CYCLES, and the loop's Ir /
# CYCLES (the malloc/free work plus the loop's own PRNG and bookkeeping,
# which are the same for every allocator). Written to DIR/instr.md and
# DIR/instr.csv (default out/bench) and printed on stdout. Then hakmem's
# malloc and free fast paths are counted in the disassembly and checked
# against the budgets in their comments (below).
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

CYCLES=1000000 WS=8192 SEED=42
BIN=out/release OUT=out/bench WANT_ALLOCS="" PEERS=../shared/peers
while [ $# -gt 0 ]; do
    case "$1" in
        --cycles) CYCLES=${2:?}; shift ;;
        --ws) WS=${2:?}; shift ;;
        --seed) SEED=${2:?}; shift ;;
        --allocators) WANT_ALLOCS=${2:?}; shift ;;
        --peers-dir) PEERS=${2?}; shift ;;
        --bin) BIN=${2:?}; shift ;;
        --out) OUT=${2:?}; shift ;;
        -h|--help) sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
        *) echo "bench-instr.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
for v in "$CYCLES" "$WS" "$SEED"; do
    case "$v" in ''|*[!0-9]*) echo "bench-instr.sh: '$v' is not a number" >&2; exit 2 ;; esac
done

if ! command -v valgrind >/dev/null 2>&1; then
    echo "bench-instr.sh: valgrind is not installed; install it with:" >&2
    echo "  sudo apt-get install valgrind   (or: sudo bash scripts/install-peers.sh)" >&2
    exit 1
fi
if [ ! -x "$BIN/bench_random_mixed_system" ]; then
    echo "bench-instr.sh: $BIN/bench_random_mixed_system missing; run 'make benches'" >&2
    exit 1
fi

find_allocators "$BIN" bench_random_mixed "$WANT_ALLOCS" "$PEERS"
# snmalloc's process ends early under valgrind (see the peers folder's
# README): no count to take.
SKIPPED_VG=()
kept=()
for a in "${ALLOCS[@]}"; do
    case "$a" in
        snmalloc)
            SKIPPED_VG+=("$a")
            NOTES+=("$a: does not run under valgrind, no instruction count") ;;
        *) kept+=("$a") ;;
    esac
done
ALLOCS=("${kept[@]+"${kept[@]}"}")
# hakmem with statistics on, to show what counting costs (and that it costs
# the others nothing: "hakmem" runs with it off)
declare -A EXTRA_ENV=()
if [[ " ${ALLOCS[*]} " == *" hakmem "* ]]; then
    ALLOCS+=(hakmem-stats); SUFFIX[hakmem-stats]=hakmem; PRELOAD[hakmem-stats]=""
    EXTRA_ENV[hakmem-stats]="HAKMEM_STATS=1"
fi
[ ${#ALLOCS[@]} -gt 0 ] || { echo "bench-instr.sh: no allocator selected" >&2; exit 2; }
echo "bench-instr.sh: bench_random_mixed $CYCLES $WS $SEED under callgrind; allocators: ${ALLOCS[*]}" >&2
report_missing

mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Sum of the "summary:" lines of the callgrind parts given.
sum_ir() { awk '/^summary:/ { s += $2 } END { printf "%.0f\n", s }' "$@"; }

echo "allocator,cycles,ir_total,ir_per_op_total,ir_loop,ir_per_op_loop" >"$OUT/instr.csv"
{
    echo "| allocator | Ir total | Ir/op (whole run) | Ir/op (timed loop) |"
    echo "|---|--:|--:|--:|"
} >"$OUT/instr.md"
failures=0
for a in "${ALLOCS[@]}"; do
    bin=$BIN/bench_random_mixed_${SUFFIX[$a]}
    cg=$TMP/cg.$a
    env_pre=()
    [ -z "${PRELOAD[$a]}" ] || env_pre=("LD_PRELOAD=${PRELOAD[$a]}")
    [ -z "${EXTRA_ENV[$a]-}" ] || env_pre+=("${EXTRA_ENV[$a]}")
    if ! env "${env_pre[@]+"${env_pre[@]}"}" valgrind --tool=callgrind \
            --callgrind-out-file="$cg" --dump-before=run_cycles --dump-after=run_cycles \
            "$bin" "$CYCLES" "$WS" "$SEED" >"$TMP/out.$a" 2>"$TMP/err.$a"; then
        echo "  FAILED: $a; valgrind's stderr ends with:" >&2
        tail -n5 "$TMP/err.$a" | sed 's/^/    /' >&2
        failures=$((failures + 1))
        continue
    fi
    loop_part=$(grep -l '^desc: Trigger: --dump-after=run_cycles' "$cg"* || true)
    if [ -z "$loop_part" ]; then
        echo "  FAILED: $a: callgrind found no run_cycles function" >&2
        failures=$((failures + 1))
        continue
    fi
    # The allocator's library must show up in the loop's profile; otherwise
    # it was not in use (a preload ignored) and this would be glibc's count.
    case "$a" in
        glibc) lib="" ;;
        hakmem|hakmem-stats) lib=libhakmem.so ;;
        *) lib=$(basename "${PRELOAD[$a]}") ;;
    esac
    if [ -n "$lib" ] && ! grep -q "$lib" "$loop_part"; then
        echo "  FAILED: $a: $lib not seen in the loop's profile (not in use?)" >&2
        failures=$((failures + 1))
        continue
    fi
    total=$(sum_ir "$cg"*)
    loop=$(sum_ir "$loop_part")
    awk -v a="$a" -v c="$CYCLES" -v t="$total" -v l="$loop" -v csv="$OUT/instr.csv" 'BEGIN {
        printf "%s,%d,%.0f,%.2f,%.0f,%.2f\n", a, c, t, t / c, l, l / c >> csv
        printf "| %s | %.0f | %.1f | %.1f |\n", a, t, t / c, l / c
    }' >>"$OUT/instr.md"
    echo "  $a: $(tail -n1 "$OUT/instr.md")" >&2
done

{
    echo
    echo "bench_random_mixed $CYCLES $WS $SEED under valgrind --tool=callgrind ($(valgrind --version));"
    echo "Ir = instructions executed; the timed loop is run_cycles (malloc/free plus the"
    echo "loop's own PRNG and bookkeeping, identical for every allocator)."
    echo "Machine: $(machine_description)."
    if [ ${#SKIPPED_VG[@]} -gt 0 ]; then
        echo "Not counted: ${SKIPPED_VG[*]} (does not run under valgrind)."
    fi
    if [ ${#PEERS_MISSING[@]} -gt 0 ]; then
        echo "Peers missing: $(printf '%s; ' "${PEERS_MISSING[@]}" | sed 's/; $//')."
    fi
} >>"$OUT/instr.md"
# hakmem's fast paths against their budgets: the instructions from the
# entry of malloc and of free in libhakmem.so to the first ret (nops left
# out), against the "Fast-path budget: N instructions" comment above
# _hak_malloc (src/alloc.c) and _hak_free (src/free.c). A path longer than
# its budget fails the run: shorten it, or raise the budget in the comment
# with the reason.
fastpath_len() {   # LIB SYMBOL
    local addr
    # no early exit in these awk programs: the writer would get SIGPIPE,
    # which pipefail turns into a failed run
    addr=$(nm -D --defined-only "$1" | awk -v s="$2" '$3 == s && !a { a = $1 } END { print a }')
    [ -n "$addr" ] || { echo "?"; return; }
    objdump -d --no-show-raw-insn --start-address=0x"$addr" \
            --stop-address=$((0x$addr + 1024)) "$1" |
        awk '/^ *[0-9a-f]+:\t/ && !done { if ($2 ~ /^nop/ || $2 ~ /^(cs|data16)$/ || $2 ~ /^xchg/) next; n++; if ($2 == "ret") done = 1 }
             END { if (done) print n }'
}
budget_of() {   # FILE
    sed -n '/Fast-path budget: [0-9]/{s/.*Fast-path budget: \([0-9][0-9]*\) instructions.*/\1/p;q;}' "$1"
}
if [[ " ${ALLOCS[*]} " == *" hakmem "* ]] && command -v objdump >/dev/null 2>&1; then
    echo >>"$OUT/instr.md"
    echo "hakmem's fast paths (libhakmem.so, instructions from the entry to the first ret):" >>"$OUT/instr.md"
    for fn in malloc:src/alloc.c free:src/free.c; do
        sym=${fn%%:*} src=${fn#*:}
        len=$(fastpath_len "$BIN/libhakmem.so" "$sym")
        budget=$(budget_of "$src")
        verdict="within its budget of $budget"
        if [ -z "$budget" ] || [ "$len" = "?" ] || [ -z "$len" ]; then
            verdict="NOT CHECKED (no count or no budget comment)"
            failures=$((failures + 1))
        elif [ "$len" -gt "$budget" ]; then
            verdict="OVER its budget of $budget ($src)"
            failures=$((failures + 1))
        fi
        echo "- $sym: $len, $verdict" >>"$OUT/instr.md"
    done
fi
cat "$OUT/instr.md"
echo "bench-instr.sh: wrote $OUT/instr.md and $OUT/instr.csv" >&2
[ "$failures" -eq 0 ]
