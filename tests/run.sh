#!/usr/bin/env bash
# run.sh: runs hakmem's test suite (called by `make test`, which builds first).
#
# For each variant (release, debug) and each mode (linked: the program linked
# with out/VARIANT/libhakmem.so; preload: the plain program run with
# LD_PRELOAD=out/VARIANT/libhakmem.so) every test program runs once.  Also:
# test_prefix and the unit tests (linked only); python3 running
# tests/py_churn.py (preload only, with pymalloc and with
# PYTHONMALLOC=malloc) and everyday programs (tests/progs.sh, preload only);
# HAKMEM_* options seen by a preloaded program (tests/options_env.sh); a
# check that libhakmem.so's TLS is initial-exec, and that it and a C program
# linked with it need no libstdc++ (no_libstdcxx); and the bench_random_mixed
# regression case when the benchmark binaries exist. Once, as variant "all":
# README.md's options table against src/options.c (tests/test_options_doc.sh)
# and make install / uninstall into a temporary prefix (tests/test_install.sh).
# Issue 6's cases, from tests/reliability.sh: per variant, test_mt_stress
# and the prefix-API stress with 16 and 64 threads and the fuzz corpus
# replay; with release, real programs preloaded (mode "real"); then the
# ASan+UBSan and TSan builds (variants asan, tsan) and a short fuzz run.
#
# One line per case: "PASS variant mode name  (time)" or "FAIL variant mode
# name: reason" followed by the last lines of its output; the last line is
# "N passed, N failed", and the exit status is non-zero if any case failed.
#
# Environment:
#   HAKTEST_VARIANTS  variants to run (default "release debug")
#   HAKTEST_FILTER    extended regex; only cases whose "variant mode name"
#                         matches run (e.g. "debug.*mt_stress")
#   HAKTEST_TIMEOUT   seconds allowed per case (default 120)
#   HAKTEST_SECONDS   run time of the time-bounded tests (their default)
#   HAKTEST_SAN_VARIANTS  sanitizer variants to run (default "asan tsan")
#   HAKTEST_FUZZ_SECONDS  length of the short fuzz run (default 25)
# Each test is told its variant in HAKTEST_VARIANT.

set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$PWD

VARIANTS_TO_RUN=${HAKTEST_VARIANTS:-release debug}
FILTER=${HAKTEST_FILTER:-}
TMO=${HAKTEST_TIMEOUT:-120}
# tests that compare hakmem's live-block count at start and end: in the debug
# build they must say they did ("live-check: done")
LIVE_TESTS=" api regress mt_stress fork "
TAIL_LINES=15
# the runner's own settings are not passed on to the tests
RUNNER_ONLY="-u HAKTEST_VARIANTS -u HAKTEST_FILTER -u HAKTEST_TIMEOUT"

pass=0
fail=0
failed=()
LOG=$(mktemp "${TMPDIR:-/tmp}/hakmem-test.XXXXXX")
trap 'rm -f "$LOG" "$LOG.err"' EXIT

now() { date +%s.%N; }

report_fail() {  # label reason
    echo "FAIL $1: $2"
    if [ -s "$LOG" ]; then
        tail -n "$TAIL_LINES" "$LOG" | sed 's/^/    | /'
    fi
    fail=$((fail + 1))
    failed+=("$1")
}

