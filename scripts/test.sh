#!/usr/bin/env bash
# Installs what is missing, builds zpaged, and runs the whole test suite:
# once in a plain build, once under AddressSanitizer+UndefinedBehaviorSanitizer
# and once under ThreadSanitizer. ZPAGED_SANITIZERS picks the sanitizer
# builds: "address thread" by default, "" for none.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
jobs=$(nproc)

step "checking build dependencies"
scripts/install-deps.sh

run_suite() {  # run_suite BUILD_DIR SANITIZER [CTEST_ARGS...]
  local dir=$1 sanitizer=$2
  shift 2
  step "configuring ${dir}${sanitizer:+ (sanitizer: ${sanitizer})}"
  cmake -S . -B "$dir" -G Ninja -DZPAGED_SANITIZER="$sanitizer" >/dev/null
  step "building ${dir}"
  cmake --build "$dir" -j "$jobs"
  step "testing ${dir} $*"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 600 "$@")
}

run_suite build ""
for sanitizer in ${ZPAGED_SANITIZERS-address thread}; do
  if [ "$sanitizer" = thread ]; then
    # Debian's gRPC and Abseil are not built with TSan: the ordering their
    # own locks give is invisible to it, so any test that runs gRPC reports
    # races inside gRPC. The unit tests (no gRPC) cover zpaged's concurrency:
    # the pool, and the store under eviction pressure.
    run_suite "build-${sanitizer}" "$sanitizer" -L unit
  else
    run_suite "build-${sanitizer}" "$sanitizer"
  fi
done
step "all suites passed"
