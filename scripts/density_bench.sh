#!/usr/bin/env bash
# Memory per stored page and read speed of each pool driver and compressor,
# with Redis holding raw and client-compressed pages beside it in the same
# runs (issue 14's table). Installs what is missing, builds, then for each
# run and each of zbud/dense × lz4/zstd starts a fresh zpaged and a fresh
# redis-server on loopback and runs zpaged-bench twice:
#   batch    --pages pages in PutBatch/GetBatch calls, Redis pipelined; its
#            resident growth over the Put phase per page is the memory figure
#   latency  one unary Get in flight, zpaged only
# Prints medians of all runs, the ratios the issue sets targets for, and the
# raw JSON's directory.
#
#   scripts/density_bench.sh                  5 runs of 20,000 pages
#   scripts/density_bench.sh --runs 3 --pages 100000
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5 pages=20000 latency_pages=5000
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --pages) pages=$2; shift 2 ;;
    --latency_pages) latency_pages=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--pages N] [--latency_pages N]" >&2; exit 2 ;;
  esac
done
source scripts/bench_build.sh
bench_build zpaged zpagectl zpaged-bench corpus

out=$(mktemp -d /tmp/zpaged-density.XXXXXX)
server_pid="" redis_pid=""
stop_servers() {
  for pid in $server_pid $redis_pid; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  server_pid="" redis_pid=""
}
trap stop_servers EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
start_servers() {  # start_servers POOL COMPRESSOR
  port=$(free_port) redis_port=$(free_port)
  "$build/server/zpaged" --listen="127.0.0.1:$port" --pool="$1" --compressor="$2" \
    >>"$out/zpaged.log" 2>&1 &
  server_pid=$!
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    >>"$out/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do
    "$build/client/zpagectl" --server="127.0.0.1:$port" health >/dev/null 2>&1 &&
      redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "density_bench: the servers did not come up; see $out/*.log" >&2
  exit 1
}

for run in $(seq "$runs"); do
  for pool in zbud dense; do
    for compressor in lz4 zstd; do
      name=${pool}_$compressor
      echo "==> run $run of $runs: $pool + $compressor, $pages pages in batches, then Gets one at a time"
      start_servers "$pool" "$compressor"
      "$build/client/bench/zpaged-bench" --server="127.0.0.1:$port" \
        --server_pid="$server_pid" --peer="redis://127.0.0.1:$redis_port" \
        --modes=batch --depth=64 --pages="$pages" --json 2>/dev/null \
        >"$out/batch.$name.$run.json"
      "$build/client/bench/zpaged-bench" --server="127.0.0.1:$port" \
        --modes=unary --channels=1 --depth=1 --pages="$latency_pages" --json \
        2>/dev/null >"$out/latency.$name.$run.json"
      stop_servers
    done
  done
done

python3 scripts/density_summary.py "$out" "$runs"
echo
echo "raw results: $out"
echo "reproduce: scripts/density_bench.sh --runs $runs --pages $pages --latency_pages $latency_pages"