# run_case VARIANT MODE NAME KIND COMMAND...
#   KIND: plain  - exit status 0 is a pass
#         live   - and in the debug variant the output has "live-check: done"
#         py     - and stdout equals tests/py_churn.expected
run_case() {
    local variant=$1 mode=$2 name=$3 kind=$4
    shift 4
    local label="$variant $mode $name"
    if [ -n "$FILTER" ] && ! [[ "$label" =~ $FILTER ]]; then
        return 0
    fi
    local t0 t1 rc
    t0=$(now)
    if [ "$mode" = preload ]; then
        # timeout itself stays off hakmem, so it works even if hakmem hangs
        env -u LD_PRELOAD $RUNNER_ONLY HAKTEST_VARIANT="$variant" timeout -k 10 "$TMO" \
            env LD_PRELOAD="$ROOT/out/$variant/libhakmem.so" "$@" >"$LOG" 2>"$LOG.err" </dev/null
        rc=$?
    else
        env -u LD_PRELOAD $RUNNER_ONLY HAKTEST_VARIANT="$variant" \
            timeout -k 10 "$TMO" "$@" >"$LOG" 2>"$LOG.err" </dev/null
        rc=$?
    fi
    t1=$(now)
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1fs", b - a }')
    # keep stdout apart for the python comparison, then merge for display
    local out
    out=$(cat "$LOG")
    cat "$LOG.err" >>"$LOG"
    rm -f "$LOG.err"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        report_fail "$label" "timed out after ${TMO}s, or killed (status $rc)"
        return 0
    fi
    if [ "$rc" -gt 128 ]; then
        report_fail "$label" "killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
        return 0
    fi
    if [ "$rc" -ne 0 ]; then
        report_fail "$label" "exit status $rc"
        return 0
    fi
    if [ "$kind" = live ] && [ "$variant" = debug ] && ! grep -q '^live-check: done' "$LOG"; then
        report_fail "$label" "passed, but did not compare the live-block count (no 'live-check: done')"
        return 0
    fi
    if [ "$kind" = py ] && [ "$out" != "$(cat tests/py_churn.expected)" ]; then
        report_fail "$label" "output differs from tests/py_churn.expected"
        return 0
    fi
    echo "PASS $label  ($secs)"
    pass=$((pass + 1))
}

# a case whose program is missing fails (the build should have made it)
need() {  # label file
    if [ -x "$2" ]; then
        return 0
    fi
    if [ -n "$FILTER" ] && ! [[ "$1" =~ $FILTER ]]; then
        return 1
    fi
    : >"$LOG"
    report_fail "$1" "$2 is missing (run make test, which builds it)"
    return 1
}

