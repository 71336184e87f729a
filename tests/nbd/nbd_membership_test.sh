#!/usr/bin/env bash
# A tier that grows and shrinks under a running bridge: nbdkit follows a
# servers file (servers_file=) with two copies of each block. fio writes
# 48 MiB of 4k random blocks with verify data on three servers; a fourth is
# added to the file, and while the bridge moves the groups that now rank it
# first or second, fio verifies every block; after the move the fourth
# holds about a quarter of the copies and no copy is left over. Then one
# server is taken out of the file (a clean drain), repaired away, and killed
# with -9: every block still verifies, and no request failed.
#
# Usage: nbd_membership_test.sh ZPAGED ZPAGECTL PLUGIN [PRELOAD]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
zpaged=$(realpath "$1") zpagectl=$(realpath "$2") plugin=$(realpath "$3") preload=${4:-}
work=$(mktemp -d)
declare -a pids=("" "" "" "") ports=()
nbdkit_pid="" verify_pid=""
cleanup() {
  [ -n "$verify_pid" ] && kill "$verify_pid" 2>/dev/null || true
  [ -n "$nbdkit_pid" ] && kill -9 "$nbdkit_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"  # fio keeps its verify state in the working directory

# shellcheck source=tests/nbd/testlib.sh
source "$here/testlib.sh"

for i in 0 1 2 3; do ports[$i]=$(free_port); done
metrics_port=$(free_port)
for i in 0 1 2 3; do
  "$zpaged" --listen="127.0.0.1:${ports[$i]}" --metrics_listen= \
    --node_name="zpaged-$i" >>"$work/zpaged-$i.log" 2>&1 &
  pids[$i]=$!
  for _ in $(seq 100); do
    "$zpagectl" --server="127.0.0.1:${ports[$i]}" health >/dev/null 2>&1 && break
    sleep 0.1
  done
done
entry() { echo "zpaged-$1=127.0.0.1:${ports[$1]}"; }
list() { for i in "$@"; do entry "$i"; done >"$work/servers.new"; mv "$work/servers.new" "$work/servers"; }
stored_on() { "$zpagectl" --server="127.0.0.1:${ports[$1]}" --tenant=vm stats --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["stored_pages"])'; }
metric() { curl -s "http://127.0.0.1:$metrics_port/metrics" | awk -v s="$1" '$1 == s {print $2}'; }
wait_metric() {  # wait_metric SERIES VALUE: up to 60 s
  for _ in $(seq 600); do [ "$(metric "$1")" = "$2" ] && return 0; sleep 0.1; done
  return 1
}

echo "==> three servers in the file; nbdkit with servers_file= replicas=2"
list 0 1 2
sock=$work/nbd.sock
uri="nbd+unix:///?socket=$sock"
"${nbdkit_env[@]}" nbdkit -f -U "$sock" "$plugin" servers_file="$work/servers" \
  replicas=2 repair_after=1 metrics="127.0.0.1:$metrics_port" tenant=vm size=128M \
  spill="$work/spill" timeout=5 >>"$work/nbdkit.log" 2>&1 &
nbdkit_pid=$!
for _ in $(seq 100); do nbdinfo --size "$uri" >/dev/null 2>&1 && break; sleep 0.1; done

verify_job "$work/blocks.fio" "$uri" 24m 0 32m
blocks() {  # blocks OUT [fio flags...]: the job over the same blocks
  local out=$1; shift
  run_fio "$work/blocks.fio" "$work/$out" "$@"
}
echo "==> fio writes 12,288 blocks"
blocks write.out --do_verify=0 && pass "fio wrote" || fail "fio write"
copies() { local t=0 i; for i in "$@"; do t=$((t + $(stored_on "$i"))); done; echo "$t"; }
[ "$(copies 0 1 2)" -eq 24576 ] && pass "24,576 copies on three servers" || fail "copies: $(copies 0 1 2)"

echo "==> zpaged-3 joins; fio verifies while the bridge moves groups to it"
sweeps=$(metric zpaged_bridge_repair_sweeps_total)
list 0 1 2 3
# Verify passes, one after another, from before the move until after it.
( passes=0
  until [ -e "$work/moved" ]; do
    blocks verify-during.out --verify_only || { echo failed >"$work/during"; exit 1; }
    passes=$((passes + 1))
  done
  echo "$passes" >"$work/during" ) &
verify_pid=$!
wait_metric zpaged_bridge_servers 4 && pass "the bridge has four servers" || fail "servers: $(metric zpaged_bridge_servers)"
for _ in $(seq 600); do
  [ "$(metric zpaged_bridge_repair_sweeps_total)" != "$sweeps" ] && break; sleep 0.1
done
touch "$work/moved"
wait "$verify_pid" && pass "every block verified in $(cat "$work/during") passes during the move" ||
  fail "verify during the move: $(grep -E 'err=' "$work/verify-during.out" | head -2)"
verify_pid=""
on3=$(stored_on 3) total=$(copies 0 1 2 3)
[ "$total" -eq 24576 ] && pass "no copy left over: $total over four" || fail "$total copies over four, not 24576"
python3 -c "import sys; sys.exit(0 if abs($on3 - 24576 / 4) < 24576 / 4 * 0.25 else 1)" &&
  pass "zpaged-3 holds $on3 copies (a quarter: 6,144)" || fail "zpaged-3 holds $on3 copies, not about 6,144"
blocks verify-after.out --verify_only && pass "every block verified after the move" || fail "verify after the move"

echo "==> zpaged-0 leaves the file (a drain), then is killed with -9"
sweeps=$(metric zpaged_bridge_repair_sweeps_total)
list 1 2 3
wait_metric zpaged_bridge_servers 3 && pass "the bridge has three servers" || fail "servers: $(metric zpaged_bridge_servers)"
for _ in $(seq 600); do
  [ "$(metric zpaged_bridge_repair_sweeps_total)" != "$sweeps" ] && break; sleep 0.1
done
[ "$(copies 1 2 3)" -eq 24576 ] && pass "24,576 copies on the three left" || fail "copies on the three left: $(copies 1 2 3)"
kill -9 "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids[0]=""
blocks verify-drained.out --verify_only && pass "every block verified with zpaged-0 gone" || fail "verify after the drain: $(grep -E 'err=' "$work/verify-drained.out" | head -2)"
[ "$(metric zpaged_bridge_failed_requests_total)" = 0 ] && pass "the bridge failed no request" || fail "failed requests: $(metric zpaged_bridge_failed_requests_total)"

finish
