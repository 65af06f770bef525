#!/usr/bin/env bash
# test_install.sh: `make install` and `make uninstall` (mk/install.mk), the
# pkg-config files and the `hakmem` command. Run by tests/run.sh.
#
# 1. make install PREFIX=TMP/prefix: exactly the expected files; programs
#    built with `pkg-config --cflags --libs hakmem` (and hakmem-prefix, and
#    libhakmem.a) run with the installed libraries; a plain program run
#    through TMP/prefix/bin/hakmem has the installed libhakmem.so (or, with
#    --debug or --secure, libhakmem-debug.so or libhakmem-secure.so)
#    preloaded; the command's flags; then
#    make uninstall leaves no file behind, and only its own files go.
# 2. make install DESTDIR=TMP/stage PREFIX=/usr/local: everything under
#    TMP/stage/usr/local, no installed file mentions TMP/stage, the staged
#    hakmem command finds the staged library (found relative to itself);
#    make uninstall with the same DESTDIR leaves nothing.
# "hakmem in use" is checked by tests/install_probe.c: hak_owns (direct or
# found with dlsym) owns the blocks, and /proc/self/maps says which file its
# code comes from.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$PWD
CC=${CC:-cc}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-install.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT

fails=0
fail() {
    echo "test_install: FAIL: $*" >&2
    fails=$((fails + 1))
}
die() {
    echo "test_install: FAIL: $*" >&2
    exit 1
}
step() { echo "== $*"; }

# make in this tree; the outer make's settings (jobserver, -j, variables
# given on its command line) are not passed on. LDCONFIG=true: the test
# leaves the system's dynamic linker cache alone.
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$ROOT" --no-print-directory LDCONFIG=true "$@" \
        >"$TMP/make.log" 2>&1 || {
        tail -n 20 "$TMP/make.log" >&2
        die "make $* failed"
    }
}

command -v pkg-config >/dev/null || die "pkg-config is not installed (apt-get install pkg-config)"

version=$(sed -n 's/^#define HAKMEM_VERSION_MAJOR[[:space:]]*//p' include/hakmem.h).$(sed -n 's/^#define HAKMEM_VERSION_MINOR[[:space:]]*//p' include/hakmem.h)

# installed_files DIR: every file and link under DIR, relative, sorted
installed_files() {
    (cd "$1" && find . \( -type f -o -type l \) -printf '%P\n' | LC_ALL=C sort)
}

# expect_files DIR SUBDIR: DIR holds exactly the installed set, under SUBDIR
expect_files() {
    local want got
    want=$(for f in bin/hakmem include/hakmem.h lib/libhakmem.so lib/libhakmem.a \
        lib/libhakmem-prefix.so lib/libhakmem-prefix.a lib/libhakmem-debug.so lib/libhakmem-secure.so \
        lib/pkgconfig/hakmem.pc lib/pkgconfig/hakmem-prefix.pc; do
        echo "$2$f"
    done | LC_ALL=C sort)
    got=$(installed_files "$1")
    if [ "$want" != "$got" ]; then
        fail "installed files differ from the expected set:"
        diff <(echo "$want") <(echo "$got") | sed 's/^/    /' >&2
    fi
}

# run_probe NAME EXPECTED_OWNER BUILD COMMAND...
# BUILD: release (no live-block count), debug (a count) or any
# runs the probe; it must succeed, with its code from EXPECTED_OWNER
run_probe() {
    local name=$1 owner=$2 build=$3
    shift 3
    local out
    if ! out=$("$@" 2>"$TMP/probe.err"); then
        fail "$name: probe failed: $(cat "$TMP/probe.err") $out"
        return
    fi
    if [ -s "$TMP/probe.err" ]; then
        fail "$name: unexpected output on stderr: $(cat "$TMP/probe.err")"
    fi
    local got_owner got_live
    got_owner=$(sed -n 's/^owner: //p' <<<"$out")
    got_live=$(sed -n 's/^live: //p' <<<"$out")
    if [ "$got_owner" != "$(readlink -f "$owner")" ]; then
        fail "$name: hak_owns comes from '$got_owner', not $owner"
    fi
    if ! grep -qx ok <<<"$out"; then
        fail "$name: no 'ok' from the probe: $out"
    fi
    # the release build counts no live blocks (-1), the debug build does
    if [ "$build" = release ] && [ "$got_live" != -1 ]; then
        fail "$name: hak_live_blocks() = $got_live, expected -1 from the release build"
    fi
    if [ "$build" = debug ] && ! [[ "$got_live" =~ ^[0-9]+$ ]]; then
        fail "$name: hak_live_blocks() = $got_live, expected a count from the debug build"
    fi
    echo "ok: $name ($got_owner)"
}

