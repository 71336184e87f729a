#!/usr/bin/env bash
# Installs what is missing, builds zpaged, and runs the whole test suite:
# once in a plain build, once under AddressSanitizer+UndefinedBehaviorSanitizer
# and once under ThreadSanitizer; then runs each libFuzzer target briefly.
# ZPAGED_SANITIZERS picks the sanitizer builds ("address thread" by default,
# "" for none); ZPAGED_FUZZ_SECONDS the fuzzing time per target (15; 0 skips).
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
# The libFuzzer targets, briefly: ZPAGED_FUZZ_SECONDS per target (0 skips).
fuzz_seconds=${ZPAGED_FUZZ_SECONDS-15}
if [ "$fuzz_seconds" -gt 0 ]; then
  scripts/fuzz.sh "$fuzz_seconds"
fi
step "all suites passed"
