# bench-lib.sh: allocator discovery shared by scripts/bench.sh,
# scripts/bench-memory.sh and scripts/bench-instr.sh (sourced, not run).
#
#   find_allocators BIN "BENCH..." WANTED [PEERS_DIR]
#
# looks for each allocator, in table order (ALL_ALLOCATORS: hakmem
# hakmem-secure glibc, the Debian peers mimalloc jemalloc tcmalloc, then the
# peers of PEERS_DIR mimalloc-3.4.3 mimalloc-2.4.1 snmalloc rpmalloc), only
# those in the comma-separated WANTED list if it is not empty, and sets:
#   ALLOCS        the allocators found
#   SUFFIX[a]     binary suffix: BIN/BENCH_hakmem for hakmem, BIN/BENCH_system
#                 for glibc and the peers
#   PRELOAD[a]    library preloaded into the _system binary ('' for none)
#   NOTES         one line per allocator skipped, and why
#   MISSING_PKGS  Debian packages of the peers not installed
#   PEERS_FOUND   the peers (Debian or PEERS_DIR) found
#   PEERS_MISSING the peers looked for and not found, each "NAME: why"
#   PEERS_DIR     the folder, made absolute if it exists ('' = not used)
# hakmem needs every BENCH_hakmem binary; the Debian peers need their library
# from the packages installed by scripts/install-peers.sh; the others their
# library in PEERS_DIR (../shared/peers from the repository root by default
# in the Makefile; see its README.md), skipped if it is empty or missing.
# WANTED names that are no allocator are noted (NOTES) and ignored.
#
# Also: report_missing, peers_summary, allocator_version NAME,
# machine_description, ensure_gnuplot INSTALL LOG and read_kv FILE... (each
# described below).

ALL_ALLOCATORS="hakmem hakmem-secure glibc mimalloc jemalloc tcmalloc mimalloc-3.4.3 mimalloc-2.4.1 snmalloc rpmalloc"
PEERS_DIR=""

# Debian peer NAME -> "library-file debian-package"
peer_info() {
    case "$1" in
        mimalloc) echo "libmimalloc.so.2 libmimalloc2.0" ;;
        jemalloc) echo "libjemalloc.so.2 libjemalloc2" ;;
        tcmalloc) echo "libtcmalloc_minimal.so.4 libtcmalloc-minimal4" ;;
    esac
}

# Peer NAME of the PEERS_DIR folder -> its library's file name, or failure.
peer_dir_file() {
    case "$1" in
        mimalloc-3.4.3|mimalloc-2.4.1|snmalloc|rpmalloc) echo "lib$1.so" ;;
        *) return 1 ;;
    esac
}

# peer NAME -> path of its library, or failure
peer_lib() {
    local file dir multiarch
    if file=$(peer_dir_file "$1"); then
        [ -n "$PEERS_DIR" ] && [ -f "$PEERS_DIR/$file" ] || return 1
        echo "$PEERS_DIR/$file"
        return 0
    fi
    multiarch=$(gcc -print-multiarch 2>/dev/null || true)
    file=$(peer_info "$1" | cut -d' ' -f1)
    [ -n "$file" ] || return 1
    for dir in "/usr/lib/${multiarch:-x86_64-linux-gnu}" /usr/lib /usr/lib64 /usr/local/lib; do
        if [ -e "$dir/$file" ]; then echo "$dir/$file"; return 0; fi
    done
    return 1
}

# The row of PEERS_DIR/README.md's table whose first cell is FILE, as
# "version|commit (date)" (the cells after the project name), or nothing.
peer_dir_readme_row() {
    [ -n "$PEERS_DIR" ] && [ -f "$PEERS_DIR/README.md" ] || return 0
    awk -F'|' -v f="$1" '
        function trim(x) { gsub(/^[ \t]+|[ \t]+$/, "", x); return x }
        trim($2) == f { print trim($3) "|" trim($4); exit }' "$PEERS_DIR/README.md"
}

