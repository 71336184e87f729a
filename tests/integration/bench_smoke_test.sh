#!/usr/bin/env bash
# zpaged-bench --quick against a real zpaged and a real redis-server: every
# mode and flavour stores and reads back every page intact, the report is
# well-formed, and the bench leaves no pages behind; so does a tier of three
# servers at two copies through the client library; grpc-floor runs and
# reports. Correctness only: no figure is judged here (that is
# scripts/bench.sh's job).
#
# Usage: bench_smoke_test.sh ZPAGED ZPAGECTL ZPAGED_BENCH GRPC_FLOOR CORPUS_DIR
set -euo pipefail
zpaged=$1 zpagectl=$2 bench=$3 grpc_floor=$4 corpus=$5
work=$(mktemp -d)
server_pid="" redis_pid="" tier_pids=()
cleanup() {
  for pid in "${tier_pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true
  [ -n "$redis_pid" ] && kill -9 "$redis_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port) redis_port=$(free_port)

"$zpaged" --listen="127.0.0.1:$port" --metrics_listen=127.0.0.1:0 \
  >"$work/server.log" 2>&1 &
server_pid=$!
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
  --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do
  "$zpagectl" --server="127.0.0.1:$port" health >/dev/null 2>&1 &&
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done

echo "quick run: zpaged stream + unary + batches of 7 + the library (whole pages, LZ4 at the edge), redis raw + lz4 + zstd"
"$bench" --quick --server="127.0.0.1:$port" --server_pid="$server_pid" \
  --peer="redis://127.0.0.1:$redis_port" --corpus="$corpus" --json \
  --modes=stream,unary,batch,client --client_compression=none,lz4 --batch=7 \
  >"$work/quick.json"
echo "grpc-floor: a no-op call beside a Get"
"$grpc_floor" --server="127.0.0.1:$port" --calls=50 >"$work/floor.txt"
grep -q "^Get / no-op: p50 [0-9.]*x, p99 [0-9.]*x$" "$work/floor.txt" ||
  { echo "FAILED: grpc-floor printed:"; cat "$work/floor.txt"; exit 1; }
echo "duration run: zpaged stream for 0.5 s per phase"
"$bench" --seconds=0.5 --modes=stream --server="127.0.0.1:$port" \
  --corpus="$corpus" --json >"$work/timed.json"

echo "tier run: three more servers, two copies of each page, through the library"
tier="" tier_ports=()
for i in 0 1 2; do
  tier_ports[$i]=$(free_port)
  "$zpaged" --listen="127.0.0.1:${tier_ports[$i]}" --metrics_listen= \
    --node_name="tier-$i" >"$work/tier-$i.log" 2>&1 &
  tier_pids+=($!)
  tier+="${tier:+,}tier-$i=127.0.0.1:${tier_ports[$i]}"
done
for i in 0 1 2; do
  for _ in $(seq 50); do
    "$zpagectl" --server="127.0.0.1:${tier_ports[$i]}" health >/dev/null 2>&1 && break
    sleep 0.1
  done
done
"$bench" --quick --server="$tier" --replicas=2 --corpus="$corpus" --json \
  --server_pid="$(IFS=,; echo "${tier_pids[*]}")" >"$work/tier.json"

python3 - "$work/quick.json" "$work/timed.json" "$work/tier.json" <<'PY'
import json, sys
quick = json.load(open(sys.argv[1]))
timed = json.load(open(sys.argv[2]))
tier = json.load(open(sys.argv[3]))
failures = []
def check(ok, what):
    print(("ok: " if ok else "FAILED: ") + what)
    if not ok:
        failures.append(what)

rows = {(r["target"], r["mode"]): r for r in quick["results"]}
check(sorted(rows) == [("redis", "lz4"), ("redis", "raw"), ("redis", "zstd"),
                       ("zpaged", "batch7"), ("zpaged", "client-lz4"),
                       ("zpaged", "client-none"), ("zpaged", "stream"),
                       ("zpaged", "unary")],
      f"one result per mode and target: {sorted(rows)}")
(t,) = tier["results"]
check(t["mode"] == "tier-lz4 R=2/3", f"the tier's mode: {t['mode']}")
rows[("zpaged", t["mode"])] = t
for (target, mode), r in sorted(rows.items()):
    name = f"{target} {mode}"
    check(r["put_pages"] == 2000 and r["get_pages"] == 2000,
          f"{name}: 2000 pages put and read ({r['put_pages']}, {r['get_pages']})")
    check(r["put_errors"] == 0 and r["get_errors"] == 0 and
          r["get_mismatches"] == 0 and r["delete_errors"] == 0,
          f"{name}: no errors, every page byte-exact ({r['first_error']})")
    for field in ("put_pages_per_s", "get_pages_per_s", "put_p50_us",
                  "put_p99_us", "get_p50_us", "get_p99_us"):
        check(isinstance(r[field], (int, float)) and r[field] > 0,
              f"{name}: {field} reported")
    check(r["memory_bytes_per_page"] is not None,
          f"{name}: server memory per page reported")
    check(r["put_wire_bytes_per_page"] > 0 and r["get_wire_bytes_per_page"] > 0,
          f"{name}: bytes on the wire per page reported")
# Compressed at the edge, a page crosses the wire in fewer bytes both ways.
for phase in ("put", "get"):
    edge = rows[("zpaged", "client-lz4")][f"{phase}_wire_bytes_per_page"]
    whole = rows[("zpaged", "client-none")][f"{phase}_wire_bytes_per_page"]
    check(edge < 0.8 * whole,
          f"{phase}: {edge:.0f} wire bytes a page at the edge, {whole:.0f} whole")
check(len(quick["ratios"]) == 15, "a ratio per zpaged mode and Redis flavour")

(t,) = timed["results"]
check(t["put_pages"] > 0 and t["get_pages"] > 0,
      f"duration mode ran ({t['put_pages']} put, {t['get_pages']} got)")
check(t["put_errors"] + t["get_errors"] + t["get_mismatches"] +
      t["delete_errors"] == 0, "duration mode: no errors or mismatches")
sys.exit(1 if failures else 0)
PY

# The bench deletes what it stored.
stored() {  # stored PORT TENANT
  "$zpagectl" --server="127.0.0.1:$1" --tenant="$2" stats --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_pages"])'
}
for tenant in bench-stream bench-unary bench-batch7 bench-client-none bench-client-lz4; do
  pages=$(stored "$port" "$tenant")
  [ "$pages" = 0 ] || { echo "FAILED: $tenant still holds $pages pages"; exit 1; }
done
for i in 0 1 2; do
  pages=$(stored "${tier_ports[$i]}" bench-tier-lz4)
  [ "$pages" = 0 ] || { echo "FAILED: tier-$i still holds $pages pages"; exit 1; }
done
keys=$(redis-cli -p "$redis_port" dbsize)
[ "$keys" = 0 ] || { echo "FAILED: Redis still holds $keys keys"; exit 1; }
echo "ok: nothing left behind"
