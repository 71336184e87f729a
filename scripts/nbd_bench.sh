#!/usr/bin/env bash
# The NBD bridge under fio, beside its peers measured in the same run:
# zpaged-bench's direct gRPC calls to the same zpaged (the bridge's cost is
# what it adds to them), and nbdkit's own memory plugin under the same fio
# jobs (the ceiling of NBD itself on this machine). Installs what is
# missing, builds, then per run starts a fresh zpaged, a bridge and a memory
# plugin, and runs:
#   write    1 MiB sequential writes, one in flight, over the whole device
#   qd1      4 KiB random reads, one in flight (mean latency)
#   qd32     4 KiB random reads, 32 in flight (IOPS)
# and zpaged-bench: unary Gets one at a time; batch Gets with 32 pages in
# flight; batch Puts with 256 pages in flight (as a 1 MiB write has).
# Prints medians of the runs and the ratios issue 13 sets targets for.
#
#   scripts/nbd_bench.sh              5 runs, a 256 MiB device
#   scripts/nbd_bench.sh --runs 3 --size 512
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5 size_mib=256 seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --size) size_mib=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--size MIB] [--seconds S]" >&2; exit 2 ;;
  esac
done
source scripts/bench_build.sh
bench_build zpaged zpagectl zpaged-bench nbdkit-zpaged-plugin corpus

out=$(mktemp -d /tmp/zpaged-nbd-bench.XXXXXX)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap stop_all EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

fio_jobs() {  # fio_jobs URI: the three jobs, one after another
  cat <<JOBS
[global]
ioengine=nbd
uri=$1
size=${size_mib}m
buffer_compress_percentage=60
refill_buffers=1
randrepeat=0
group_reporting=1
[write]
rw=write
bs=1m
iodepth=1
[qd1]
stonewall
rw=randread
bs=4k
iodepth=1
time_based=1
runtime=$seconds
[qd32]
stonewall
rw=randread
bs=4k
iodepth=32
time_based=1
runtime=$seconds
JOBS
}

for run in $(seq "$runs"); do
  echo "==> run $run of $runs: fresh zpaged, bridge and memory plugin"
  rm -f "$out"/*.sock "$out/spill"
  "$build/server/zpaged" --listen="127.0.0.1:$port" --metrics_listen= \
    --tenant_max_bytes=4G >>"$out/zpaged.log" 2>&1 &
  pids+=($!)
  zpaged_pid=$!
  for _ in $(seq 100); do
    "$build/client/zpagectl" --server="127.0.0.1:$port" health >/dev/null 2>&1 && break
    sleep 0.1
  done
  nbdkit -f -U "$out/bridge.sock" "$build/client/nbd/nbdkit-zpaged-plugin.so" \
    server="127.0.0.1:$port" tenant=bridge size="${size_mib}M" spill="$out/spill" \
    >>"$out/nbdkit.log" 2>&1 &
  pids+=($!)
  nbdkit -f -U "$out/memory.sock" memory "${size_mib}M" >>"$out/nbdkit.log" 2>&1 &
  pids+=($!)
  for sock in bridge memory; do
    for _ in $(seq 100); do
      nbdinfo --size "nbd+unix:///?socket=$out/$sock.sock" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  for target in bridge memory; do
    echo "    fio against the $target plugin"
    fio_jobs "nbd+unix:///?socket=$out/$target.sock" >"$out/$target.fio"
    fio --output-format=json --output="$out/fio.$target.$run.json" "$out/$target.fio"
  done
  echo "    zpaged-bench against the same zpaged"
  bench=("$build/client/bench/zpaged-bench" --server="127.0.0.1:$port" --json
         --server_pid="$zpaged_pid")
  "${bench[@]}" --tenant=unary --modes=unary --channels=1 --depth=1 \
    --seconds="$seconds" 2>/dev/null >"$out/bench.unary.$run.json"
  "${bench[@]}" --tenant=get32 --modes=batch --channels=1 --depth=32 --batch=16 \
    --seconds="$seconds" 2>/dev/null >"$out/bench.get32.$run.json"
  "${bench[@]}" --tenant=put256 --modes=batch --channels=4 --depth=64 --batch=64 \
    --seconds="$seconds" 2>/dev/null >"$out/bench.put256.$run.json"
  stop_all
done

python3 - "$out" "$runs" <<'PY'
import json, os, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
def fio(target, run):
    jobs = {j["jobname"]: j for j in
            json.load(open(os.path.join(out, f"fio.{target}.{run}.json")))["jobs"]}
    return {"write_mb_s": jobs["write"]["write"]["bw_bytes"] / 1e6,
            "qd1_mean_us": jobs["qd1"]["read"]["clat_ns"]["mean"] / 1e3,
            "qd32_iops": jobs["qd32"]["read"]["iops"]}
def bench(name, run):
    r = json.load(open(os.path.join(out, f"bench.{name}.{run}.json")))["results"][0]
    return r
rows = []
for run in range(1, runs + 1):
    b, m = fio("bridge", run), fio("memory", run)
    unary, get32, put256 = bench("unary", run), bench("get32", run), bench("put256", run)
    rows.append({
        "bridge": b, "memory": m,
        "unary_get_mean_us": unary["get_mean_us"],
        "batch_get32_pages_s": get32["get_pages_per_s"],
        "batch_put256_mb_s": put256["put_mb_per_s"] * 1.048576,
    })
med = lambda f: statistics.median(f(r) for r in rows)
print(f"\nmedians of {runs} runs")
print(f"  {'figure':<34} {'bridge':>10} {'memory plugin':>14} {'zpaged-bench':>13}")
print(f"  {'1 MiB sequential write, MB/s':<34} {med(lambda r: r['bridge']['write_mb_s']):>10.0f} "
      f"{med(lambda r: r['memory']['write_mb_s']):>14.0f} {med(lambda r: r['batch_put256_mb_s']):>13.0f}")
print(f"  {'4k random read QD1, mean us':<34} {med(lambda r: r['bridge']['qd1_mean_us']):>10.1f} "
      f"{med(lambda r: r['memory']['qd1_mean_us']):>14.1f} {med(lambda r: r['unary_get_mean_us']):>13.1f}")
print(f"  {'4k random read QD32, IOPS':<34} {med(lambda r: r['bridge']['qd32_iops']):>10.0f} "
      f"{med(lambda r: r['memory']['qd32_iops']):>14.0f} {med(lambda r: r['batch_get32_pages_s']):>13.0f}")
targets = [
    ("QD1 read latency / unary Get at depth 1", med(lambda r: r["bridge"]["qd1_mean_us"] / r["unary_get_mean_us"]), "<=", 1.25),
    ("QD32 read IOPS / batch Get pages/s at 32 in flight", med(lambda r: r["bridge"]["qd32_iops"] / r["batch_get32_pages_s"]), ">=", 0.8),
    ("1 MiB write MB/s / batch Put MB/s at 256 in flight", med(lambda r: r["bridge"]["write_mb_s"] / r["batch_put256_mb_s"]), ">=", 0.8),
]
print("\ntargets (issue 13), medians of the per-run ratios")
for name, value, op, bound in targets:
    met = value >= bound if op == ">=" else value <= bound
    print(f"  {'met   ' if met else 'MISSED'}  {name}: {value:.2f}x (target {op} {bound}x)")
json.dump(rows, open(os.path.join(out, "summary.json"), "w"), indent=1)
PY
echo
echo "raw results: $out"
echo "reproduce: scripts/nbd_bench.sh --runs $runs --size $size_mib --seconds $seconds"
