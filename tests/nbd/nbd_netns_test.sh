#!/usr/bin/env bash
# Three zpaged hosts and a VM host on one machine: each zpaged in a network
# namespace of its own with its own address, the bridge (nbdkit) in another,
# all on a switch namespace (a Linux bridge and veth pairs). fio writes
# blocks with verify data through the bridge; then one host is cut off (its
# link down: no reset, packets just stop), and every block verifies while
# it is away and the bridge repairs around it; the link comes back and
# everything still verifies. Every address is the test's own, inside the
# namespaces it makes and deletes.
#
# Usage: nbd_netns_test.sh ZPAGED ZPAGECTL PLUGIN [PRELOAD]
# Needs root (ip netns); exits 77 (skipped) with the reason without it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
zpaged=$(realpath "$1") zpagectl=$(realpath "$2") plugin=$(realpath "$3") preload=${4:-}
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
  echo "SKIPPED: network namespaces need root and iproute2"; exit 77
fi
tag=zpt$$
if ! ip netns add "$tag-sw" 2>/dev/null; then
  echo "SKIPPED: this machine refuses network namespaces (ip netns add)"; exit 77
fi
work=$(mktemp -d)
declare -a pids=("" "" "")
nbdkit_pid=""
cleanup() {
  [ -n "$nbdkit_pid" ] && kill -9 "$nbdkit_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done
  for ns in sw s0 s1 s2 vm; do ip netns del "$tag-$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"  # fio keeps its verify state in the working directory

# shellcheck source=tests/nbd/testlib.sh
source "$here/testlib.sh"

echo "==> a switch and four hosts: zpaged on 10.77.0.10-12, the bridge on 10.77.0.20"
ip -n "$tag-sw" link add br0 type bridge
ip -n "$tag-sw" link set br0 up
host() {  # host NAME ADDRESS
  ip netns add "$tag-$1"
  ip link add "$tag-$1" type veth peer name "p-$1" netns "$tag-sw"
  ip link set "$tag-$1" netns "$tag-$1"
  ip -n "$tag-sw" link set "p-$1" master br0 up
  ip -n "$tag-$1" addr add "$2/24" dev "$tag-$1"
  ip -n "$tag-$1" link set "$tag-$1" up
  ip -n "$tag-$1" link set lo up
}
for i in 0 1 2; do host "s$i" "10.77.0.1$i"; done
host vm 10.77.0.20

for i in 0 1 2; do
  # Beyond loopback only inside the test's own namespaces.
  ip netns exec "$tag-s$i" "$zpaged" --listen="10.77.0.1$i:50051" --metrics_listen= \
    --node_name="zpaged-$i" --allow_unauthenticated_remote >"$work/zpaged-$i.log" 2>&1 &
  pids[$i]=$!
done
for i in 0 1 2; do
  for _ in $(seq 100); do
    ip netns exec "$tag-vm" "$zpagectl" --server="10.77.0.1$i:50051" health >/dev/null 2>&1 && break
    sleep 0.1
  done
done
ip netns exec "$tag-vm" "$zpagectl" --server="10.77.0.10:50051" health >/dev/null &&
  pass "the bridge's host reaches zpaged-0 over the switch" || fail "no route to zpaged-0"

servers="zpaged-0=10.77.0.10:50051,zpaged-1=10.77.0.11:50051,zpaged-2=10.77.0.12:50051"
sock=$work/nbd.sock
uri="nbd+unix:///?socket=$sock"
echo "==> nbdkit in the VM host's namespace, servers=$servers"
ip netns exec "$tag-vm" "${nbdkit_env[@]}" nbdkit -f -U "$sock" "$plugin" \
  servers="$servers" replicas=2 repair_after=1 tenant=vm size=128M \
  spill="$work/spill" timeout=5 >"$work/nbdkit.log" 2>&1 &
nbdkit_pid=$!
for _ in $(seq 100); do nbdinfo --size "$uri" >/dev/null 2>&1 && break; sleep 0.1; done

verify_job "$work/blocks.fio" "$uri" 16m 0 32m
blocks() {  # blocks OUT [fio flags...]: the job over the same blocks
  local out=$1; shift
  run_fio "$work/blocks.fio" "$work/$out" "$@"
}
blocks write.out --do_verify=0 && pass "fio wrote 8,192 blocks over the switch" || fail "fio write"

echo "==> zpaged-1's link goes down: no reset, its packets just stop"
ip -n "$tag-sw" link set p-s1 down
start=$(date +%s.%N)
blocks cut.out --verify_only && pass "every block verified with zpaged-1 cut off ($(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s)" ||
  fail "verify with zpaged-1 cut off: $(grep -E 'err=' "$work/cut.out" | head -2)"
sleep 3  # repair_after=1, then the sweep
blocks cut-again.out --verify_only && pass "every block verified after the repair around zpaged-1" ||
  fail "verify after the repair: $(grep -E 'err=' "$work/cut-again.out" | head -2)"

echo "==> zpaged-1's link comes back"
ip -n "$tag-sw" link set p-s1 up
sleep 3
blocks back.out --verify_only && pass "every block verified with zpaged-1 back" || fail "verify with zpaged-1 back"
errors=$(grep -c ": error:" "$work/nbdkit.log" || true)
[ "$errors" -eq 0 ] && pass "the bridge failed no request" || fail "$errors errors: $(grep -m3 ': error:' "$work/nbdkit.log")"

finish
