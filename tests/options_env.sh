#!/usr/bin/env bash
# options_env.sh: HAKMEM_* options as an ordinary program sees them, with
# libhakmem.so preloaded (run by tests/run.sh in preload mode, which sets
# LD_PRELOAD). tests/unit_options.c covers every option and value; this
# checks the same behaviour through the shared library: a bad value or an
# unknown name gives one line on stderr, the default stays in force (as
# HAKMEM_VERBOSE=1 shows), and the program's output is still right.
set -u
case ${LD_PRELOAD:-} in
*libhakmem*) ;;
*) echo "options_env: run with libhakmem.so preloaded (LD_PRELOAD=${LD_PRELOAD:-})" >&2; exit 1 ;;
esac
# the options of whoever runs the tests are not ours
unset "${!HAKMEM_@}"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-optenv.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() {
    echo "options_env: FAIL: $*" >&2
    fails=$((fails + 1))
}

seq 20000 | shuf --random-source=<(yes) >"$TMP/in"
seq 20000 >"$TMP/want"

# run LABEL VAR=VALUE...: sort the input with those variables; the output
# must be right. Leaves stderr in $TMP/err.
run() {
    local label=$1
    shift
    if ! env "$@" sort -n "$TMP/in" >"$TMP/out" 2>"$TMP/err"; then
        fail "$label: sort failed: $(cat "$TMP/err")"
    elif ! cmp -s "$TMP/out" "$TMP/want"; then
        fail "$label: sort's output is wrong"
    fi
}

# one_line LABEL TEXT...: stderr is one hakmem line holding every TEXT
one_line() {
    local label=$1 t
    shift
    if [ "$(wc -l <"$TMP/err")" -ne 1 ] || ! grep -q '^hakmem: ' "$TMP/err"; then
        fail "$label: expected one line from hakmem on stderr, got: $(cat "$TMP/err")"
        return
    fi
    for t in "$@"; do
        grep -qF -- "$t" "$TMP/err" || fail "$label: the line does not say '$t': $(cat "$TMP/err")"
    done
}

run "no options"
[ -s "$TMP/err" ] && fail "no options: stderr is not empty: $(cat "$TMP/err")"

run "HAKMEM_SS_RETAIN=abc" HAKMEM_SS_RETAIN=abc
one_line "HAKMEM_SS_RETAIN=abc" HAKMEM_SS_RETAIN abc 1048576 "default, 16"

run "HAKMEM_SS_RETAIN=2000000" HAKMEM_SS_RETAIN=2000000
one_line "HAKMEM_SS_RETAIN=2000000" HAKMEM_SS_RETAIN 2000000 1048576 "default, 16"

run "HAKMEM_THP=sometimes" HAKMEM_THP=sometimes
one_line "HAKMEM_THP=sometimes" HAKMEM_THP sometimes auto always never

run "HAKMEM_SS_RETAINN=1" HAKMEM_SS_RETAINN=1
one_line "HAKMEM_SS_RETAINN=1" HAKMEM_SS_RETAINN
if ! grep -qE 'HAKMEM_SS_RETAIN([^A-Z0-9_]|$)' "$TMP/err"; then
    fail "HAKMEM_SS_RETAINN=1: the nearest name, HAKMEM_SS_RETAIN, is not suggested: $(cat "$TMP/err")"
fi

# in_force NAME VALUE: HAKMEM_VERBOSE=1 listed HAKMEM_NAME with VALUE
in_force() {
    grep -qE "(^|[^A-Z0-9_])HAKMEM_$1 *[=:] *\"?$2\"?( .*)?\$" "$TMP/err" ||
        fail "HAKMEM_VERBOSE=1 does not show HAKMEM_$1=$2 in force: $(cat "$TMP/err")"
}

# the defaults stay in force: HAKMEM_VERBOSE=1 lists the options in force
run "verbose, bad values" HAKMEM_VERBOSE=1 HAKMEM_SS_RETAIN=abc HAKMEM_THP=sometimes HAKMEM_FREE_POLICY=7
in_force SS_RETAIN 16
in_force THP auto
in_force FREE_POLICY adaptive
for w in 'HAKMEM_SS_RETAIN.*abc' 'HAKMEM_THP.*sometimes' 'HAKMEM_FREE_POLICY="?7'; do
    grep -qE "$w" "$TMP/err" || fail "three bad values: no warning matching $w: $(cat "$TMP/err")"
done
# and good values are taken, without a warning
run "verbose, good values" HAKMEM_VERBOSE=1 HAKMEM_SS_RETAIN=9 HAKMEM_THP=never HAKMEM_FREE_POLICY=eager
in_force SS_RETAIN 9
in_force THP never
in_force FREE_POLICY eager
grep -qE 'HAKMEM_(SS_RETAIN|THP|FREE_POLICY)="?(9|never|eager)"? .*default' "$TMP/err" &&
    fail "good values: a warning: $(cat "$TMP/err")"

if [ "$fails" -gt 0 ]; then
    exit 1
fi
echo "options_env: all passed"