# Version of a PEERS_DIR peer: the one in its file name (libmimalloc-3.4.3.so),
# else the words after the project in the README's table ("main", "2.0.x");
# then the commit and its date from the table, if it names them.
peer_dir_version() {
    local file row ver commit
    file=$(peer_dir_file "$1")
    row=$(peer_dir_readme_row "$file")
    ver=$(printf '%s\n' "$file" | sed -n 's/^lib[a-z]*-\([0-9][0-9.]*[0-9]\)\.so$/\1/p')
    if [ -z "$ver" ] && [ -n "$row" ]; then
        # "microsoft/snmalloc (main)" -> "main"; "mjansson/rpmalloc 2.0.x" -> "2.0.x"
        ver=$(printf '%s\n' "${row%%|*}" | sed 's/^[^ ]*[ ]*//; s/^(\(.*\))$/\1/')
    fi
    commit=${row#*|}
    [ -n "$row" ] || commit=""
    if [ -n "$commit" ]; then
        # "152fbf26 (2026-07-20)" -> "commit 152fbf26, 2026-07-20"
        commit=$(printf '%s\n' "$commit" | sed 's/^\([^ ]*\) *(\(.*\))$/commit \1, \2/; t; s/^/commit /')
        echo "${ver:-?} ($commit)"
    else
        echo "${ver:-?}"
    fi
}

# Version of allocator NAME, for the report.
allocator_version() {
    case "$1" in
        hakmem|hakmem-secure) git describe --always --dirty 2>/dev/null || echo "(not in git)" ;;
        glibc) ldd --version 2>/dev/null | head -n1 | awk '{ print $NF }' ;;
        mimalloc|jemalloc|tcmalloc)
            dpkg-query -W -f='${Version}' "$(peer_info "$1" | cut -d' ' -f2)" 2>/dev/null || echo "?" ;;
        *) if peer_dir_file "$1" >/dev/null; then peer_dir_version "$1"; else echo "?"; fi ;;
    esac
}

find_allocators() {
    local bin=$1 benches=$2 wanted=$3 dir=${4-} a b lib pkg ok w why
    ALLOCS=() NOTES=() MISSING_PKGS=() PEERS_FOUND=() PEERS_MISSING=()
    declare -gA SUFFIX=() PRELOAD=()
    PEERS_DIR=""
    PEERS_DIR_GIVEN=$dir
    if [ -n "$dir" ] && [ -d "$dir" ]; then PEERS_DIR=$(cd "$dir" && pwd); fi
    for w in ${wanted//,/ }; do
        [[ " $ALL_ALLOCATORS " == *" $w "* ]] ||
            NOTES+=("$w: no such allocator (known: ${ALL_ALLOCATORS// /, })")
    done
    for a in $ALL_ALLOCATORS; do
        [ -z "$wanted" ] || [[ ",$wanted," == *",$a,"* ]] || continue
        case "$a" in
            hakmem)
                ok=1
                for b in $benches; do [ -x "$bin/${b}_hakmem" ] || ok=0; done
                if [ $ok = 1 ]; then
                    ALLOCS+=(hakmem); SUFFIX[hakmem]=hakmem; PRELOAD[hakmem]=""
                else
                    NOTES+=("hakmem: binaries missing in $bin (make benches)")
                fi ;;
            hakmem-secure)   # the secure build, preloaded (make secure)
                lib="$(cd "$bin/../secure" 2>/dev/null && pwd)/libhakmem.so"
                if [ -f "$lib" ]; then
                    ALLOCS+=(hakmem-secure); SUFFIX[hakmem-secure]=system; PRELOAD[hakmem-secure]=$lib
                else
                    NOTES+=("hakmem-secure: out/secure/libhakmem.so missing (make secure)")
                fi ;;
            glibc)
                ALLOCS+=(glibc); SUFFIX[glibc]=system; PRELOAD[glibc]="" ;;
            *)
                if lib=$(peer_lib "$a"); then
                    ALLOCS+=("$a"); SUFFIX[$a]=system; PRELOAD[$a]=$lib
                    PEERS_FOUND+=("$a")
                elif lib=$(peer_dir_file "$a"); then
                    if [ -z "$dir" ]; then
                        why="peers folder disabled (--peers-dir '')"
                    elif [ -z "$PEERS_DIR" ]; then
                        why="peers folder $dir not found"
                    else
                        why="$lib not in $dir"
                    fi
                    PEERS_MISSING+=("$a: $why")
                    NOTES+=("$a: $why")
                else
                    pkg=$(peer_info "$a" | cut -d' ' -f2)
                    MISSING_PKGS+=("$pkg")
                    PEERS_MISSING+=("$a: not installed (Debian package $pkg)")
                    NOTES+=("$a: not installed (Debian package $pkg)")
                fi ;;
        esac
    done
}

