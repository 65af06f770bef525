#!/usr/bin/env bash
# xz.sh: xz and zstd under hakmem (issue 6, "Real programs"), both
# multi-threaded (-T2: worker threads with large buffers, handed between
# threads): 600,000 generated lines (about 11 MB) compressed in blocks of
# 2 MiB and decompressed; the round trips must give back the same bytes and
# xz's integrity test (xz -t) must pass.
. "$(dirname "$0")/common.sh"
need xz xz-utils
need zstd zstd
check_hakmem
awk 'BEGIN { for (i = 1; i <= 600000; i++) print i, (i * i) % 1000003, "line", (i % 7 ? "x" : "seven") }' >"$WORK/in"
want=$(md5sum <"$WORK/in" | cut -d' ' -f1)
xz -T2 -6 --block-size=2MiB -c "$WORK/in" >"$WORK/in.xz"
xz -t "$WORK/in.xz" || fail "xz -t: the compressed file is damaged"
got=$(xz -T2 -dc "$WORK/in.xz" | md5sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "xz round trip changed the data"
got=$(zstd -q -T2 -12 -c "$WORK/in" | zstd -q -dc | md5sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "zstd round trip changed the data"
echo "xz: ok"
