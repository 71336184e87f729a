#!/usr/bin/env bash
# zpaged against Redis on this machine: installs what is missing, builds,
# then for each run starts a fresh zpaged and a fresh redis-server on
# loopback, runs zpaged-bench against both, and stops them. Prints the
# medians of all runs, the zpaged/Redis ratios, the codec and gRPC floors
# and the issue's targets met or missed.
#
#   scripts/bench.sh                  5 runs of each configuration
#   scripts/bench.sh --runs 3 --pages 100000
#
# Five configurations, each with Redis beside zpaged in the same run:
#   throughput  2 channels x 16 pages in flight, streams and unary calls
#   batch       2 channels x 4 PutBatch/GetBatch calls of 16 pages in flight
#               (128 pages), Redis pipelined 64 deep on each channel
#   edge        the same shape through the client library, pages compressed
#               at the edge (LZ4) and whole (none), against Redis with the
#               client's LZ4; bytes on the wire per page for each
#   clients     32 channels x 1 unary call (Redis: 32 clients, no pipeline)
#   latency     1 channel, 1 unary call in flight
# Raw per-run JSON is kept in the directory printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5 pages=200000 latency_pages=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --pages) pages=$2; shift 2 ;;
    --latency_pages) latency_pages=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--pages N] [--latency_pages N]" >&2; exit 2 ;;
  esac
done
source scripts/bench_build.sh
bench_build zpaged zpagectl zpaged-bench grpc-floor page_codec_bench corpus

out=$(mktemp -d /tmp/zpaged-bench.XXXXXX)
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
start_servers() {
  port=$(free_port) redis_port=$(free_port)
  "$build/server/zpaged" --listen="127.0.0.1:$port" --metrics_listen=127.0.0.1:0 \
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
  echo "bench: the servers did not come up; see $out/*.log" >&2
  exit 1
}
run_config() {  # run_config NAME BENCH_FLAGS...
  local name=$1; shift
  for run in $(seq "$runs"); do
    echo "==> $name, run $run of $runs"
    start_servers
    "$build/client/bench/zpaged-bench" --server="127.0.0.1:$port" \
      --server_pid="$server_pid" --peer="redis://127.0.0.1:$redis_port" \
      --json "$@" >"$out/$name.$run.json"
    stop_servers
  done
}

run_config throughput --channels=2 --depth=16 --modes=stream,unary --pages="$pages"
run_config batch --channels=2 --depth=64 --modes=batch --batch=16 --pages="$pages"
run_config edge --channels=2 --depth=64 --modes=client --batch=16 \
  --client_compression=lz4,none --peer_flavours=lz4 --pages="$pages"
run_config clients --channels=32 --depth=1 --modes=unary --pages="$pages"
run_config latency --channels=1 --depth=1 --modes=unary --pages="$latency_pages"
echo "==> the gRPC floor: grpc-floor, a no-op call beside a Get, 10000 of each"
start_servers
"$build/client/bench/grpc-floor" --server="127.0.0.1:$port" >"$out/grpc-floor.txt"
stop_servers
echo "==> the codec floor: page_codec_bench, medians of 5"
"$build/server/codec/page_codec_bench" --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=true --benchmark_format=json \
  >"$out/floor.json" 2>/dev/null

python3 scripts/bench_summary.py "$out" "$runs"
echo
echo "the gRPC floor at 1 call in flight (one run):"
sed 's/^/  /' "$out/grpc-floor.txt"
echo
echo "raw results: $out"
echo "reproduce: scripts/bench.sh --runs $runs --pages $pages --latency_pages $latency_pages"
