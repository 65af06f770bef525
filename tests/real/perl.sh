#!/usr/bin/env bash
# perl.sh: perl under hakmem (issue 6, "Real programs"): tests/real/perl.pl
# builds a hash of a million keys, deletes a third, sorts, groups, builds
# strings and an array of 200,000 hashes; the output must equal
# perl.expected.
. "$(dirname "$0")/common.sh"
need perl perl
check_hakmem
perl "$REAL_DIR/perl.pl" >"$WORK/out"
expect perl "$WORK/out"
echo "perl: ok"
