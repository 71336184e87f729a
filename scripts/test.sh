#!/usr/bin/env bash
# Installs what is missing, builds zpaged, and runs the whole test suite:
# once in a plain build, once under AddressSanitizer+UndefinedBehaviorSanitizer
# and once under ThreadSanitizer. Set ZPAGED_SANITIZERS="" to skip the
# sanitizer builds, or to "address" for one of them.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
jobs=$(nproc)

step "checking build dependencies"
scripts/install-deps.sh

run_suite() {  # run_suite BUILD_DIR [SANITIZER]
  local dir=$1 sanitizer=${2:-}
  step "configuring ${dir} ${sanitizer:+(sanitizer: ${sanitizer})}"
  cmake -S . -B "$dir" -G Ninja -DZPAGED_SANITIZER="$sanitizer" >/dev/null
  step "building ${dir}"
  cmake --build "$dir" -j "$jobs"
  step "testing ${dir}"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 600)
}

run_suite build
for sanitizer in ${ZPAGED_SANITIZERS-address thread}; do
  run_suite "build-${sanitizer}" "$sanitizer"
done
step "all suites passed"
