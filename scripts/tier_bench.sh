#!/usr/bin/env bash
# The NBD bridge over a tier against one server, on this machine, with fio:
# for each run, a fresh one-server setup (server=, R=1) and a fresh
# three-server tier (servers=, R=2) in turn, each measured the same way:
#   write   1 MiB sequential writes over the device (MB/s)
#   memory  the servers' pool bytes per block written (zpagectl stats)
#   read    4k random reads, one in flight, 10 s (mean, p50 and p99 latency)
# and for the tier only, after kill -9 of one server:
#   kill    the worst read of the first second after the kill: every read
#           completes within it, those of blocks the dead server held too
#   degraded 4k random reads, one in flight, 10 s, with the server dead
#           (from 5 s after the kill, repair_after=, the bridge's repair
#           sweep copies the dead server's blocks again beside them)
#   restore the sweep's time per GiB of blocks it checked
# Prints the medians of all runs and the ratios issue 23 sets targets for.
#
#   scripts/tier_bench.sh              3 runs, a 256 MiB device
#   scripts/tier_bench.sh --runs 5 --size 512
#   scripts/tier_bench.sh --repair_after 1000   the degraded reads without
#                                      the repair sweep running beside them
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3 size_mib=256 repair_after=5 repair_rate=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --size) size_mib=$2; shift 2 ;;
    --repair_after) repair_after=$2; shift 2 ;;
    --repair_rate) repair_rate=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--size MIB] [--repair_after SECONDS] [--repair_rate BLOCKS]" >&2; exit 2 ;;
  esac
done
source scripts/bench_build.sh
bench_build zpaged zpagectl nbdkit-zpaged-plugin

out=$(mktemp -d /tmp/zpaged-tier-bench.XXXXXX)
pids=() nbdkit_pid=""
stop_all() {
  [ -n "$nbdkit_pid" ] && { kill "$nbdkit_pid" 2>/dev/null; wait "$nbdkit_pid" 2>/dev/null || true; }
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  pids=() nbdkit_pid=""
}
trap stop_all EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_setup N REPLICAS: N fresh servers and a bridge over them.
start_setup() {
  local n=$1 replicas=$2 servers="" i port
  addresses=()
  for i in $(seq 0 $((n - 1))); do
    port=$(free_port)
    "$build/server/zpaged" --listen="127.0.0.1:$port" --metrics_listen= \
      --node_name="zpaged-$i" >>"$out/zpaged.log" 2>&1 &
    pids+=($!)
    addresses+=("127.0.0.1:$port")
    servers="$servers${servers:+,}zpaged-$i=127.0.0.1:$port"
    for _ in $(seq 100); do "$build/client/zpagectl" --server="127.0.0.1:$port" health >/dev/null 2>&1 && break; sleep 0.1; done
  done
  rm -f "$out/spill" "$out/nbd.sock"
  local target="servers=$servers replicas=$replicas repair_after=$repair_after repair_rate=$repair_rate"
  [ "$n" -eq 1 ] && target="server=${addresses[0]}"
  # shellcheck disable=SC2086
  # -v: the repair's "done in" lines are debug output.
  nbdkit -f -v -U "$out/nbd.sock" "$build/client/nbd/nbdkit-zpaged-plugin.so" $target \
    tenant=vm size=${size_mib}M spill="$out/spill" timeout=5 >>"$out/nbdkit.log" 2>&1 &
  nbdkit_pid=$!
  for _ in $(seq 100); do nbdinfo --size "nbd+unix:///?socket=$out/nbd.sock" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "tier_bench: the bridge did not start; see $out/nbdkit.log" >&2; exit 1
}
fio_json() {  # fio_json NAME ARGS...: one fio job on the bridge, JSON to $out/NAME
  local name=$1; shift
  fio --name="$name" --ioengine=nbd --uri="nbd+unix:///?socket=$out/nbd.sock" \
    --output-format=json --output="$out/$name" "$@" >/dev/null
}
pool_bytes() {  # the pool bytes of every server of the setup
  local total=0 a pages
  for a in "${addresses[@]}"; do
    pages=$("$build/client/zpagectl" --server="$a" --tenant=vm stats --json 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["pool_pages"])' || echo 0)
    total=$((total + pages * 4096))
  done
  echo "$total"
}

