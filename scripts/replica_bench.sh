#!/usr/bin/env bash
# A tier at two copies against one server, and against Redis with one
# replica, through the client library on the page corpus: for each run,
# three fresh zpaged servers and a fresh Redis primary with a replica
# (replicaof), then zpaged-bench twice, in turn, each beside Redis + replica
# with the pages compressed by the client with LZ4 (as zpaged stores them)
# and the same pages in flight (2 channels x 64):
#   one   the first server alone, R=1 (--modes=client);
#   tier  all three, --replicas=2.
# Memory per page counts every copy: the three servers' resident memory,
# Redis primary's and replica's used_memory (once the replica caught up).
# Redis acknowledges a SET before its replica has it; the tier acknowledges
# a Put once both copies are stored. Prints the medians and ratios.
#
#   scripts/replica_bench.sh              5 runs of 100,000 pages
#   scripts/replica_bench.sh --runs 3 --pages 50000
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5 pages=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --pages) pages=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--pages N]" >&2; exit 2 ;;
  esac
done
source scripts/bench_build.sh
bench_build zpaged zpagectl zpaged-bench corpus

out=$(mktemp -d /tmp/zpaged-replica-bench.XXXXXX)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap stop_all EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_all() {
  servers="" zpaged_pids=""
  for i in 0 1 2; do
    port=$(free_port)
    "$build/server/zpaged" --listen="127.0.0.1:$port" --metrics_listen= \
      --node_name="zpaged-$i" >>"$out/zpaged.log" 2>&1 &
    pids+=($!)
    zpaged_pids+="${zpaged_pids:+,}$!"
    servers+="${servers:+,}zpaged-$i=127.0.0.1:$port"
    [ "$i" -eq 0 ] && { first="127.0.0.1:$port"; first_pid=$!; }
    for _ in $(seq 100); do
      "$build/client/zpagectl" --server="127.0.0.1:$port" health >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  primary=$(free_port) replica=$(free_port)
  for p in "$primary" "$replica"; do
    redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --dir "$out" \
      $([ "$p" = "$replica" ] && echo "--replicaof 127.0.0.1 $primary") \
      >>"$out/redis.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 100); do
    redis-cli -p "$replica" info replication 2>/dev/null | grep -q "master_link_status:up" && return 0
    sleep 0.1
  done
  echo "replica_bench: the Redis replica did not connect; see $out/redis.log" >&2
  exit 1
}

bench=("$build/client/bench/zpaged-bench" --json --channels=2 --depth=64
       --batch=16 --pages="$pages" --peer_flavours=lz4)
for run in $(seq "$runs"); do
  echo "==> run $run of $runs: one server (R=1), then three at R=2, each beside Redis + replica"
  start_all
  "${bench[@]}" --server="$first" --server_pid="$first_pid" --modes=client \
    --peer="redis://127.0.0.1:$primary" --peer_replica="redis://127.0.0.1:$replica" \
    >"$out/one.$run.json"
  "${bench[@]}" --server="$servers" --replicas=2 --server_pid="$zpaged_pids" \
    --peer="redis://127.0.0.1:$primary" --peer_replica="redis://127.0.0.1:$replica" \
    >"$out/tier.$run.json"
  stop_all
done

python3 - "$out" "$runs" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
def rows(name):
    got = {}
    for run in range(1, runs + 1):
        for r in json.load(open(f"{out}/{name}.{run}.json"))["results"]:
            got.setdefault((r["target"], r["mode"]), []).append(r)
    return got
def median(results, field):
    return statistics.median(r[field] for r in results)
one, tier = rows("one"), rows("tier")
(z1,) = [v for (t, m), v in one.items() if t == "zpaged"]
(z2,) = [v for (t, m), v in tier.items() if t == "zpaged"]
redis = one[("redis", "lz4")] + tier[("redis", "lz4")]
print(f"\nmedians of {runs} runs, 2 channels x 64 pages in flight")
print(f"{'':32}{'put pages/s':>14}{'get pages/s':>14}{'bytes/page':>12}")
for name, results in (("zpaged, one server (R=1)", z1),
                      ("zpaged, tier R=2 over 3", z2),
                      ("Redis + replica, client LZ4", redis)):
    print(f"{name:32}{median(results, 'put_pages_per_s'):>14.0f}"
          f"{median(results, 'get_pages_per_s'):>14.0f}"
          f"{median(results, 'memory_bytes_per_page'):>12.0f}")
print()
print(f"tier R=2 / one server: put {median(z2, 'put_pages_per_s') / median(z1, 'put_pages_per_s'):.2f}x, "
      f"memory per page {median(z2, 'memory_bytes_per_page') / median(z1, 'memory_bytes_per_page'):.2f}x")
print(f"tier R=2 / Redis + replica: put {median(z2, 'put_pages_per_s') / median(redis, 'put_pages_per_s'):.2f}x, "
      f"get {median(z2, 'get_pages_per_s') / median(redis, 'get_pages_per_s'):.2f}x, "
      f"memory per page {median(z2, 'memory_bytes_per_page') / median(redis, 'memory_bytes_per_page'):.2f}x")
PY
echo
echo "raw results: $out"
echo "reproduce: scripts/replica_bench.sh --runs $runs --pages $pages"
