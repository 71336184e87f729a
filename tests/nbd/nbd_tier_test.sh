#!/usr/bin/env bash
# The NBD bridge over a tier of three zpaged servers with two copies of each
# block, driven by NBD clients nobody here wrote: fio writes 4k random
# blocks with verify data on two connections, one server is killed with -9,
# and fio verifies every block (zero errors, zero EIO); writes go on on the
# two left and verify; nbdcopy reads the whole device; the killed server
# comes back empty and everything still verifies; the bridge's repair
# refills it, and then a second server is killed and every block still
# verifies. Before the kill, another is stopped (SIGSTOP, a hung server)
# and writes and reads pass it by.
#
# Usage: nbd_tier_test.sh ZPAGED ZPAGECTL PLUGIN [PRELOAD]
# PRELOAD is libasan's path when the plugin is ASan-built.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
zpaged=$(realpath "$1") zpagectl=$(realpath "$2") plugin=$(realpath "$3") preload=${4:-}
work=$(mktemp -d)
declare -a pids=("" "" "") ports=()
nbdkit_pid=""
cleanup() {
  [ -n "$nbdkit_pid" ] && kill -9 "$nbdkit_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"  # fio keeps its verify state in the working directory

# shellcheck source=tests/nbd/testlib.sh
source "$here/testlib.sh"

for i in 0 1 2; do ports[$i]=$(free_port); done
metrics_port=$(free_port)
start_zpaged() {  # start_zpaged I: zpaged-I on its port, empty
  local i=$1
  "$zpaged" --listen="127.0.0.1:${ports[$i]}" --metrics_listen= \
    --node_name="zpaged-$i" >>"$work/zpaged-$i.log" 2>&1 &
  pids[$i]=$!
  for _ in $(seq 100); do
    "$zpagectl" --server="127.0.0.1:${ports[$i]}" health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "FAILED: zpaged-$i did not start: $(tail "$work/zpaged-$i.log")"; exit 1
}
stored_on() { "$zpagectl" --server="127.0.0.1:${ports[$1]}" --tenant=vm stats --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_pages"])'; }

echo "==> three zpaged servers, zpaged-0..2"
for i in 0 1 2; do start_zpaged $i; done
servers="zpaged-0=127.0.0.1:${ports[0]},zpaged-1=127.0.0.1:${ports[1]},zpaged-2=127.0.0.1:${ports[2]}"
sock=$work/nbd.sock
uri="nbd+unix:///?socket=$sock"
echo "==> nbdkit with servers=$servers replicas=2"
# -v: the repair's progress is nbdkit debug output.
"${nbdkit_env[@]}" nbdkit -f -v -U "$sock" "$plugin" servers="$servers" replicas=2 \
  metrics="127.0.0.1:$metrics_port" \
  tenant=vm size=256M spill="$work/spill" timeout=5 >>"$work/nbdkit.log" 2>&1 &
nbdkit_pid=$!
for _ in $(seq 100); do
  [ -S "$sock" ] && nbdinfo --size "$uri" >/dev/null 2>&1 && break
  sleep 0.1
done
nbdinfo --size "$uri" >/dev/null 2>&1 || { echo "FAILED: nbdkit did not start: $(tail "$work/nbdkit.log")"; exit 1; }

job() {  # job NAME OFFSET [fio flags...]: 4k random writes with verify data
  local name=$1 offset=$2; shift 2
  verify_job "$work/$name.fio" "$uri" 24m "$offset" $((offset + 32 * 1024 * 1024))
  run_fio "$work/$name.fio" "$work/$name.out" "$@"
}

echo "==> fio writes 48 MiB of 4k random blocks with verify data"
job first 0 --do_verify=0 && pass "fio wrote" || fail "fio write: $(grep -E 'err=' "$work/first.out")"
copies=$(( $(stored_on 0) + $(stored_on 1) + $(stored_on 2) ))
# Two jobs of 24 MiB: 12,288 blocks, each written once, two copies each.
[ "$copies" -eq $((2 * 12288)) ] && pass "two copies of each block: $copies pages over three servers" ||
  fail "$copies copies over the three servers, not $((2 * 12288))"

# One fault at a time: with no repair yet, a second server lost while the
# first is away takes the blocks whose two copies were on both.
echo "==> SIGSTOP zpaged-2 (a hung server): writes and reads pass it by"
kill -STOP "${pids[2]}"
job third $((192 * 1024 * 1024)) && job first 0 --verify_only &&
  pass "writes and reads with zpaged-2 hung" || fail "with zpaged-2 hung: $(grep -hE 'err=|verify' "$work/third.out" "$work/first.out" | head -3)"
kill -CONT "${pids[2]}"

echo "==> kill -9 zpaged-1, then fio verifies every block"
kill -9 "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true; pids[1]=""
job first 0 --verify_only && pass "every block verified after zpaged-1 died" ||
  fail "verify after kill: $(grep -E 'err=|verify' "$work/first.out" | head -3)"

echo "==> writes go on with two servers; verified"
job second $((128 * 1024 * 1024)) && pass "writes and reads on two servers" ||
  fail "degraded writes: $(grep -E 'err=|verify' "$work/second.out" | head -3)"

echo "==> nbdcopy reads the whole device"
nbdcopy "$uri" "$work/image" && [ "$(stat -c %s "$work/image")" -eq $((256 * 1024 * 1024)) ] &&
  pass "nbdcopy read 256 MiB" || fail "nbdcopy"

echo "==> zpaged-1 comes back empty; everything still verifies"
repairs_before=$(grep -c "repair: done" "$work/nbdkit.log" || true)
back_at=$SECONDS
start_zpaged 1
job first 0 --verify_only && job second $((128 * 1024 * 1024)) --verify_only &&
  job third $((192 * 1024 * 1024)) --verify_only &&
  pass "all verified with zpaged-1 back empty" || fail "verify after restart"

echo "==> the bridge repairs: every block back to two copies, zpaged-1 refilled"
for _ in $(seq 600); do
  [ "$(grep -c "repair: done" "$work/nbdkit.log" || true)" -gt "$repairs_before" ] && break
  sleep 0.1
done
if [ "$(grep -c "repair: done" "$work/nbdkit.log" || true)" -gt "$repairs_before" ]; then
  pass "repair: $(grep "repair: done" "$work/nbdkit.log" | tail -1 | sed 's/.*repair: //')"
else
  fail "no repair within 60 s: $(grep repair "$work/nbdkit.log" | tail -3)"
fi
metric() {  # metric SERIES: its value on the bridge's /metrics, or empty
  curl -s "http://127.0.0.1:$metrics_port/metrics" | awk -v s="$1" '$1 == s {print $2}'
}
# wait_replicated SINCE WHAT: until the bridge reports no block short of
# its two copies (the metrics are refreshed every 2 s), at most 60 s.
wait_replicated() {
  local since=$1 what=$2
  for _ in $(seq 300); do
    [ "$(metric zpaged_bridge_under_replicated_blocks)" = 0 ] && break
    sleep 0.2
  done
  [ "$(metric zpaged_bridge_under_replicated_blocks)" = 0 ] &&
    pass "every block has two copies again $((SECONDS - since)) s after $what" ||
    fail "$(metric zpaged_bridge_under_replicated_blocks) blocks short of copies 60 s after $what"
}
wait_replicated "$back_at" "zpaged-1 came back empty"

echo "==> kill -9 zpaged-2, a second loss: every block still verifies"
killed_at=$SECONDS
kill -9 "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true; pids[2]=""
job first 0 --verify_only && job second $((128 * 1024 * 1024)) --verify_only &&
  job third $((192 * 1024 * 1024)) --verify_only &&
  pass "all verified after a second server died" || fail "after the second loss: $(grep -hE 'err=|verify' "$work"/*.out | grep -v 'err= 0' | head -3)"
echo "==> the bridge repairs onto the two left (repair_after=5 s)"
wait_replicated "$killed_at" "kill -9 of zpaged-2"

echo "==> the bridge's /metrics"
for _ in $(seq 50); do  # refreshed every 2 s
  [ "$(metric zpaged_bridge_servers_unreachable)" = 1 ] && break
  sleep 0.1
done
check_metric() {  # check_metric SERIES PYTHON-CONDITION-ON-v
  local v; v=$(metric "$1")
  python3 -c "import sys; v=float(sys.argv[1] or 'nan'); sys.exit(0 if ($2) else 1)" "$v" &&
    pass "metric $1 = $v" || fail "metric $1 = '$v', wanted $2"
}
check_metric zpaged_bridge_servers "v == 3"
check_metric zpaged_bridge_servers_unreachable "v == 1"
check_metric 'zpaged_bridge_blocks{where="zpaged"}' "v > 0"
check_metric zpaged_bridge_repair_sweeps_total "v >= 1"
check_metric zpaged_bridge_repair_copied_total "v > 0"
check_metric zpaged_bridge_repair_lost_total "v == 0"
check_metric 'zpaged_bridge_failovers_total{op="read"}' "v > 0"
check_metric zpaged_bridge_failed_requests_total "v == 0"

# Every read or write the bridge fails (EIO to the client) is an error line.
errors=$(grep -c ": error:" "$work/nbdkit.log" || true)
[ "$errors" -eq 0 ] && pass "the bridge failed no request" || fail "$errors errors: $(grep -m3 ': error:' "$work/nbdkit.log")"

finish
