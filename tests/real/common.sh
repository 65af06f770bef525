# common.sh: helpers for the real-program tests (tests/real/*.sh), sourced.
# tests/run.sh runs each script with LD_PRELOAD set to out/release's
# libhakmem.so; every process the script starts inherits it.
set -eu
set -o pipefail

REAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REAL_NAME=$(basename "$0" .sh)

fail() { echo "$REAL_NAME: $*" >&2; exit 1; }

# need PROGRAM PACKAGE: the program must be installed (.ci/run installs it)
need() {
    command -v "$1" >/dev/null 2>&1 || fail "$1 is not installed (Debian package $2; .ci/run installs it)"
}

# hakmem must really be in the processes this script starts
check_hakmem() {
    [ "${HAKTEST_ALLOW_SYSTEM:-}" = 1 ] && return 0
    grep -q libhakmem /proc/self/maps ||
        fail "libhakmem is not mapped into this script's processes (LD_PRELOAD=${LD_PRELOAD:-})"
}

# a scratch directory, removed at exit
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-$REAL_NAME.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# expect NAME FILE: FILE must equal tests/real/NAME.expected
expect() {
    if ! cmp -s "$REAL_DIR/$1.expected" "$2"; then
        echo "$REAL_NAME: output differs from tests/real/$1.expected (< expected, > got):" >&2
        diff "$REAL_DIR/$1.expected" "$2" | head -n 20 >&2 || true
        exit 1
    fi
}
