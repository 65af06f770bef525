#!/usr/bin/env bash
# jq.sh: jq under hakmem (issue 6, "Real programs").  An 18 MB JSON array of
# 200,000 records (generated here), parsed and put through group_by,
# sort_by, from_entries with 200,000 keys, reduce, paths and tostring; the
# output must equal jq.expected.  Then the file goes through jq once more,
# pretty-printed and back, and must come back byte for byte.
. "$(dirname "$0")/common.sh"
need jq jq
check_hakmem

# record i: name n<i*7919 mod 200000>, g = i mod 97, v = i*31 mod 1009,
# tags t<(i+k) mod 13> for k < i mod 5, sub {x: i mod 1000, y: odd|even}
awk 'BEGIN {
    printf "["
    for (i = 0; i < 200000; i++) {
        if (i) printf ","
        printf "{\"id\":%d,\"name\":\"n%06d\",\"g\":%d,\"v\":%d,\"tags\":[", i, (i * 7919) % 200000, i % 97, (i * 31) % 1009
        for (k = 0; k < i % 5; k++) printf "%s\"t%d\"", (k ? "," : ""), (i + k) % 13
        printf "],\"sub\":{\"x\":%d,\"y\":\"%s\"}}", i % 1000, (i % 2 ? "odd" : "even")
    }
    printf "]\n"
}' >"$WORK/data.json"
jq -r -f "$REAL_DIR/jq.jq" "$WORK/data.json" >"$WORK/out"
expect jq "$WORK/out"
jq . "$WORK/data.json" | jq -c . >"$WORK/again.json"
cmp -s "$WORK/data.json" "$WORK/again.json" || fail "jq . | jq -c . changed the document"
echo "jq: ok"
