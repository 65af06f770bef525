#!/usr/bin/env bash
# progs.sh: everyday programs under hakmem (run by tests/run.sh with
# LD_PRELOAD set to a variant's libhakmem.so).  Each pipeline's result is
# known in advance; the script exits non-zero on the first difference.
set -u
fail() { echo "progs.sh: $*" >&2; exit 1; }

# hakmem is really in these processes
n=$(grep -c libhakmem /proc/self/maps) || true
[ "${HAKTEST_ALLOW_SYSTEM:-}" = 1 ] || [ "${n:-0}" -ge 1 ] || fail "libhakmem is not mapped into grep (LD_PRELOAD=${LD_PRELOAD:-})"

# sort, awk: 1..200000 summed after a reverse numeric sort
got=$(seq 1 200000 | sort -rn | awk '{ s += $1 } END { printf "%.0f\n", s }')
[ "$got" = 20000100000 ] || fail "seq | sort | awk gave '$got'"

# sort of strings with many distinct keys, uniq counting
got=$(seq 1 50000 | sed 's/$/ key/' | sort | uniq | wc -l)
[ "$got" = 50000 ] || fail "sort | uniq gave '$got' lines"

# gzip round trip of a few MB
got=$(seq 1 400000 | gzip -c | gunzip -c | md5sum | cut -d' ' -f1)
want=$(seq 1 400000 | md5sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "gzip round trip changed the data"

# bash itself: associative arrays and string building
declare -A h
for ((i = 0; i < 20000; i++)); do h[k$i]=$((i * 3)); done
s=0
for ((i = 0; i < 20000; i += 5)); do s=$((s + h[k$i])); done
[ "$s" = 119970000 ] || fail "bash associative array sum gave $s"
unset h
str=""
for ((i = 0; i < 5000; i++)); do str+="x$i"; done
[ "${#str}" = 23890 ] || fail "bash string length ${#str}"

# find and xargs over a real directory tree
got=$(find /usr/include -maxdepth 2 -name '*.h' | sort | xargs cat 2>/dev/null | wc -c)
want=$(env -u LD_PRELOAD bash -c "find /usr/include -maxdepth 2 -name '*.h' | sort | xargs cat 2>/dev/null | wc -c")
[ "$got" = "$want" ] || fail "find | xargs cat gave $got bytes, $want without hakmem"

echo "progs: ok"
