#!/usr/bin/env bash
# install-peers.sh: installs, from Debian's packages, what `make bench` compares
# hakmem with and draws its chart with:
#   libmimalloc2.0, libjemalloc2, libtcmalloc-minimal4  the peer allocators,
#                                                       preloaded into NAME_system
#   gnuplot-nox                                         draws out/bench/results.png
#   valgrind                                            used by `make bench-instr`
# Runs apt-get directly as root, else through sudo.
set -euo pipefail

PACKAGES=(libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4 gnuplot-nox valgrind)

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-peers.sh: must run as root (or with sudo available)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${PACKAGES[@]}"