# ---------------------------------------------------------------------------
step "make install PREFIX=$TMP/prefix"
P=$TMP/prefix
mk install PREFIX="$P"
expect_files "$P" ""
[ -x "$P/bin/hakmem" ] || fail "$P/bin/hakmem is not executable"
cmp -s include/hakmem.h "$P/include/hakmem.h" || fail "installed hakmem.h differs from include/hakmem.h"
cmp -s out/release/libhakmem.so "$P/lib/libhakmem.so" || fail "libhakmem.so is not the release build"
cmp -s out/debug/libhakmem.so "$P/lib/libhakmem-debug.so" || fail "libhakmem-debug.so is not the debug build"
cmp -s out/secure/libhakmem.so "$P/lib/libhakmem-secure.so" || fail "libhakmem-secure.so is not the secure build"

step "pkg-config"
export PKG_CONFIG_PATH=$P/lib/pkgconfig
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
flags=$(pkg-config --cflags --libs hakmem) || die "pkg-config --cflags --libs hakmem failed"
echo "hakmem: $flags"
for want in "-I$P/include" "-L$P/lib" -lhakmem; do
    [[ " $flags " == *" $want "* ]] || fail "pkg-config --cflags --libs hakmem gives '$flags', without $want"
done
pflags=$(pkg-config --cflags --libs hakmem-prefix) || die "pkg-config --cflags --libs hakmem-prefix failed"
echo "hakmem-prefix: $pflags"
[[ " $pflags " == *" -lhakmem-prefix "* ]] || fail "hakmem-prefix.pc gives '$pflags', without -lhakmem-prefix"
[ "$(pkg-config --modversion hakmem)" = "$version" ] ||
    fail "pkg-config --modversion hakmem is '$(pkg-config --modversion hakmem)', hakmem.h says $version"
libdir=$(pkg-config --variable=libdir hakmem)
[ "$libdir" = "$P/lib" ] || fail "pkg-config --variable=libdir hakmem is '$libdir', not $P/lib"

step "build against the installed hakmem"
B=$TMP/build
mkdir -p "$B"
probe=tests/install_probe.c
# shellcheck disable=SC2086  # the flags are words
$CC -O2 -Wall -DPROBE_LINKED $probe -o "$B/linked" $flags -Wl,-rpath,"$libdir" -ldl ||
    die "cannot build a program with pkg-config --cflags --libs hakmem"
# shellcheck disable=SC2086
$CC -O2 -Wall -DPROBE_PREFIX $probe -o "$B/prefix" $pflags -Wl,-rpath,"$libdir" -ldl ||
    die "cannot build a program with pkg-config --cflags --libs hakmem-prefix"
# shellcheck disable=SC2046
$CC -O2 -Wall -DPROBE_LINKED -DPROBE_STATIC $probe -o "$B/static" $(pkg-config --cflags hakmem) \
    -L"$libdir" -Wl,-Bstatic -lhakmem -Wl,-Bdynamic $(pkg-config --static --libs-only-other hakmem) -ldl ||
    die "cannot build a program with the installed libhakmem.a"
# shellcheck disable=SC2046
$CC -O2 -Wall $probe -o "$B/plain" $(pkg-config --cflags hakmem) -ldl ||
    die "cannot build the plain program"

# the programs are run with no LD_PRELOAD of their own (as the test runner
# may have preloaded something)
run_probe "linked with -lhakmem" "$P/lib/libhakmem.so" release env -u LD_PRELOAD "$B/linked"
run_probe "linked with -lhakmem-prefix" "$P/lib/libhakmem-prefix.so" release env -u LD_PRELOAD "$B/prefix"
run_probe "linked with libhakmem.a" "$B/static" release env -u LD_PRELOAD "$B/static"
if readelf -dW "$B/static" | grep -q 'NEEDED.*libhakmem'; then
    fail "the program linked with libhakmem.a needs libhakmem.so"
fi
env -u LD_PRELOAD "$B/plain" >/dev/null 2>&1
rc=$?
[ "$rc" -eq 3 ] || fail "the plain program without hakmem: exit status $rc, expected 3 (no hak_owns)"

step "the hakmem command"
H=$P/bin/hakmem
run_probe "hakmem PROG" "$P/lib/libhakmem.so" release env -u LD_PRELOAD "$H" "$B/plain"
run_probe "hakmem --debug PROG" "$P/lib/libhakmem-debug.so" debug env -u LD_PRELOAD "$H" --debug "$B/plain"
run_probe "hakmem --secure PROG" "$P/lib/libhakmem-secure.so" any env -u LD_PRELOAD "$H" --secure "$B/plain"
run_probe "hakmem -- PROG" "$P/lib/libhakmem.so" release env -u LD_PRELOAD "$H" -- "$B/plain"
# found through a link to the command elsewhere, too
ln -s "$H" "$TMP/hakmem-link"
run_probe "link to hakmem" "$P/lib/libhakmem.so" release env -u LD_PRELOAD "$TMP/hakmem-link" "$B/plain"

