# reliability.sh: the cases of issue 6 (fuzzing, sanitizers, real programs,
# stress with many threads).  Sourced by tests/run.sh, whose run_case and
# need it uses; defines two functions run.sh calls:
#
#   rel_variant_cases V   at the end of variant V's cases (release, debug):
#       V linked mt_stress_16t, mt_stress_64t   test_mt_stress with 16 and 64
#                         worker threads on this machine's cores
#       V linked prefix_stress, prefix_stress_16t, prefix_stress_64t
#                         the prefix-API stress (tests/prefix_stress.c); in
#                         debug also prefix_stress_budget (with
#                         HAKMEM_RSS_BUDGET_KB) and prefix_stress_eager
#       V linked fuzz_replay   every input of tests/fuzz/corpus
#       release real NAME      real programs with out/release/libhakmem.so
#                         preloaded (tests/real/NAME.sh): python_regrtest,
#                         python_regrtest_malloc, sqlite3, jq, perl, xz, git
#   rel_extra_cases       once, after the variants:
#       asan linked prefix_stress, prefix_stress_16t, fuzz_replay, fuzz_random
#       tsan linked prefix_stress, prefix_stress_16t, prefix_stress_64t,
#                   prefix_stress_budget, prefix_stress_eager, fuzz_replay
#       fuzz libfuzzer short_run   HAKTEST_FUZZ_SECONDS (default 25) of
#                         libFuzzer (out/fuzz/fuzz_hak) from tests/fuzz/corpus
#                         (failing inputs: out/fuzz/artifacts/); without libFuzzer,
#                         "debug random short_run", the harness's own driver
#
# Deliberate exclusions under the sanitizers (HAKTEST_SAN_VARIANTS, default
# "asan tsan"):
#   - only programs that use the prefix API run there: the others replace
#     malloc itself (libhakmem.so), and the sanitizer runtimes must own
#     malloc to work at all;
#   - tests/test_prefix.c is left out of asan: it checks that hak_free hands
#     glibc's blocks back to glibc, recognising them by the chunk header in
#     the 16 bytes before the pointer; under ASan, malloc is ASan's and those
#     bytes are its redzone, which the check (rightly) reports as a read out
#     of bounds.  hak_owns on foreign pointers is still covered there
#     (prefix_stress asks it about ASan's blocks).

rel_fuzz_seconds=${HAKTEST_FUZZ_SECONDS:-25}

rel_variant_cases() {
    local v=$1 d=out/$1/tests
    local ms=$d/test_mt_stress_linked
    if need "$v linked mt_stress_16t" "$ms"; then
        run_case "$v" linked mt_stress_16t live env HAKTEST_THREADS=16 "$ms"
        run_case "$v" linked mt_stress_64t live env HAKTEST_THREADS=64 "$ms"
    fi
    if need "$v linked prefix_stress" "$d/prefix_stress"; then
        run_case "$v" linked prefix_stress live "$d/prefix_stress"
        run_case "$v" linked prefix_stress_16t live env HAKTEST_THREADS=16 "$d/prefix_stress"
        run_case "$v" linked prefix_stress_64t live env HAKTEST_THREADS=64 "$d/prefix_stress"
        if [ "$v" = debug ]; then
            rel_policy_cases "$v" "$d/prefix_stress"
        fi
    fi
    need "$v linked fuzz_replay" "$d/fuzz_replay" &&
        run_case "$v" linked fuzz_replay plain "$d/fuzz_replay" tests/fuzz/corpus
    if [ "$v" = release ]; then
        rel_real_cases
    fi
}

# prefix_stress under the other purge settings: a small RSS budget (the
# freeing threads purge, beside the purge thread) and the eager policy
# (every free purges at once, no purge thread)
rel_policy_cases() {  # variant program
    run_case "$1" linked prefix_stress_budget live env HAKMEM_RSS_BUDGET_KB=2048 "$2"
    run_case "$1" linked prefix_stress_eager live env HAKMEM_FREE_POLICY=eager "$2"
}

# tests/real/NAME.sh with hakmem preloaded; `timeout` stays outside it
rel_real() {  # name seconds script [args]
    local name=$1 secs=$2
    shift 2
    TMO=$secs run_case release real "$name" plain \
        env LD_PRELOAD="$ROOT/out/release/libhakmem.so" bash "$@"
}

rel_real_cases() {
    if [ ! -e out/release/libhakmem.so ]; then
        return 0
    fi
    rel_real python_regrtest 900 tests/real/python_regrtest.sh
    rel_real python_regrtest_malloc 600 tests/real/python_regrtest.sh malloc
    rel_real sqlite3 300 tests/real/sqlite.sh
    rel_real jq 300 tests/real/jq.sh
    rel_real perl 300 tests/real/perl.sh
    rel_real xz 300 tests/real/xz.sh
    rel_real git 300 tests/real/git.sh
}

rel_extra_cases() {
    local v d
    for v in ${HAKTEST_SAN_VARIANTS-asan tsan}; do
        d=out/$v/tests
        if need "$v linked prefix_stress" "$d/prefix_stress"; then
            run_case "$v" linked prefix_stress live "$d/prefix_stress"
            run_case "$v" linked prefix_stress_16t live env HAKTEST_THREADS=16 "$d/prefix_stress"
            if [ "$v" = tsan ]; then
                run_case "$v" linked prefix_stress_64t live env HAKTEST_THREADS=64 "$d/prefix_stress"
                rel_policy_cases "$v" "$d/prefix_stress"
            fi
        fi
        if need "$v linked fuzz_replay" "$d/fuzz_replay"; then
            run_case "$v" linked fuzz_replay plain "$d/fuzz_replay" tests/fuzz/corpus
            if [ "$v" = asan ]; then
                run_case "$v" linked fuzz_random plain "$d/fuzz_replay" --random 10 \
                    --save out/fuzz/artifacts
            fi
        fi
    done

    mkdir -p out/fuzz/artifacts
    if [ -x out/fuzz/fuzz_hak ]; then
        # new inputs go to a scratch directory: libFuzzer first runs every
        # input it is given, beyond -max_total_time, so a corpus that grew
        # run after run (make fuzz keeps out/fuzz/corpus) would make this
        # run longer and longer
        local scratch
        scratch=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-fuzz.XXXXXX")
        TMO=$((rel_fuzz_seconds + 120)) run_case fuzz libfuzzer short_run plain \
            out/fuzz/fuzz_hak -max_total_time="$rel_fuzz_seconds" -max_len=4096 -timeout=60 \
            -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix=out/fuzz/artifacts/ \
            "$scratch" tests/fuzz/corpus
        rm -rf "$scratch"
    elif need "debug random short_run" out/debug/tests/fuzz_replay; then
        TMO=$((rel_fuzz_seconds + 120)) run_case debug random short_run plain \
            out/debug/tests/fuzz_replay --random "$rel_fuzz_seconds" --save out/fuzz/artifacts
    fi
}
