#!/usr/bin/env bash
# The NBD bridge end to end, with NBD clients nobody here wrote: nbdkit
# serving the plugin to nbdinfo, nbdcopy, fio's nbd engine (with verify) and
# qemu-io/qemu-img, against a real zpaged whose tenant limit is small, so
# that evictions really reach the spill file. Then restarts of nbdkit
# (SIGTERM, SIGKILL) and of zpaged (drained), a zpaged killed with -9 (EIO,
# never zeros), and every refused configuration.
#
# Usage: nbd_bridge_test.sh ZPAGED ZPAGECTL PLUGIN [PRELOAD]
# PRELOAD is libasan's path when the plugin is ASan-built: nbdkit then runs
# with it preloaded, as an ASan plugin needs.
set -euo pipefail
zpaged=$1 zpagectl=$2 plugin=$3 preload=${4:-}
work=$(mktemp -d)
server_pid="" nbdkit_pid=""
cleanup() {
  [ -n "$nbdkit_pid" ] && kill -9 "$nbdkit_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

nbdkit_env=(env)
if [ -n "$preload" ]; then
  # nbdkit's own allocations are not ours to check for leaks.
  nbdkit_env=(env "LD_PRELOAD=$preload" "ASAN_OPTIONS=detect_leaks=0")
fi

checks=0 failures=0
pass() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAILED: $*"; }
expect() {  # expect DESCRIPTION COMMAND...: the command must succeed
  local what=$1; shift
  if "$@" >"$work/out" 2>"$work/err"; then pass "$what"
  else fail "$what: $(tail -5 "$work/err")"; fi
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sock=$work/nbd.sock
uri="nbd+unix:///?socket=$sock"
size=128M
start_zpaged() {  # start_zpaged EXTRA_FLAGS...
  "$zpaged" --listen="127.0.0.1:$port" --metrics_listen= \
    --tenant_max_bytes=8M --ack_deadline=5s "$@" >>"$work/zpaged.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    "$zpagectl" --server="127.0.0.1:$port" health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "FAILED: zpaged did not start: $(tail "$work/zpaged.log")"; exit 1
}
start_bridge() {  # start_bridge [SPILL [KEY=VALUE...]]: nbdkit in the foreground, in the background
  local spill=${1:-$work/spill}
  shift || true
  rm -f "$sock"
  "${nbdkit_env[@]}" nbdkit -f -U "$sock" "$plugin" server="127.0.0.1:$port" \
    tenant=vm size=$size spill="$spill" "$@" >>"$work/nbdkit.log" 2>&1 &
  nbdkit_pid=$!
  for _ in $(seq 100); do
    [ -S "$sock" ] && nbdinfo --size "$uri" >/dev/null 2>&1 && return 0
    kill -0 "$nbdkit_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAILED: nbdkit did not start: $(tail "$work/nbdkit.log")"; exit 1
}
stop_bridge() {  # stop_bridge SIGNAL
  kill "-$1" "$nbdkit_pid"
  for _ in $(seq 300); do
    kill -0 "$nbdkit_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$nbdkit_pid" 2>/dev/null; then
    # With libasan preloaded, nbdkit has been seen to hang after the plugin's
    # cleanup, in libp11-kit's exit-time destructor waiting on glibc's locale
    # lock (gdb); the plugin is done by then. Without ASan it must exit.
    if [ -n "$preload" ]; then
      echo "note: nbdkit (ASan) hung in exit-time destructors after SIG$1; killed"
    else
      fail "nbdkit did not exit within 30 s of SIG$1"
    fi
    kill -9 "$nbdkit_pid"
  fi
  wait "$nbdkit_pid" 2>/dev/null || true
  nbdkit_pid=""
}
evicted() {
  "$zpagectl" --server="127.0.0.1:$port" --tenant=vm stats |
    awk '/^evicted pages/ {print $3}'
}

echo "==> making a mixed 64 MiB file: random, zeros, text, same-filled"
python3 - "$work/mixed.bin" <<'PY'
import os, sys
mib = 1 << 20
text = b"".join(b"line %08d of a text page that compresses well\n" % i
                for i in range(600000))[:24 * mib]
data = (os.urandom(16 * mib) + bytes(8 * mib) + text +
        (b"\x5a\xa5" * 2048) * (8 * mib // 4096) + os.urandom(8 * mib))
assert len(data) == 64 * mib
open(sys.argv[1], "wb").write(data)
open(sys.argv[1] + ".text", "wb").write(text[:mib])
PY

echo "==> refused configurations"
start_zpaged
refused() {  # refused DESCRIPTION MESSAGE ARGS...: nbdkit exits non-zero, saying MESSAGE
  local what=$1 message=$2; shift 2
  rm -f "$work/refused.sock"
  if timeout 20 "${nbdkit_env[@]}" nbdkit -f -U "$work/refused.sock" "$plugin" \
       "$@" >"$work/refused.log" 2>&1; then
    fail "$what: nbdkit started"
  elif grep -q -- "$message" "$work/refused.log"; then
    pass "$what"
  else
    fail "$what: $(cat "$work/refused.log")"
  fi
}
refused "a missing key" "the spill= parameter is required" \
  server="127.0.0.1:$port" tenant=vm size=1M
refused "a size not a multiple of 4096" "is not a positive multiple of 4096" \
  server="127.0.0.1:$port" tenant=vm size=5000 spill="$work/s1"
refused "zpaged unreachable" "zpaged is not reachable" \
  server=127.0.0.1:1 tenant=vm size=1M spill="$work/s2"
refused "an unknown key" "unknown parameter 'colour'" \
  server="127.0.0.1:$port" tenant=vm size=1M spill="$work/s3" colour=blue
refused "copies one server cannot hold" "replicas=2 needs as many servers" \
  server="127.0.0.1:$port" replicas=2 tenant=vm size=1M spill="$work/s4"
refused "both server= and servers=" "not several" \
  server="127.0.0.1:$port" servers="a=127.0.0.1:$port" tenant=vm size=1M spill="$work/s5"
start_bridge
refused "a second bridge on the same spill file" "in use by another bridge" \
  server="127.0.0.1:$port" tenant=vm size=$size spill="$work/spill"
# One bridge per tenant, whatever its spill file: the first's watcher is
# exclusive. A copy's bridge would write beside it; a new file's would
# first delete everything the tenant holds.
cp --sparse=always "$work/spill" "$work/spill-copy"
refused "a second bridge for the tenant, on a copy of its spill file" \
  "already has a live NBD bridge" \
  server="127.0.0.1:$port" tenant=vm size=$size spill="$work/spill-copy"
refused "a second bridge for the tenant, on a new spill file" \
  "already has a live NBD bridge" \
  server="127.0.0.1:$port" tenant=vm size=1M spill="$work/s6"
help=$("${nbdkit_env[@]}" nbdkit "$plugin" --help 2>&1 || true)
if grep -q "spill=PATH" <<<"$help"; then
  pass "--help describes the keys"
else
  fail "--help"
fi

echo "==> nbdinfo"
expect "nbdinfo" nbdinfo "$uri"
for feature in "can_trim: true" "can_zero: true" "can_fast_zero: true" \
               "can_flush: true" "can_fua: true" "can_multi_conn: true" \
               "block_size_minimum: 4096" "block_size_preferred: 4096"; do
  grep -q "$feature" "$work/out" && pass "advertises $feature" ||
    fail "nbdinfo lacks $feature: $(cat "$work/out")"
done

echo "==> nbdcopy in and out, byte-exact, with evictions to the spill file"
expect "nbdcopy the file in" nbdcopy "$work/mixed.bin" "$uri"
expect "nbdcopy it out" nbdcopy "$uri" "$work/back.bin"
cmp -s -n $((64 << 20)) "$work/mixed.bin" "$work/back.bin" &&
  pass "64 MiB byte-exact" || fail "the copy differs"
cmp -s -i $((64 << 20)):0 -n $((64 << 20)) "$work/back.bin" /dev/zero &&
  pass "the unwritten half reads as zeros" || fail "unwritten space is not zeros"
[ "$(evicted)" -gt 1000 ] && pass "zpaged evicted $(evicted) pages to the spill file" ||
  fail "no evictions: $(evicted)"
expect "nbdinfo --map" nbdinfo --map "$uri"
grep -qE "^ +16777216 +8388608 +3 +hole,zero" "$work/out" &&
  pass "the zero run is a hole in the map" || fail "map: $(cat "$work/out")"

echo "==> fio, nbd engine, verify: 4k random writes on 2 connections, 64k sequential"
cat >"$work/verify.fio" <<EOF
[global]
ioengine=nbd
uri=$uri
size=16m
verify=crc32c
verify_fatal=1
do_verify=1
[random-a]
rw=randwrite
bs=4k
iodepth=16
offset=64m
[random-b]
rw=randwrite
bs=4k
iodepth=16
offset=80m
[sequential]
rw=write
bs=64k
iodepth=4
offset=96m
EOF
expect "fio with verify" fio --output="$work/fio.txt" "$work/verify.fio"
grep -q "err= 0" "$work/fio.txt" && ! grep -q "verify:" "$work/fio.txt" &&
  pass "fio verified every block" || fail "fio: $(grep -E 'err=|verify' "$work/fio.txt")"

echo "==> qemu-io writes, reads, discards; qemu-img reads"
qio() { qemu-io -f raw "$uri" -c "$1"; }
expect "qemu-io write a pattern" qio "write -P 0xab 112M 1M"
expect "qemu-io read it back" qio "read -P 0xab 112M 1M"
expect "qemu-io unaligned write" qio "write -P 0xcd $(((113 << 20) + 100)) 5000"
expect "qemu-io unaligned read" qio "read -P 0xcd $(((113 << 20) + 100)) 5000"
expect "qemu-io discard" qio "discard 112M 1M"
expect "qemu-io discarded reads as zeros" qio "read -P 0 112M 1M"
expect "qemu-io write zeroes" qio "write -z 0 4M"
expect "qemu-io zeroed reads as zeros" qio "read -P 0 0 4M"
expect "qemu-img convert out" qemu-img convert -f raw -O raw "$uri" "$work/qemu.bin"
expect "nbdcopy out for comparison" nbdcopy "$uri" "$work/now.bin"
cmp -s "$work/qemu.bin" "$work/now.bin" && pass "qemu-img and nbdcopy read the same" ||
  fail "qemu-img and nbdcopy differ"

echo "==> restarts of nbdkit: SIGTERM, then SIGKILL"
for signal in TERM KILL; do
  stop_bridge "$signal"
  start_bridge
  expect "nbdcopy after SIG$signal" nbdcopy "$uri" "$work/after.bin"
  cmp -s "$work/now.bin" "$work/after.bin" && pass "every block as before SIG$signal" ||
    fail "blocks changed across SIG$signal"
done

stop_bridge TERM
refused "a spill file made for another size" "was made for tenant 'vm' and size" \
  server="127.0.0.1:$port" tenant=vm size=64M spill="$work/spill"

echo "==> zpaged restarted with --drain_on_shutdown: its pages come home first"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
start_zpaged --drain_on_shutdown --drain_deadline=20s
# A new spill file: the bridge starts the tenant clean.
start_bridge "$work/spill2"
expect "copy in with the drainable zpaged" nbdcopy "$work/mixed.bin" "$uri"
expect "nbdcopy out before the restart" nbdcopy "$uri" "$work/now.bin"
kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true
start_zpaged --drain_on_shutdown --drain_deadline=20s
expect "nbdcopy out after the drained restart" nbdcopy "$uri" "$work/after.bin"
cmp -s "$work/now.bin" "$work/after.bin" && pass "every block survived a drained restart" ||
  fail "blocks lost across a drained restart"

stored() {
  "$zpagectl" --server="127.0.0.1:$port" --tenant=vm stats |
    awk '/^stored pages/ {print $3}'
}
# Compares 1 MiB of the device at MIB with FILE.
same_mib() {  # same_mib MIB FILE
  nbdcopy "$uri" "$work/device.bin" &&
    cmp -s <(dd if="$work/device.bin" bs=1M skip="$1" count=1 status=none) "$2"
}

echo "==> flush=disk (the default): a FUA write and a flush are on the local disk"
# qemu-io's writes go to zpaged; -f is FUA. A plain write, then a flush.
python3 -c 'import os,sys; open(sys.argv[1],"wb").write(os.urandom(1 << 20))' "$work/fua.bin"
python3 -c 'import os,sys; open(sys.argv[1],"wb").write(os.urandom(1 << 20))' "$work/flushed.bin"
expect "a FUA write" qemu-io -f raw -c "write -f -s $work/fua.bin 100M 1M" "$uri"
expect "a write, then a flush" qemu-io -f raw -c "write -s $work/flushed.bin 101M 1M" -c flush "$uri"
kill -9 "$nbdkit_pid" "$server_pid"; wait "$nbdkit_pid" "$server_pid" 2>/dev/null || true
nbdkit_pid="" server_pid=""
start_zpaged --drain_on_shutdown --drain_deadline=20s
start_bridge "$work/spill2"
same_mib 100 "$work/fua.bin" && pass "the FUA write survived kill -9 of nbdkit and zpaged" ||
  fail "the FUA write was lost with nbdkit and zpaged"
same_mib 101 "$work/flushed.bin" && pass "the flushed write survived kill -9 of nbdkit and zpaged" ||
  fail "the flushed write was lost with nbdkit and zpaged"
stop_bridge TERM

echo "==> zpaged killed with -9: what it held is an I/O error, never zeros"
# flush=memory: qemu-io's flush on closing leaves the blocks in zpaged.
start_bridge "$work/spill2" flush=memory
# Right after zpaged's restart the bridge's channel may still be backing off,
# and writes then go to the spill file; write until zpaged holds the text.
for _ in $(seq 40); do
  qio "write -s $work/mixed.bin.text 120M 1M" >/dev/null
  [ "$(stored)" -ge 256 ] && break
  sleep 0.25
done
[ "$(stored)" -ge 256 ] && pass "zpaged holds the text written" ||
  fail "the text never reached zpaged: $(stored) pages"
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true
start_zpaged
# While the bridge's channel reconnects a read fails as unreachable; once it
# is back, zpaged answers NOT_FOUND and the bridge reports the loss. Every
# read must fail either way.
eio=0 reads=0
for _ in $(seq 40); do
  reads=$((reads + 1))
  if ! qio "read 120M 1M" >"$work/out" 2>&1 &&
     grep -qi "input/output error" "$work/out"; then
    eio=$((eio + 1))
  fi
  grep -q "is lost: zpaged no longer holds it" "$work/nbdkit.log" && break
  sleep 0.25
done
[ "$eio" -eq "$reads" ] && pass "a lost block is EIO ($reads reads)" ||
  fail "a lost block read without error: $(cat "$work/out")"
grep -q "is lost: zpaged no longer holds it" "$work/nbdkit.log" &&
  pass "the loss is logged" || fail "no log line for the loss"
expect "blocks zpaged did not hold still read" qio "read -P 0 $((64 << 20)) 4M"

stop_bridge TERM

echo "==> compress=zstd and compress=none: the same bytes in and out"
# zpaged compresses with LZ4 itself, so zstd pages in its counters are the
# bridge's own, kept as it sent them.
metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
start_zpaged --metrics_listen="127.0.0.1:$metrics_port"
zstd_pages() {
  python3 -c 'import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1]).read().decode()
print(int(sum(float(l.split()[-1]) for l in text.splitlines()
              if l.startswith("zpaged_zstd_pages{"))))' \
    "http://127.0.0.1:$metrics_port/metrics"
}
for mode in zstd none; do
  start_bridge "$work/spill-$mode" compress=$mode flush=memory
  expect "compress=$mode: nbdcopy in" nbdcopy "$work/mixed.bin" "$uri"
  expect "compress=$mode: nbdcopy out" nbdcopy "$uri" "$work/back-$mode.bin"
  cmp -s -n $((64 << 20)) "$work/mixed.bin" "$work/back-$mode.bin" &&
    pass "compress=$mode: 64 MiB byte-exact" || fail "compress=$mode: the copy differs"
  # Text last, so that it is what the tenant's limit leaves in zpaged.
  expect "compress=$mode: write text" qio "write -s $work/mixed.bin.text 120M 1M"
  if [ "$mode" = zstd ]; then
    [ "$(zstd_pages)" -gt 0 ] && pass "zpaged keeps the bridge's zstd pages: $(zstd_pages)" ||
      fail "no zstd pages in zpaged: the bridge did not compress"
  else
    [ "$(zstd_pages)" -eq 0 ] && pass "compress=none: zpaged compressed the pages itself" ||
      fail "compress=none: zpaged holds $(zstd_pages) zstd pages"
  fi
  stop_bridge TERM
done
refused "an unknown compressor" "compress=lz4, zstd or none" \
  server="127.0.0.1:$port" tenant=vm size=1M spill="$work/s7" compress=gzip

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