# the generic tests: tests/test_NAME.c and .cc, except test_prefix
names=()
for src in tests/test_*.c tests/test_*.cc; do
    [ -e "$src" ] || continue
    n=${src#tests/test_}
    n=${n%.c}
    n=${n%.cc}
    [ "$n" = prefix ] && continue
    names+=("$n")
done
units=()
for src in tests/unit_*.c; do
    [ -e "$src" ] || continue
    n=${src#tests/unit_}
    units+=("${n%.c}")
done

PYTHON=$(command -v python3 || true)

# issue 6: rel_variant_cases, rel_extra_cases
. tests/reliability.sh

t_start=$(now)
for v in $VARIANTS_TO_RUN; do
    dir=out/$v/tests
    if [ ! -e "out/$v/libhakmem.so" ]; then
        : >"$LOG"
        report_fail "$v - library" "out/$v/libhakmem.so is missing (run make test)"
        continue
    fi
    # glibc's rule for a replacement malloc: thread-local state in the
    # initial-exec model, i.e. no __tls_get_addr, and STATIC_TLS set when
    # the library has TLS at all
    run_case "$v" static tls_model plain bash -c '
        lib=$1
        if nm -D "$lib" | grep -q "__tls_get_addr"; then
            echo "$lib calls __tls_get_addr: some TLS is not initial-exec" >&2; exit 1
        fi
        if readelf -lW "$lib" | grep -q "^ *TLS " && ! readelf -dW "$lib" | grep -q STATIC_TLS; then
            echo "$lib has TLS but no STATIC_TLS flag" >&2; exit 1
        fi' tls_model "out/$v/libhakmem.so"
    # C++'s operator new and delete are libhakmem's own, written in C: the
    # library, and a C program linked with it, need no libstdc++; the
    # prefix library leaves them alone
    run_case "$v" static no_libstdcxx plain bash -c '
        lib=$1 prefix=$2 prog=$3
        if readelf -dW "$lib" | grep "(NEEDED)" | grep -q "libstdc++"; then
            echo "$lib needs libstdc++" >&2; exit 1
        fi
        if nm -D --undefined-only "$lib" | grep " _Z"; then
            echo "$lib refers to the C++ symbols above" >&2; exit 1
        fi
        for sym in _Znwm _Znam _ZdlPv _ZdlPvm _ZnwmSt11align_val_t _ZdlPvmSt11align_val_t; do
            nm -D --defined-only "$lib" | grep -q " T $sym\$" || { echo "$lib does not export $sym" >&2; exit 1; }
        done
        if nm -D --defined-only "$prefix" | grep " _Z"; then
            echo "$prefix exports the C++ operators above" >&2; exit 1
        fi
        if ! ldd "$prog" | grep -q libhakmem.so || ldd "$prog" | grep -q "libstdc++"; then
            echo "$prog: not linked with libhakmem.so alone:" >&2; ldd "$prog" >&2; exit 1
        fi' no_libstdcxx "out/$v/libhakmem.so" "out/$v/libhakmem-prefix.so" "out/$v/tests/test_glibc_api_linked"
    for mode in linked preload; do
        for n in "${names[@]}"; do
            kind=plain
            [[ "$LIVE_TESTS" == *" $n "* ]] && kind=live
            if [ "$mode" = linked ]; then
                bin=$dir/test_${n}_linked
            else
                bin=$dir/test_${n}_plain
            fi
            need "$v $mode $n" "$bin" && run_case "$v" "$mode" "$n" "$kind" "$bin"
        done
        if [ "$mode" = linked ]; then
            if [ -e tests/test_prefix.c ]; then
                need "$v linked prefix" "$dir/test_prefix_linked" &&
                    run_case "$v" linked prefix plain "$dir/test_prefix_linked"
            fi
            for u in "${units[@]}"; do
                need "$v linked unit_$u" "$dir/unit_$u" &&
                    run_case "$v" linked "unit_$u" plain "$dir/unit_$u"
            done
        else
            if [ -z "$PYTHON" ]; then
                : >"$LOG"
                report_fail "$v preload py_churn" "no python3 on PATH"
            else
                run_case "$v" preload py_churn py "$PYTHON" tests/py_churn.py
                run_case "$v" preload py_churn_pymalloc_off py \
                    env PYTHONMALLOC=malloc "$PYTHON" tests/py_churn.py
            fi
            run_case "$v" preload progs plain bash tests/progs.sh
            run_case "$v" preload options_env plain bash tests/options_env.sh
        fi
    done
    # the original's regression case, with the benchmark program itself
    # (built by the benchmarks' makefile; only when it is there)
    if [ "$v" = release ] && [ -x out/release/bench_random_mixed_hakmem ]; then
        run_case release linked bench_random_mixed plain \
            out/release/bench_random_mixed_hakmem 25000 2048 123
    fi
    if [ -x out/release/bench_random_mixed_system ]; then
        run_case "$v" preload bench_random_mixed plain \
            out/release/bench_random_mixed_system 25000 2048 123
    fi
    rel_variant_cases "$v"
done
# once for all variants: the options' documentation (read through the
# unit_options programs of the variants run), and the installation
option_dumpers=()
for v in $VARIANTS_TO_RUN; do
    option_dumpers+=("out/$v/tests/unit_options")
done
run_case all static options_doc plain bash tests/test_options_doc.sh "${option_dumpers[@]}"
# the secure build (forged free-list link, guard page, shuffled blocks) and
# memcheck seeing the debug build's blocks
run_case secure preload secure_check plain out/secure/tests/secure_check
if [[ " $VARIANTS_TO_RUN " == *" debug "* ]]; then
    run_case debug preload valgrind plain bash tests/vg_check.sh out/debug/tests/vg_client
fi
run_case all static install plain bash tests/test_install.sh
rel_extra_cases
t_end=$(now)

if [ "$fail" -gt 0 ]; then
    echo "failed:"
    for f in "${failed[@]}"; do
        echo "  $f"
    done
fi
awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "time: %.0fs\n", b - a }'
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
