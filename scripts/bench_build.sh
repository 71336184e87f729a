# Sourced by the benchmark scripts: installs what is missing and builds the
# targets a benchmark runs, in $ZPAGED_BUILD_DIR (default build/), saying
# what it does. Sets `build` to that directory.
#
#   source scripts/bench_build.sh
#   bench_build zpaged zpagectl zpaged-bench corpus
build=${ZPAGED_BUILD_DIR:-build}

bench_build() {
  echo "==> checking dependencies"
  scripts/install-deps.sh
  echo "==> building $* ($build/)"
  cmake -S . -B "$build" -G Ninja >/dev/null
  cmake --build "$build" -j "$(nproc)" --target "$@" >/dev/null
}