# Prints the skipped allocators and how to install missing peers (stderr).
report_missing() {
    local n
    for n in "${NOTES[@]+"${NOTES[@]}"}"; do echo "  skipped $n" >&2; done
    if [ ${#MISSING_PKGS[@]} -gt 0 ]; then
        echo "  to install the missing peers: sudo bash scripts/install-peers.sh" >&2
        echo "    (or: sudo apt-get install ${MISSING_PKGS[*]})" >&2
    fi
}

# Markdown lines for a report: which peers were present and which missing
# (of those looked for: not selected by WANTED counts as neither).
peers_summary() {
    local m
    if [ ${#PEERS_FOUND[@]} -gt 0 ]; then
        echo "Peers present: ${PEERS_FOUND[*]}."
    else
        echo "Peers present: none."
    fi
    if [ ${#PEERS_MISSING[@]} -gt 0 ]; then
        echo "Peers missing (left out of the tables):"
        for m in "${PEERS_MISSING[@]}"; do echo "- $m"; done
    else
        echo "Peers missing: none."
    fi
    if [ -n "$PEERS_DIR" ]; then
        echo "Peers folder: ${PEERS_DIR_GIVEN} (see its README.md for how they were built)."
    fi
}

# One line: CPUs, CPU model, kernel, distribution, compiler.
machine_description() {
    local cpu distro
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    distro=$( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null || echo "unknown distribution")
    echo "$(nproc) CPUs (${cpu:-unknown model}), Linux $(uname -r), $distro, $(gcc --version | head -n1)"
}

# ensure_gnuplot INSTALL LOG: succeeds if gnuplot can be run. If it is missing
# and INSTALL is 1, installs gnuplot-nox with apt-get first (as root, or with
# password-less sudo), apt's output going to LOG.
ensure_gnuplot() {
    local install=$1 log=$2 sudo=()
    command -v gnuplot >/dev/null 2>&1 && return 0
    [ "$install" = 1 ] || return 1
    echo "  gnuplot missing, installing gnuplot-nox" >&2
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    { "${sudo[@]+"${sudo[@]}"}" apt-get install -y --no-install-recommends gnuplot-nox ||
      { "${sudo[@]+"${sudo[@]}"}" apt-get update &&
        "${sudo[@]+"${sudo[@]}"}" apt-get install -y --no-install-recommends gnuplot-nox; }
    } >"$log" 2>&1 || { tail -n3 "$log" >&2; return 1; }
    command -v gnuplot >/dev/null 2>&1
}

# read_kv FILE...: reads the key=value words of the RESULT lines (a
# benchmark's stdout) and RUNSTAT lines (bench_runstat's stat file) of the
# files that exist into the global associative array KV, emptied first.
# Pure bash: forking tools for each of a few hundred runs would add seconds.
declare -gA KV
read_kv() {
    local file line w
    KV=()
    for file in "$@"; do
        [ -f "$file" ] || continue
        while IFS= read -r line; do
            case "$line" in
                "RESULT "*|"RUNSTAT "*)
                    for w in $line; do
                        [[ $w == *=* ]] && KV[${w%%=*}]=${w#*=}
                    done ;;
            esac
        done <"$file"
    done
}
