#!/usr/bin/env bash
# The real zpaged binary, driven by zpagectl: every command, its output and
# exit status, evictions into a directory, and a clean SIGTERM.
#
# Usage: zpagectl_test.sh ZPAGED ZPAGECTL CORPUS_DIR
set -euo pipefail
zpaged=$1 zpagectl=$2 corpus=$3
work=$(mktemp -d)
server_pid="" watch_pid="" tier_pids=()
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
  for pid in "${tier_pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

checks=0 failures=0
pass() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAILED: $*"; }
expect() {  # expect DESCRIPTION COMMAND...: the command must succeed
  local what=$1; shift
  if "$@" >"$work/out" 2>"$work/err"; then pass "$what"; else fail "$what: $(cat "$work/err")"; fi
}
expect_error() {  # expect_error DESCRIPTION CODE COMMAND...: exit 1 naming CODE
  local what=$1 code=$2; shift 2
  if "$@" >"$work/out" 2>"$work/err"; then fail "$what: succeeded"; return; fi
  if grep -q "$code" "$work/err"; then pass "$what"; else fail "$what: $(cat "$work/err")"; fi
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ZPAGED_SERVER=127.0.0.1:$port
# Pages for the test: text from the corpus, zeros, and random bytes.
python3 - "$corpus" "$work" <<'PY'
import os, sys
corpus, work = sys.argv[1], sys.argv[2]
kinds = [l.split("\t")[1] for l in open(os.path.join(corpus, "manifest.tsv"))]
data = open(os.path.join(corpus, "pages.bin"), "rb").read()
text = [i for i, k in enumerate(kinds) if k == "text"][:4]
for n, i in enumerate(text):
    open(os.path.join(work, f"text{n}.page"), "wb").write(data[i*4096:(i+1)*4096])
open(os.path.join(work, "zero.page"), "wb").write(bytes(4096))
open(os.path.join(work, "random.page"), "wb").write(os.urandom(4096))
open(os.path.join(work, "short.page"), "wb").write(bytes(4095))
PY

# No metrics listener: the default port 9464 may be taken on this machine.
ZPAGED_ACK_DEADLINE=2s "$zpaged" --listen="127.0.0.1:$port" --metrics_listen= \
  --tenant_max_bytes=64M --max_memory_bytes=1G --node_name=zpaged-7 \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do
  "$zpagectl" stats >/dev/null 2>&1 && break
  sleep 0.1
done
kill -0 "$server_pid" 2>/dev/null ||
  { echo "FAILED: zpaged did not start: $(cat "$work/server.log")"; exit 1; }

expect "put a text page" "$zpagectl" --tenant=vm put 1 "$work/text0.page"
grep -q "LZ4" "$work/err" && pass "text page stored as LZ4" || fail "text page encoding: $(cat "$work/err")"
expect "get it back" "$zpagectl" --tenant=vm get 1 "$work/back.page"
cmp -s "$work/text0.page" "$work/back.page" && pass "byte-exact" || fail "page differs"
expect "put from stdin, hex key" sh -c "\"$zpagectl\" --tenant=vm put 0x10 < \"$work/zero.page\""
grep -q "SAME_FILLED" "$work/err" && pass "zero page SAME_FILLED" || fail "zero page: $(cat "$work/err")"
"$zpagectl" --tenant=vm get 16 | cmp -s - "$work/zero.page" && pass "get to stdout" || fail "get to stdout"
expect "put random" "$zpagectl" --tenant=vm put 2 "$work/random.page"
grep -q "RAW" "$work/err" && pass "random page RAW" || fail "random page: $(cat "$work/err")"
expect_error "missing page" NOT_FOUND "$zpagectl" --tenant=vm get 99
expect_error "short page" INVALID_ARGUMENT "$zpagectl" --tenant=vm put 3 "$work/short.page"
expect_error "bad tenant" INVALID_ARGUMENT "$zpagectl" --tenant='no/slash' get 1
expect_error "reclaim without watcher" FAILED_PRECONDITION "$zpagectl" --tenant=vm reclaim 1
if "$zpagectl" get 1 >/dev/null 2>&1; then fail "usage error accepted"; else
  [ $? -eq 2 ] && pass "usage error exits 2" || fail "usage error exit status"; fi

expect "stats --json" "$zpagectl" --tenant=vm stats --json
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["stored_pages"]==3 and s["same_filled_pages"]==1 and s["raw_pages"]==1, s' "$work/out" \
  && pass "stats counts" || fail "stats counts: $(cat "$work/out")"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["node"]=="zpaged-7" and s["max_memory_bytes"]==1<<30, s' "$work/out" \
  && pass "stats name the node and its limit" || fail "stats node: $(cat "$work/out")"
expect "stats table" "$zpagectl" stats
grep -q "stored pages" "$work/out" && pass "stats table readable" || fail "stats table"
grep -qE "^node +zpaged-7$" "$work/out" && pass "stats table names the node" || fail "stats table node: $(cat "$work/out")"
if "$zpaged" --listen=127.0.0.1:0 --metrics_listen= --node_name='bad/name' >"$work/bad.log" 2>&1; then
  fail "a bad --node_name was accepted"
else
  grep -q "node name may hold only" "$work/bad.log" && pass "bad --node_name refused" || fail "bad --node_name: $(cat "$work/bad.log")"
fi

mkdir "$work/evicted"
"$zpagectl" --tenant=vm watch "$work/evicted" >"$work/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 50); do grep -q watching "$work/watch.log" && break; sleep 0.1; done
expect "reclaim to the watcher" "$zpagectl" --tenant=vm reclaim 2
grep -q "reclaimed 2 pool pages, evicted 2 pages" "$work/out" && pass "reclaim counts" || fail "reclaim: $(cat "$work/out")"
cmp -s "$work/evicted/1.page" "$work/text0.page" && pass "evicted page 1 on disk" || fail "evicted page 1"
cmp -s "$work/evicted/2.page" "$work/random.page" && pass "evicted page 2 on disk" || fail "evicted page 2"
expect_error "evicted page is gone" NOT_FOUND "$zpagectl" --tenant=vm get 1
kill -TERM "$watch_pid"
if wait "$watch_pid"; then pass "watch stops on SIGTERM"; else fail "watch exit $?: $(cat "$work/watch.log")"; fi
watch_pid=""

expect "delete" "$zpagectl" --tenant=vm delete 16
grep -q "deleted 16" "$work/out" && pass "delete says so" || fail "delete: $(cat "$work/out")"
expect "delete again" "$zpagectl" --tenant=vm delete 16
grep -q "was not stored" "$work/out" && pass "delete is idempotent" || fail "second delete"

kill -TERM "$server_pid"
if wait "$server_pid"; then pass "zpaged exits 0 on SIGTERM"; else fail "zpaged exit status $?"; fi
server_pid=""
grep -q "stopped" "$work/server.log" && pass "zpaged logged its stop" || fail "server log: $(cat "$work/server.log")"

# Authentication: tokens from a file, reloaded on SIGHUP, never logged.
printf 'Sekr1t-alpha vm\n' > "$work/tokens"
"$zpaged" --listen="127.0.0.1:$port" --metrics_listen= \
  --auth_tokens_file="$work/tokens" >"$work/auth.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do "$zpagectl" health >/dev/null 2>&1 && break; sleep 0.1; done
expect_error "no token" UNAUTHENTICATED "$zpagectl" --tenant=vm get 1
expect "put with --token" "$zpagectl" --tenant=vm --token=Sekr1t-alpha put 1 "$work/text0.page"
expect "get with ZPAGED_TOKEN" env ZPAGED_TOKEN=Sekr1t-alpha "$zpagectl" --tenant=vm get 1 "$work/back.page"
expect_error "other tenant" PERMISSION_DENIED "$zpagectl" --tenant=other --token=Sekr1t-alpha get 1
printf 'Sekr1t-alpha other\n' > "$work/tokens"
kill -HUP "$server_pid"
for _ in $(seq 50); do grep -q "reloaded 1 tokens" "$work/auth.log" && break; sleep 0.1; done
grep -q "reloaded 1 tokens" "$work/auth.log" && pass "SIGHUP reloads the tokens" || fail "reload: $(cat "$work/auth.log")"
expect_error "old grant gone after reload" PERMISSION_DENIED "$zpagectl" --tenant=vm --token=Sekr1t-alpha get 1
kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=""
if grep -q Sekr1t "$work/auth.log"; then fail "a token was logged"; else pass "tokens never logged"; fi

# TLS and mutual TLS, with certificates made here.
tls="$work/tls"; mkdir "$tls"
(
  cd "$tls"
  ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  openssl req -x509 $ec -days 1 -subj /CN=zpaged-test-ca -keyout ca.key -out ca.pem
  openssl req $ec -subj /CN=localhost -keyout server.key -out server.csr
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile san.ext -out server.pem
  openssl req $ec -subj /CN=zpaged-client -keyout client.key -out client.csr
  openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -out client.pem
) >/dev/null 2>&1 && pass "test certificates made" || fail "openssl could not make certificates"
start_server() {  # start_server LOG ARGS...
  local log=$1; shift
  "$zpaged" --listen="127.0.0.1:$port" --metrics_listen= "$@" >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do grep -q serving "$log" && return; sleep 0.1; done
}
stop_server() { kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=""; }

start_server "$work/tls.log" --tls_cert="$tls/server.pem" --tls_key="$tls/server.key"
expect "TLS: put with --tls_ca" "$zpagectl" --tls_ca="$tls/ca.pem" --tenant=vm put 1 "$work/text0.page"
rm -f "$work/back.page"
expect "TLS: get with ZPAGED_TLS_CA" env ZPAGED_TLS_CA="$tls/ca.pem" "$zpagectl" --tenant=vm get 1 "$work/back.page"
cmp -s "$work/text0.page" "$work/back.page" && pass "TLS: byte-exact" || fail "TLS: page differs"
expect_error "TLS: plaintext client refused" UNAVAILABLE "$zpagectl" --timeout=2s --tenant=vm get 1
stop_server

start_server "$work/mtls.log" --tls_cert="$tls/server.pem" --tls_key="$tls/server.key" \
  --tls_client_ca="$tls/ca.pem"
expect_error "mTLS: client without certificate refused" UNAVAILABLE \
  "$zpagectl" --timeout=2s --tls_ca="$tls/ca.pem" --tenant=vm get 1
expect "mTLS: client with certificate" "$zpagectl" --tls_ca="$tls/ca.pem" \
  --tls_cert="$tls/client.pem" --tls_key="$tls/client.key" health
stop_server

if "$zpaged" --listen="127.0.0.1:$port" --tls_cert="$tls/server.pem" >"$work/bad.log" 2>&1; then
  fail "--tls_cert without --tls_key accepted"
else
  grep -q "tls_key" "$work/bad.log" && pass "--tls_cert without --tls_key refused" || fail "bad TLS flags: $(cat "$work/bad.log")"
fi

# Three servers as one tier: pages go to two of them; stats ask each.
tier="" tier_addresses=()
for i in 0 1 2; do
  p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$zpaged" --listen="127.0.0.1:$p" --metrics_listen= --node_name="tier-$i" \
    >"$work/tier-$i.log" 2>&1 &
  tier_pids+=($!)
  tier_addresses+=("127.0.0.1:$p")
  tier="$tier${tier:+,}tier-$i=127.0.0.1:$p"
  for _ in $(seq 50); do "$zpagectl" --server="127.0.0.1:$p" health >/dev/null 2>&1 && break; sleep 0.1; done
done
expect "tier: put" "$zpagectl" --server="$tier" --tenant=vm put 7 "$work/text1.page"
grep -q "2 copies" "$work/err" && pass "tier: two copies" || fail "tier put: $(cat "$work/err")"
expect "tier: get" "$zpagectl" --server="$tier" --tenant=vm get 7 "$work/back.page"
cmp -s "$work/text1.page" "$work/back.page" && pass "tier: byte-exact" || fail "tier: page differs"
expect "tier: stats of each" "$zpagectl" --server="$tier" --tenant=vm stats
[ "$(grep -c '^== tier-' "$work/out")" -eq 3 ] && [ "$(grep -cE '^stored pages +1$' "$work/out")" -eq 2 ] &&
  pass "tier: the page on two of three" || fail "tier stats: $(cat "$work/out")"
kill -9 "${tier_pids[0]}"
expect "tier: get with one server dead" "$zpagectl" --server="$tier" --tenant=vm get 7 "$work/back.page"
cmp -s "$work/text1.page" "$work/back.page" && pass "tier: still byte-exact" || fail "tier: page differs after a kill"
expect_error "tier: a name that is not the server's" FAILED_PRECONDITION \
  "$zpagectl" --server="tier-9=${tier_addresses[1]},tier-2=${tier_addresses[2]}" --tenant=vm get 7

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
