#!/usr/bin/env bash
# vg_check.sh PROGRAM: runs tests/vg_client's binary under valgrind's memcheck
# with the debug build preloaded (LD_PRELOAD is set by the runner) and checks
# that memcheck saw hakmem's blocks: exactly the read after free and the one
# leaked block that the program has, and no other error.
set -u
prog=$1
command -v valgrind >/dev/null || { echo "vg_check: valgrind is not installed" >&2; exit 1; }
out=$(valgrind --soname-synonyms=somalloc=nouserintercepts --leak-check=full "$prog" 2>&1)
status=$?
fail() { echo "vg_check: $*" >&2; printf '%s\n' "$out" | tail -n 40 >&2; exit 1; }
[ "$status" -eq 0 ] || fail "exit status $status"
grep -q "vg_client: sum" <<<"$out" || fail "the program did not finish"
grep -q "_hak_debug_on_free" <<<"$out" || fail "hakmem's frames missing: was its malloc replaced by valgrind's?"
grep -q "Invalid read of size 1" <<<"$out" || fail "the read after free was not reported"
grep -q "definitely lost: 112 bytes in 1 blocks" <<<"$out" || fail "the leaked block was not reported"
grep -q "ERROR SUMMARY: 2 errors from 2 contexts" <<<"$out" || fail "other errors than the two expected"
echo "vg_check: memcheck reported the read after free and the leak, nothing else"
