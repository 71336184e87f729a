#!/usr/bin/env bash
# The image built from the Dockerfile as a user builds it, and run for real
# with podman (Debian's, with runc), then the three-server compose stack
# brought up with Debian's docker-compose against podman's Docker API:
#
#   image   build time and size; health, put/get and a metrics scrape through
#           published ports; the non-root user; a read-only root filesystem;
#           the runtime packages exactly those the binaries load; SIGTERM
#           stops it within the stop grace, its drain logged
#   compose zpaged-0..2 healthy on 127.0.0.1 with a token, Prometheus (built
#           here from Debian's package: no registry is reachable) with the
#           three targets up, a page written through a published port in
#           zpaged_stored_pages, the alert rules evaluated, `docker-compose
#           stop` draining every server cleanly
#
# No registry is reachable, so the Debian base image is made here with
# debootstrap once and kept in podman's storage (as are the build's layers):
# later runs reuse it. Exits 77 (skipped), saying why, only where podman
# cannot run a container at all.
#
# Usage: container_test.sh SOURCE_DIR WORK_DIR ZPAGECTL
set -euo pipefail
src=$1 work=$2 zpagectl=$3
mkdir -p "$work"
run_dir=$(mktemp -d "$work/run.XXXXXX")
# The compose stack, copied, so that its secrets/ holds this run's token.
stack=$run_dir/deploy
image=zpaged:container-test
prometheus_image=zpaged-test-prometheus:bookworm
project=zpagedtest
service_pid=""
cleanup() {
  podman rm -f zpaged-test >/dev/null 2>&1 || true
  if [ -n "$service_pid" ]; then
    DOCKER_HOST="unix://$run_dir/podman.sock" docker-compose -p "$project" \
      -f "$stack/docker-compose.yml" down -t 5 >/dev/null 2>&1 || true
    kill "$service_pid" 2>/dev/null || true
  fi
  rm -rf "$run_dir"
}
trap cleanup EXIT

checks=0 failures=0
pass() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAILED: $*"; }
step() { echo "==> $*"; }

# podman as this workplace runs it: runc (crun refuses hybrid cgroups),
# cgroupfs, container limits within the host's hard limits, and netavark,
# whose aardvark-dns lets the compose services find each other by name.
export CONTAINERS_CONF=$work/containers.conf
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
[network]
network_backend = "netavark"
EOF
for tool in podman runc debootstrap docker-compose; do
  command -v "$tool" >/dev/null ||
    { echo "FAILED: $tool is missing (scripts/install-deps.sh installs it)"; exit 1; }
done
if ! podman info >/dev/null 2>"$run_dir/info.err"; then
  echo "skipped: podman cannot run here: $(tail -1 "$run_dir/info.err")"
  exit 77
fi

if podman image exists docker.io/library/debian:bookworm; then
  step "base image: debian:bookworm, made by an earlier run"
