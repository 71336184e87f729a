#!/usr/bin/env bash
# Installs what is missing, builds zpaged, zpagectl and the NBD bridge (what
# the README uses next), and runs the server on its defaults (gRPC on
# 127.0.0.1:50051). Extra arguments go to zpaged, e.g.
#   scripts/run-server.sh --tenant_max_bytes=256M
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> checking build dependencies"
scripts/install-deps.sh
echo "==> configuring and building (build/)"
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j "$(nproc)" --target zpaged zpagectl nbdkit-zpaged-plugin
echo "==> starting zpaged; stop it with Ctrl-C"
exec build/server/zpaged "$@"
