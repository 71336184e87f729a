#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a
# bounded time, starting from the seed corpus in tests/fuzz/corpus/.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]    default 20; CI runs it short
#
# New inputs go to build-fuzz/corpus/TARGET (never into the repository);
# a crash leaves its input in build-fuzz/artifacts/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
targets=(zpool_ops_fuzzer page_decode_fuzzer request_fuzzer)

echo "==> building the fuzz targets (clang, build-fuzz/)"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DZPAGED_FUZZ=ON -DZPAGED_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}"

mkdir -p build-fuzz/artifacts
for target in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$target
  mkdir -p "$corpus"
  echo "==> fuzzing $target for ${seconds}s"
  build-fuzz/tests/fuzz/$target "$corpus" "tests/fuzz/corpus/$target" \
    -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix=build-fuzz/artifacts/"$target"- 2>build-fuzz/$target.log ||
    { tail -40 build-fuzz/$target.log; echo "fuzz: $target FAILED"; exit 1; }
  grep -E "stat::number_of_executed_units|stat::new_units_added" build-fuzz/$target.log |
    sed "s/^/  $target: /"
done
echo "==> fuzzing found nothing"
