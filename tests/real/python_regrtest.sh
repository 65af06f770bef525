#!/usr/bin/env bash
# python_regrtest.sh: CPython's own regression tests under hakmem (issue 6,
# "Real programs"), from Debian's libpython3.11-testsuite, run by Debian's
# /usr/bin/python3 (not a python3 found first on PATH, such as a pyenv
# build without that test package).
#
#   python_regrtest.sh          the allocation-heavy set below, with
#                               CPython's own small-object allocator
#                               (pymalloc: hakmem serves blocks > 512 bytes
#                               and pymalloc's arenas)
#   python_regrtest.sh malloc   a subset with PYTHONMALLOC=malloc: every
#                               object is a hakmem block
#
# Both pass without hakmem on Debian 12 (about 55 s and 20 s on two cores).
# Each test file gets at most HAKTEST_PY_TIMEOUT seconds (default 150; the
# slowest, test_threading, takes about 15 s), so a hang fails the case
# instead of stopping the suite.
. "$(dirname "$0")/common.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || fail "$PY is missing (Debian package python3)"
"$PY" -c 'import test.test_dict' 2>/dev/null ||
    fail "CPython's test package is missing (Debian package libpython3.11-testsuite; .ci/run installs it)"
check_hakmem

FULL="test_dict test_list test_set test_json test_bytes test_unicode test_threading test_gc
      test_collections test_deque test_heapq test_array test_tuple test_string test_re
      test_pickle test_memoryview test_struct test_itertools test_sort test_weakref test_copy
      test_ordered_dict test_descr test_long test_marshal test_zlib test_hashlib test_queue
      test_bisect test_userdict test_userlist test_userstring test_dictviews test_bigaddrspace
      test_ast test_tokenize test_decimal test_fractions test_xml_etree test_csv test_lzma
      test_bz2 test_thread test_threading_local test_fork1 test_mmap test_enum test_functools
      test_class test_exceptions"
MALLOC="test_dict test_list test_set test_json test_bytes test_unicode test_gc test_collections
        test_re test_pickle test_descr test_threading_local test_thread test_weakref test_deque
        test_long"

if [ "${1:-}" = malloc ]; then
    export PYTHONMALLOC=malloc
    tests=$MALLOC
else
    unset PYTHONMALLOC
    tests=$FULL
fi
# the interpreter's own settings only; regrtest works in a directory of ours
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONDEVMODE
cd "$WORK"
# shellcheck disable=SC2086
"$PY" -m test -j2 --timeout "${HAKTEST_PY_TIMEOUT:-150}" $tests >"$WORK/log" 2>&1 || {
    grep -vE '^[0-9]+:[0-9]+:[0-9]+ load avg' "$WORK/log" | tail -n 40 >&2
    fail "python3 -m test failed"
}
grep -q '^Tests result: SUCCESS' "$WORK/log" || { tail -n 20 "$WORK/log" >&2; fail "no SUCCESS line"; }
grep -E '^(All [0-9]+ tests OK|Total duration)' "$WORK/log"
echo "python_regrtest${1:+ $1}: ok"
