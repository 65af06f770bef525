#!/usr/bin/env bash
# sqlite.sh: sqlite3 under hakmem (issue 6, "Real programs").  An in-memory
# database (every page is a malloc'd block) with a 256 MiB page cache; a
# generated SQL script inserts a million rows one INSERT at a time, then
# tests/real/sqlite.sql builds three indexes and runs sorts, joins,
# aggregates, a delete and an update; the output must equal sqlite.expected.
. "$(dirname "$0")/common.sh"
need sqlite3 sqlite3
check_hakmem

# row x: a = x*7919 mod 1000003, b = x mod 1000, s = k<(x*37 mod 10^6)>-<tail of "abcdefghij">
awk 'BEGIN {
    print "PRAGMA cache_size = -262144;"
    print "CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER NOT NULL, b INTEGER NOT NULL, s TEXT NOT NULL);"
    print "CREATE TABLE g(k INTEGER PRIMARY KEY, name TEXT NOT NULL);"
    print "BEGIN;"
    for (x = 1; x <= 1000000; x++)
        printf "INSERT INTO t VALUES(%d,%d,%d,\047k%07d-%s\047);\n", x, (x * 7919) % 1000003, x % 1000, (x * 37) % 1000000, substr("abcdefghij", 1 + x % 10)
    for (k = 0; k < 1000; k++)
        printf "INSERT INTO g VALUES(%d,\047group-%d\047);\n", k, k
    print "COMMIT;"
}' >"$WORK/gen.sql"
[ "$(grep -c '^INSERT INTO t' "$WORK/gen.sql")" = 1000000 ] || fail "the generated script is wrong"
cat "$WORK/gen.sql" "$REAL_DIR/sqlite.sql" | sqlite3 -batch -bail :memory: >"$WORK/out"
expect sqlite "$WORK/out"
echo "sqlite: ok"