for run in $(seq "$runs"); do
  for setup in one tier; do
    echo "==> run $run of $runs: $setup"
    if [ "$setup" = one ]; then start_setup 1 1; else start_setup 3 2; fi
    fio_json "$setup.$run.write" --rw=write --bs=1m --iodepth=4 --size=${size_mib}m \
      --buffer_compress_percentage=60 --refill_buffers
    echo "$(pool_bytes) $((size_mib * 256))" >"$out/$setup.$run.memory"
    fio_json "$setup.$run.read" --rw=randread --bs=4k --iodepth=1 --time_based --runtime=10 \
      --size=${size_mib}m
    if [ "$setup" = tier ]; then
      kill -9 "${pids[1]}"
      fio_json "$setup.$run.kill" --rw=randread --bs=4k --iodepth=1 --time_based --runtime=1 \
        --size=${size_mib}m
      fio_json "$setup.$run.degraded" --rw=randread --bs=4k --iodepth=1 --time_based \
        --runtime=10 --size=${size_mib}m
    fi
    stop_all
  done
done

python3 - "$out" "$runs" <<'PY'
import json, os, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
def job(name):
    return json.load(open(os.path.join(out, name)))["jobs"][0]
def med(values):
    return statistics.median(values)
def read(setup, kind):
    jobs = [job(f"{setup}.{r}.{kind}")["read"] for r in range(1, runs + 1)]
    pct = lambda j, p: j["clat_ns"]["percentile"][p] / 1000
    return {"mean": med(j["clat_ns"]["mean"] / 1000 for j in jobs),
            "p50": med(pct(j, "50.000000") for j in jobs),
            "p99": med(pct(j, "99.000000") for j in jobs),
            "max": med(j["clat_ns"]["max"] / 1000 for j in jobs),
            "errors": sum(job(f"{setup}.{r}.{kind}")["error"] for r in range(1, runs + 1))}
def write_mbs(setup):
    return med(job(f"{setup}.{r}.write")["write"]["bw_bytes"] / 1e6 for r in range(1, runs + 1))
def memory(setup):
    per = []
    for r in range(1, runs + 1):
        pool, blocks = map(int, open(os.path.join(out, f"{setup}.{r}.memory")).read().split())
        per.append(pool / blocks)
    return med(per)
one, tier = read("one", "read"), read("tier", "read")
degraded, kill = read("tier", "degraded"), read("tier", "kill")
rows = [
    ("4k random read QD1, mean µs", one["mean"], tier["mean"], tier["mean"] / one["mean"], "≤ 1.1×"),
    ("4k random read QD1, p99 µs", one["p99"], tier["p99"], tier["p99"] / one["p99"], ""),
    ("the same with one server dead, p99 µs", "", degraded["p99"], degraded["p99"] / tier["p99"], "≤ 2× healthy"),
    ("worst read in the 1 s after kill -9, ms", "", kill["max"] / 1000, "", "≤ 1,000 ms"),
    ("pool bytes per block written", memory("one"), memory("tier"), memory("tier") / memory("one"), "≤ 2.05×"),
    ("1 MiB sequential write, MB/s", write_mbs("one"), write_mbs("tier"), write_mbs("tier") / write_mbs("one"), "≥ 0.5×"),
]
print(f"\nmedians of {runs} runs; one = one server (R=1), tier = three servers (R=2)")
print(f"{'figure':42} {'one':>10} {'tier':>10} {'ratio':>7}  target")
fmt = lambda v: f"{v:10.1f}" if isinstance(v, float) else f"{v:>10}"
for name, a, b, ratio, target in rows:
    r = f"{ratio:7.2f}" if isinstance(ratio, float) else f"{ratio:>7}"
    print(f"{name:42} {fmt(a)} {fmt(b)} {r}  {target}")
import re
restore = []
for line in open(os.path.join(out, "nbdkit.log"), errors="replace"):
    m = re.search(r"repair: done in ([0-9.]+)(ms|s): checked ([0-9]+) blocks", line)
    if m and int(m.group(3)) > 0:
        seconds = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        restore.append(seconds / (int(m.group(3)) * 4096 / 2**30))
if restore:
    print(f"{'restore R=2 after a loss, s per GiB checked':42} {'':>10} {med(restore):10.1f} {'':>7}  ≤ 30 s/GiB")
errors = sum(x["errors"] for x in (one, tier, degraded, kill))
print(f"fio errors over all reads: {errors}")
PY
echo
echo "raw results: $out"
echo "reproduce: scripts/tier_bench.sh --runs $runs --size $size_mib --repair_after $repair_after --repair_rate $repair_rate"
