#!/usr/bin/env bash
# install-test-deps.sh: the Debian packages `make test` uses (compilers,
# pkg-config and valgrind for the install and memcheck tests, clang for
# libFuzzer, and the real programs the suite runs with hakmem preloaded).
# Run as root (or with sudo); .ci/run calls it before `make test`.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq build-essential g++ make python3 pkg-config valgrind \
    clang libpython3.11-testsuite sqlite3 jq perl xz-utils zstd git >/dev/null