# the flags become HAKMEM_ variables, and an LD_PRELOAD already there stays
out=$(LD_PRELOAD=libdl.so.2 "$H" --stats --verbose --policy=eager --ss-retain=8 \
    --thp=never --no-crash-report env 2>/dev/null)
for want in HAKMEM_STATS=1 HAKMEM_VERBOSE=1 HAKMEM_FREE_POLICY=eager HAKMEM_SS_RETAIN=8 \
    HAKMEM_THP=never HAKMEM_CRASH_REPORT=0 "LD_PRELOAD=$P/lib/libhakmem.so:libdl.so.2"; do
    grep -qxF -- "$want" <<<"$out" || fail "hakmem --stats ... env: no $want in the environment"
done
out=$(env -u LD_PRELOAD "$H" --policy lazy env 2>/dev/null)
grep -qx HAKMEM_FREE_POLICY=lazy <<<"$out" || fail "hakmem --policy lazy did not set HAKMEM_FREE_POLICY=lazy"
# the library itself reads them: a bad word is reported, and the program runs
err=$(env -u LD_PRELOAD "$H" --policy=bogus "$B/plain" 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 0 ] || fail "hakmem --policy=bogus PROG: exit status $rc"
[[ "$err" == *'HAKMEM_FREE_POLICY="bogus"'* ]] ||
    fail "hakmem --policy=bogus PROG: the library did not report the bad value (stderr: $err)"

out=$("$H" --version) || fail "hakmem --version: exit status $?"
[ "$out" = "hakmem $version" ] || fail "hakmem --version says '$out', expected 'hakmem $version'"
out=$("$H" --help) || fail "hakmem --help: exit status $?"
[[ "$out" == usage:* ]] || fail "hakmem --help does not start with usage:"
[ "$("$H" --print-lib)" = "$(readlink -f "$P/lib/libhakmem.so")" ] || fail "hakmem --print-lib: $("$H" --print-lib)"
"$H" sh -c 'exit 7'
rc=$?
[ "$rc" -eq 7 ] || fail "hakmem sh -c 'exit 7': exit status $rc, not the program's"
"$H" >/dev/null 2>&1
rc=$?
[ "$rc" -eq 125 ] || fail "hakmem with no program: exit status $rc, expected 125"
"$H" "$TMP/none" >/dev/null 2>&1
rc=$?
[ "$rc" -eq 127 ] || fail "hakmem on a missing program: exit status $rc, expected 127"
echo "ok: hakmem command flags"

step "make uninstall PREFIX=$TMP/prefix"
echo keep >"$P/lib/not-hakmem.txt"
mk uninstall PREFIX="$P"
left=$(installed_files "$P")
if [ "$left" != lib/not-hakmem.txt ]; then
    fail "after make uninstall: expected only lib/not-hakmem.txt (not installed by hakmem), found: $(tr "\n" " " <<<"$left")"
fi
echo "ok: uninstall"

# ---------------------------------------------------------------------------
step "make install DESTDIR=$TMP/stage PREFIX=/usr/local"
D=$TMP/stage
mk install DESTDIR="$D" PREFIX=/usr/local
expect_files "$D" usr/local/
if grep -rlF -- "$D" "$D" >/dev/null 2>&1; then
    fail "installed files mention DESTDIR: $(grep -rlF -- "$D" "$D")"
fi
grep -qx 'prefix=/usr/local' "$D/usr/local/lib/pkgconfig/hakmem.pc" ||
    fail "the staged hakmem.pc does not say prefix=/usr/local"
# the .pc file is relocatable: its paths are under ${prefix}
out=$(PKG_CONFIG_PATH=$D/usr/local/lib/pkgconfig pkg-config --define-prefix --cflags hakmem)
[[ "$out" == *"-I$D/usr/local/include"* ]] ||
    fail "pkg-config --define-prefix --cflags hakmem with the staged file gives '$out'"
# the staged command finds the staged library: nothing is hard-coded
[ "$("$D/usr/local/bin/hakmem" --print-lib)" = "$(readlink -f "$D/usr/local/lib/libhakmem.so")" ] ||
    fail "the staged hakmem command preloads $("$D/usr/local/bin/hakmem" --print-lib)"
run_probe "staged hakmem PROG" "$D/usr/local/lib/libhakmem.so" release \
    env -u LD_PRELOAD "$D/usr/local/bin/hakmem" "$B/plain"
mk uninstall DESTDIR="$D" PREFIX=/usr/local
left=$(installed_files "$D")
[ -z "$left" ] || fail "after make uninstall DESTDIR=...: left behind: $(tr "\n" " " <<<"$left")"
echo "ok: staged install and uninstall"

if [ "$fails" -gt 0 ]; then
    echo "test_install: $fails failure(s)" >&2
    exit 1
fi
echo "test_install: all passed"
