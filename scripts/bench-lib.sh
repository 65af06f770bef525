# bench-lib.sh: allocator discovery shared by scripts/bench.sh,
# scripts/bench-memory.sh and scripts/bench-instr.sh (sourced, not run).
#
#   find_allocators BIN "BENCH..." WANTED
#
# looks for each allocator, in table order hakmem glibc mimalloc jemalloc
# tcmalloc (only those in the comma-separated WANTED list, if not empty), and
# sets:
#   ALLOCS        the allocators found
#   SUFFIX[a]     binary suffix: BIN/BENCH_hakmem for hakmem, BIN/BENCH_system
#                 for glibc and the peers
#   PRELOAD[a]    library preloaded into the _system binary ('' for none)
#   NOTES         one line per allocator skipped, and why
#   MISSING_PKGS  Debian packages of the peers not installed
# hakmem needs every BENCH_hakmem binary; the peers need their library from
# the Debian packages installed by scripts/install-peers.sh.
#
# Also: report_missing, allocator_version NAME, machine_description,
# ensure_gnuplot INSTALL LOG and read_kv FILE... (each described below).

# peer NAME -> "library-file debian-package"
peer_info() {
    case "$1" in
        mimalloc) echo "libmimalloc.so.2 libmimalloc2.0" ;;
        jemalloc) echo "libjemalloc.so.2 libjemalloc2" ;;
        tcmalloc) echo "libtcmalloc_minimal.so.4 libtcmalloc-minimal4" ;;
    esac
}

# peer NAME -> path of its library, or failure
peer_lib() {
    local file dir multiarch
    multiarch=$(gcc -print-multiarch 2>/dev/null || true)
    file=$(peer_info "$1" | cut -d' ' -f1)
    for dir in "/usr/lib/${multiarch:-x86_64-linux-gnu}" /usr/lib /usr/lib64 /usr/local/lib; do
        if [ -e "$dir/$file" ]; then echo "$dir/$file"; return 0; fi
    done
    return 1
}

# Version of allocator NAME, for the report.
allocator_version() {
    case "$1" in
        hakmem|hakmem-secure) git describe --always --dirty 2>/dev/null || echo "(not in git)" ;;
        glibc) ldd --version 2>/dev/null | head -n1 | awk '{ print $NF }' ;;
        *) dpkg-query -W -f='${Version}' "$(peer_info "$1" | cut -d' ' -f2)" 2>/dev/null || echo "?" ;;
    esac
}

find_allocators() {
    local bin=$1 benches=$2 wanted=$3 a b lib pkg ok
    ALLOCS=() NOTES=() MISSING_PKGS=()
    declare -gA SUFFIX=() PRELOAD=()
    for a in hakmem hakmem-secure glibc mimalloc jemalloc tcmalloc; do
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
                else
                    pkg=$(peer_info "$a" | cut -d' ' -f2)
                    MISSING_PKGS+=("$pkg")
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
