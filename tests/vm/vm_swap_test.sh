#!/usr/bin/env bash
# A real Linux guest swapping to zpaged: QEMU (software emulation is fine)
# boots Debian's kernel with 128 MiB of RAM and a virtio disk of 4096-byte
# logical blocks served by the NBD bridge, puts its swap there, and runs
# page_churn: 320 MiB of zero, text-like and random-looking pages, read back
# in random order over two passes with an eighth rewritten in each.
#
#   one   one server whose tenant limit (32 MiB) is far below what the guest
#         swaps, so zpaged evicts to the bridge's spill file;
#   tier  three servers, two copies of each block, each server's tenant
#         limit (64 MiB) below its share, so every server evicts; zpaged-1 is
#         killed with -9 once the guest has swapped out its pages.
#
# Checks: page_churn found no page wrong; the guest's own counters
# (/proc/vmstat pswpin, pswpout) show it swapped; the kernel reported no
# swap I/O error and the bridge failed no request; zpaged's counters show
# the pages reached it, and the spill file took what it evicted; on the
# tier, that the servers left hold no copy of a spilled block.
#
# Usage: vm_swap_test.sh one|tier ZPAGED ZPAGECTL PLUGIN GUEST_DIR
# GUEST_DIR is what build_guest.sh made.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=$1 zpaged=$(realpath "$2") zpagectl=$(realpath "$3") plugin=$(realpath "$4") guest=$5
[ -f "$guest/initramfs.gz" ] || { echo "skipped: no guest (build_guest.sh skipped)"; exit 77; }
work=$(mktemp -d)
preload=""
declare -a pids=() ports=()
nbdkit_pid="" qemu_pid=""
cleanup() {
  for pid in "$qemu_pid" "$nbdkit_pid" "${pids[@]}"; do
    [ -n "$pid" ] && { kill -9 "$pid"; wait "$pid"; } 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=tests/nbd/testlib.sh
source "$here/../nbd/testlib.sh"

case "$mode" in
  one) servers=1 tenant_limit=32M replicas=1 ;;
  tier) servers=3 tenant_limit=64M replicas=2 ;;
  *) echo "usage: $0 one|tier ZPAGED ZPAGECTL PLUGIN GUEST_DIR" >&2; exit 2 ;;
esac
churn_mib=320 churn_passes=2

members=""
for i in $(seq 0 $((servers - 1))); do
  ports[$i]=$(free_port)
  "$zpaged" --listen="127.0.0.1:${ports[$i]}" --metrics_listen= \
    --node_name="zpaged-$i" --tenant_max_bytes="$tenant_limit" >>"$work/zpaged-$i.log" 2>&1 &
  pids[$i]=$!
  members+="${members:+,}zpaged-$i=127.0.0.1:${ports[$i]}"
done
for i in $(seq 0 $((servers - 1))); do
  for _ in $(seq 100); do
    "$zpagectl" --server="127.0.0.1:${ports[$i]}" health >/dev/null 2>&1 && break
    sleep 0.1
  done
done
echo "==> $servers zpaged server(s), tenant limit $tenant_limit each: $members"

sock=$work/nbd.sock metrics_port=$(free_port)
target="servers=$members replicas=$replicas"
[ "$servers" -eq 1 ] && target="server=127.0.0.1:${ports[0]}"
echo "==> nbdkit: the bridge, $target, a 512 MiB device"
# shellcheck disable=SC2086
# flush=memory, as for any swap device: QEMU flushes its disks when the VM
# stops, which with flush=disk would move every block to the spill file.
nbdkit -f -U "$sock" "$plugin" $target tenant=guest size=512M flush=memory \
  spill="$work/spill" metrics="127.0.0.1:$metrics_port" repair_after=2 \
  >>"$work/nbdkit.log" 2>&1 &
nbdkit_pid=$!
for _ in $(seq 100); do
  [ -S "$sock" ] && nbdinfo --size "nbd+unix:///?socket=$sock" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "==> booting the guest (QEMU, software emulation, 128 MiB); it swaps $churn_mib MiB of pages"
console=$work/console.log
qemu-system-x86_64 -machine q35,accel=tcg -cpu max -m 128 -smp 1 \
  -nographic -nic none -no-reboot -kernel "$guest/vmlinuz" -initrd "$guest/initramfs.gz" \
  -append "console=ttyS0 rdinit=/init panic=-1 quiet churn_mib=$churn_mib churn_passes=$churn_passes churn_seed=$RANDOM" \
  -drive "file=nbd+unix:///?socket=$sock,format=raw,if=none,id=swap,cache=none" \
  -device virtio-blk-pci,drive=swap,logical_block_size=4096,physical_block_size=4096 \
  </dev/null >"$console" 2>&1 &
qemu_pid=$!

# Relays the guest's lines as they come; in tier mode kills zpaged-1 once
# the guest has written every page (most of them swapped out by then).
# The serial console ends its lines with CR LF.
guest_lines() { tr -d '\r' <"$console" | grep -aE '^(guest|page_churn):' || true; }
killed=false started=$SECONDS shown=0
while kill -0 "$qemu_pid" 2>/dev/null; do
  sleep 2
  lines=$(guest_lines)
  count=$(printf '%s' "$lines" | grep -c . || true)
  if [ "$count" -gt "$shown" ]; then
    printf '%s\n' "$lines" | tail -n +$((shown + 1)) | sed "s/^/    [$((SECONDS - started)) s] /"
    shown=$count
  fi
  if [ "$mode" = tier ] && ! $killed && guest_lines | grep -q '^page_churn: wrote'; then
    echo "==> kill -9 zpaged-1 while the guest reads its pages back"
    { kill -9 "${pids[1]}"; wait "${pids[1]}"; } 2>/dev/null || true
    killed=true
  fi
  if [ $((SECONDS - started)) -gt 1200 ]; then
    echo "FAILED: the guest did not finish in 20 minutes"; tail -20 "$console"; exit 1
  fi
