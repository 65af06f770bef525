#!/usr/bin/env bash
# build.sh TARGET...: a thin wrapper over make, kept for the commands in the
# original notes. `./build.sh larson_hakmem` builds out/release/larson_hakmem.
# With no target it builds the libraries (release and debug).
set -euo pipefail
cd "$(dirname "$0")"
exec make -j"$(nproc)" "$@"
