#!/usr/bin/env bash
# Installs what is missing, builds zpaged and runs the storage core benchmark.
# (The next step of the project makes this start the server.)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> checking build dependencies"
scripts/install-deps.sh
echo "==> building"
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j "$(nproc)"
echo "==> running zbud_bench"
exec build/server/core/zbud_bench "$@"