done
wait "$qemu_pid" || true
qemu_pid=""
echo "==> the guest powered off after $((SECONDS - started)) s"

metric() {  # metric NAME[{labels}]: its value on the bridge's /metrics
  curl -fsS "http://127.0.0.1:$metrics_port/metrics" |
    awk -v name="$1" '$1 == name { print int($2) }'
}
stat_of() {  # stat_of SERVER FIELD: zpagectl stats of the guest's tenant
  "$zpagectl" --server="127.0.0.1:${ports[$1]}" --tenant=guest stats --json |
    python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

guest_lines >"$work/guest.txt"
grep -q "^page_churn: pages=.* wrong=0$" "$work/guest.txt" &&
  pass "page_churn: $(grep '^page_churn: pages=' "$work/guest.txt" | sed 's/page_churn: //')" ||
  fail "page_churn: $(grep '^page_churn: \(pages=\|page \)' "$work/guest.txt" | head -6 | tr '\n' ' ')"
grep -q "^guest: page_churn exited 0" "$work/guest.txt" && pass "page_churn exited 0" ||
  fail "page_churn did not finish: $(tail -5 "$console" | tr '\n' ' ')"
grep -q "^guest: disk vda .* logical block 4096 bytes" "$work/guest.txt" &&
  pass "the guest's swap disk has 4096-byte logical blocks" ||
  fail "the guest's disk: $(grep '^guest: disk' "$work/guest.txt")"
read -r pswpin pswpout < <(grep '^guest: pswpin' "$work/guest.txt" | awk '{print $3, $5}')
minimum=$(( (churn_mib - 128) * 256 ))  # pages that cannot all fit in RAM
[ "${pswpout:-0}" -ge "$minimum" ] && [ "${pswpin:-0}" -ge "$minimum" ] &&
  pass "the guest swapped: pswpout $pswpout, pswpin $pswpin (>= $minimum each)" ||
  fail "the guest swapped too little: pswpout ${pswpout:-?}, pswpin ${pswpin:-?} (< $minimum)"
errors=$(grep -aciE 'I/O error|(read|write)-error on swap|Bad page|Call Trace' "$console" || true)
[ "$errors" -eq 0 ] && pass "the guest's kernel reported no I/O error" ||
  fail "$errors kernel error lines: $(grep -aiE 'I/O error|error on swap|Bad page|Call Trace' "$console" | head -3)"
failed=$(metric zpaged_bridge_failed_requests_total)
[ "${failed:-1}" -eq 0 ] && pass "the bridge failed no request" ||
  fail "the bridge failed ${failed:-?} requests: $(grep -i error "$work/nbdkit.log" | head -3)"

spilled=$(metric 'zpaged_bridge_blocks{where="spilled"}')
in_zpaged=$(metric 'zpaged_bridge_blocks{where="zpaged"}')
stored=0 evicted=0
for i in $(seq 0 $((servers - 1))); do
  [ "$mode" = tier ] && [ "$i" -eq 1 ] && continue  # killed
  stored=$((stored + $(stat_of "$i" stored_pages)))
  evicted=$((evicted + $(stat_of "$i" evicted_pages)))
done
[ "$stored" -gt 0 ] && [ "${in_zpaged:-0}" -gt 0 ] &&
  pass "pages reached zpaged: $stored stored on the servers left, $in_zpaged blocks in zpaged" ||
  fail "nothing in zpaged: $stored stored, ${in_zpaged:-?} blocks"
[ "$evicted" -gt 0 ] && [ "${spilled:-0}" -gt 0 ] &&
  pass "zpaged evicted $evicted pages; the spill file holds $spilled blocks" ||
  fail "no evictions to the spill file: $evicted evicted, ${spilled:-?} spilled"
if [ "$mode" = tier ]; then
  for i in 0 2; do
    e=$(stat_of "$i" evicted_pages)
    [ "$e" -gt 0 ] && pass "zpaged-$i evicted $e pages" || fail "zpaged-$i evicted nothing"
  done
  # A spilled block's other copies are deleted once the spill file has it,
  # and a rewritten block's older copies once the new one is stored: both
  # after the fact, so the count may stand above for a moment after the
  # guest's last write; it must come down within 30 s.
  servers_left() {
    echo $(( $(stat_of 0 stored_pages) + $(stat_of 2 stored_pages) ))
  }
  for _ in $(seq 30); do
    [ "$stored" -le $((2 * in_zpaged)) ] && break
    echo "    $stored pages on the servers left for $in_zpaged blocks in zpaged; waiting"
    sleep 1
    stored=$(servers_left)
    in_zpaged=$(metric 'zpaged_bridge_blocks{where="zpaged"}')
  done
  [ "$stored" -le $((2 * in_zpaged)) ] &&
    pass "the spill file holds only last copies: $stored pages on the servers left for $in_zpaged blocks in zpaged" ||
    fail "$stored pages on the servers left, more than two for each of $in_zpaged blocks in zpaged"
  sweeps=$(metric zpaged_bridge_repair_sweeps_total) lost=$(metric zpaged_bridge_repair_lost_total)
  [ "${sweeps:-0}" -ge 1 ] && [ "${lost:-1}" -eq 0 ] &&
    pass "the repair swept the device $sweeps time(s) after the kill; no block lost" ||
    fail "repair: ${sweeps:-?} sweeps, ${lost:-?} blocks lost"
fi
finish