else
  step "base image: debootstrap --variant=minbase bookworm (about 40 s, once)"
  debootstrap --variant=minbase bookworm "$run_dir/rootfs" \
    http://deb.debian.org/debian >"$run_dir/debootstrap.log" 2>&1 ||
    { echo "FAILED: debootstrap: $(tail -3 "$run_dir/debootstrap.log")"; exit 1; }
  rm -f "$run_dir"/rootfs/var/cache/apt/archives/*.deb
  tar -C "$run_dir/rootfs" -c . |
    podman import - docker.io/library/debian:bookworm >/dev/null
  rm -rf "$run_dir/rootfs"
fi
podman tag docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim

step "podman build -t $image . (the Dockerfile as it is; minutes when the sources changed)"
started=$(date +%s)
if podman build --network=host -t "$image" -f "$src/Dockerfile" "$src" \
     >"$run_dir/build.log" 2>&1; then
  pass "the image builds, in $(( $(date +%s) - started )) s"
else
  fail "podman build: $(tail -20 "$run_dir/build.log")"
  exit 1
fi
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image size: $((size / 1024 / 1024)) MiB"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_serving() {  # wait_serving PORT: zpagectl health answers SERVING
  for _ in $(seq 100); do
    "$zpagectl" --server="127.0.0.1:$1" --timeout=1s health >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

step "the image on its own: published ports, a token, read-only, then SIGTERM"
"$src/deploy/make-tokens.sh" --file "$run_dir/secrets/tokens" demo >/dev/null
export ZPAGED_TOKEN
ZPAGED_TOKEN=$(cat "$run_dir/secrets/tokens.token")
port=$(free_port) metrics_port=$(free_port)
podman run -d --name zpaged-test --read-only --stop-timeout 20 \
  -p "127.0.0.1:$port:50051" -p "127.0.0.1:$metrics_port:9464" \
  -v "$run_dir/secrets/tokens:/run/secrets/zpaged-tokens:ro" \
  -e ZPAGED_AUTH_TOKENS_FILE=/run/secrets/zpaged-tokens \
  -e ZPAGED_DRAIN_ON_SHUTDOWN=true -e ZPAGED_DRAIN_DEADLINE=10s \
  "$image" >/dev/null
if wait_serving "$port"; then pass "health SERVING through the published port"
else fail "not serving: $(podman logs zpaged-test 2>&1 | tail -5)"; fi
head -c 4096 /dev/urandom >"$run_dir/page"
"$zpagectl" --server="127.0.0.1:$port" --tenant=demo put 7 "$run_dir/page" >/dev/null &&
  "$zpagectl" --server="127.0.0.1:$port" --tenant=demo get 7 "$run_dir/back" &&
  cmp -s "$run_dir/page" "$run_dir/back" &&
  pass "put and get a page with the token" || fail "put/get through the published port"
refused=$(ZPAGED_TOKEN= "$zpagectl" --server="127.0.0.1:$port" --tenant=demo get 7 \
            "$run_dir/back" 2>&1 || true)
if grep -q UNAUTHENTICATED <<<"$refused"; then
  pass "without the token: UNAUTHENTICATED"
else
  fail "a call without the token was not refused"
fi
# Captured, not piped to grep -q: under pipefail, curl dying of SIGPIPE after
# grep's early exit fails a scrape that had the line.
scrape=$(curl -sS --max-time 10 "http://127.0.0.1:$metrics_port/metrics" 2>&1) || true
if grep -q '^zpaged_stored_pages{tenant="demo"} 1$' <<<"$scrape"; then
  pass "metrics scraped through the published port"
else
  fail "no zpaged_stored_pages{tenant=\"demo\"} 1 in the scrape:" \
    "$(grep -E '^(zpaged_stored_pages|curl)' <<<"$scrape" | head -5)"
fi
user=$(podman exec zpaged-test id -u)
[ "$user" = 10001 ] && pass "runs as the non-root user zpaged (uid $user)" ||
  fail "runs as uid $user"
if podman exec zpaged-test sh -c 'touch /usr/local/bin/x' 2>/dev/null; then
  fail "the root filesystem is writable"
else
  pass "the root filesystem is read-only"
fi
# The runtime packages are exactly those that own a library the binaries load.
podman exec zpaged-test sh -c '
  ldd /usr/local/bin/zpaged /usr/local/bin/zpagectl | awk "/=> \// {print \$3}" |
    sort -u | xargs -n1 readlink -f | xargs dpkg -S 2>/dev/null | cut -d: -f1 | sort -u
  ldd /usr/local/bin/zpaged /usr/local/bin/zpagectl | grep -c "not found" || true' \
  >"$run_dir/loaded"
listed=$(awk '/^FROM debian:bookworm-slim/{s=1} s' "$src/Dockerfile" |
  sed -n '/apt-get install/,/rm -rf/p' | tr ' \\' '\n\n' | grep -E '^lib[a-z0-9.+-]+$' | sort -u)
unneeded=$(comm -23 <(echo "$listed") <(sed '$d' "$run_dir/loaded" | sort -u) | tr '\n' ' ')
missing_libs=$(tail -1 "$run_dir/loaded")
[ -z "$unneeded" ] && pass "every runtime package is one the binaries load a library from" ||
  fail "runtime packages nothing loads: $unneeded"
[ "$missing_libs" = 0 ] && pass "every library the binaries load is installed" ||
  fail "$missing_libs libraries not found"
started=$(date +%s)
podman stop -t 20 zpaged-test >/dev/null
took=$(( $(date +%s) - started ))
code=$(podman inspect --format '{{.State.ExitCode}}' zpaged-test)
logs=$(podman logs zpaged-test 2>&1)
[ "$code" = 0 ] && [ "$took" -lt 20 ] && pass "SIGTERM: exit 0 in $took s, within the 20 s grace" ||
  fail "SIGTERM: exit $code after $took s"
grep -q "drained .* to their watchers" <<<"$logs" && grep -q "zpaged: stopped" <<<"$logs" &&
  pass "the drain and the stop are logged" || fail "no drain in the log: $(tail -3 <<<"$logs")"
podman rm zpaged-test >/dev/null

step "Prometheus image from Debian's package (no registry here; once)"
if ! podman image exists "$prometheus_image"; then
  cat >"$run_dir/Containerfile.prometheus" <<'EOF'
FROM docker.io/library/debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
EOF
  podman build --network=host -t "$prometheus_image" -f "$run_dir/Containerfile.prometheus" \
    "$run_dir" >"$run_dir/prometheus-build.log" 2>&1 ||
    { fail "Prometheus image: $(tail -5 "$run_dir/prometheus-build.log")"; exit 1; }
fi

step "compose: zpaged-0..2 and Prometheus through docker-compose on podman's Docker API"
podman system service --time=0 "unix://$run_dir/podman.sock" >"$run_dir/service.log" 2>&1 &
service_pid=$!
export DOCKER_HOST=unix://$run_dir/podman.sock
for _ in $(seq 50); do [ -S "$run_dir/podman.sock" ] && break; sleep 0.1; done
compose() {
  PROMETHEUS_IMAGE=$prometheus_image docker-compose -p "$project" \
    -f "$stack/docker-compose.yml" "$@"
}
cp -r "$src/deploy" "$stack"
rm -rf "$stack/secrets"
"$stack/make-tokens.sh" demo >/dev/null
ZPAGED_TOKEN=$(cat "$stack/secrets/tokens.token")
# The compose file's image name, for --no-build.
podman tag "$image" zpaged:local
if compose up -d --no-build zpaged-0 zpaged-1 zpaged-2 prometheus >"$run_dir/up.log" 2>&1; then
  pass "docker-compose up: three servers and Prometheus"
else
  fail "docker-compose up: $(tail -10 "$run_dir/up.log")"
  exit 1
fi
for i in 0 1 2; do
  if wait_serving $((50051 + i)); then pass "zpaged-$i serving on 127.0.0.1:$((50051 + i))"
  else fail "zpaged-$i not serving: $(compose logs --tail=5 zpaged-$i 2>&1)"; fi
done
"$zpagectl" --server=127.0.0.1:50051 --tenant=demo put 1 "$run_dir/page" >/dev/null &&
  pass "a page put through zpaged-0's published port" || fail "put to zpaged-0"
prom() {  # prom PATH: Prometheus' HTTP API, JSON on stdout
  curl -sf "http://127.0.0.1:9090$1"
}
up=0 stored=""
for _ in $(seq 60); do
  up=$(prom '/api/v1/query?query=sum(up%7Bjob%3D%22zpaged%22%7D)' 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)' 2>/dev/null || echo 0)
  stored=$(prom '/api/v1/query?query=zpaged_stored_pages%7Btenant%3D%22demo%22%7D' 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(",".join(x["metric"]["instance"] + "=" + x["value"][1] for x in r))' 2>/dev/null || true)
  [ "$up" = 3 ] && [[ "$stored" == *"zpaged-0:9464=1"* ]] && break
  sleep 1
done
[ "$up" = 3 ] && pass "Prometheus: the three targets up" || fail "Prometheus: $up targets up"
[[ "$stored" == *"zpaged-0:9464=1"* ]] && pass "Prometheus: zpaged_stored_pages{tenant=\"demo\"} ($stored)" ||
  fail "Prometheus has no zpaged_stored_pages for demo: $stored"
rules=$(prom /api/v1/rules | python3 -c '
import json, sys
groups = json.load(sys.stdin)["data"]["groups"]
rules = [r for g in groups for r in g["rules"]]
print(len(rules), sum(r["health"] == "ok" and r.get("lastEvaluation", "").startswith("20") for r in rules))')
read -r total evaluated <<<"$rules"
[ "${total:-0}" -gt 0 ] && [ "$evaluated" = "$total" ] &&
  pass "Prometheus evaluated all $total alert rules" || fail "alert rules: $rules"
if compose stop -t 20 >"$run_dir/stop.log" 2>&1; then
  pass "docker-compose stop"
else
  fail "docker-compose stop: $(tail -5 "$run_dir/stop.log")"
fi
for i in 0 1 2; do
  logs=$(compose logs --no-color zpaged-$i 2>&1)
  code=$(podman inspect --format '{{.State.ExitCode}}' "${project}_zpaged-${i}_1" 2>/dev/null ||
         podman inspect --format '{{.State.ExitCode}}' "${project}-zpaged-${i}-1" 2>/dev/null || echo "?")
  grep -q "drained .* to their watchers" <<<"$logs" && grep -q "zpaged: stopped" <<<"$logs" &&
    [ "$code" = 0 ] && pass "zpaged-$i drained and stopped cleanly (exit 0)" ||
    fail "zpaged-$i on stop: exit $code, $(tail -3 <<<"$logs")"
done

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
