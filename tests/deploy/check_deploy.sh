#!/usr/bin/env bash
# Checks the deployment files without a Docker engine:
#   - promtool accepts the Prometheus config and alert rules;
#   - docker-compose accepts the compose file, which is secure by default:
#     three servers, each its own --node_name, every port on loopback, a
#     token file and never ALLOW_UNAUTHENTICATED_REMOTE, Prometheus
#     scraping all three;
#   - the Grafana dashboard is valid JSON with a query in every panel;
#   - the runtime packages the Dockerfile installs provide every shared
#     library zpaged and zpagectl load (checked against this machine's dpkg);
#   - the sources the Dockerfile copies configure on their own, without tests.
#
# Usage: check_deploy.sh SOURCE_DIR ZPAGED ZPAGECTL
set -euo pipefail
src=$1 zpaged=$2 zpagectl=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
checks=0 failures=0
pass() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAILED: $*"; }
run() {  # run DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@" >"$work/out" 2>&1; then pass "$what"; else fail "$what"; cat "$work/out"; fi
}

run "promtool check config" promtool check config "$src/deploy/prometheus/prometheus.yml"
run "promtool check rules" promtool check rules "$src/deploy/prometheus/alerts.yml"
compose=(docker-compose)
docker compose version >/dev/null 2>&1 && compose=(docker compose)
run "compose config" "${compose[@]}" -f "$src/deploy/docker-compose.yml" config -q
# As resolved with no environment set: what a user gets by default.
(cd "$work" && env -u ZPAGED_PUBLISH_ADDRESS "${compose[@]}" \
   -f "$src/deploy/docker-compose.yml" config) >"$work/compose.yml" 2>"$work/err" ||
  fail "compose config: $(cat "$work/err")"
run "compose stack is secure by default" python3 - "$work/compose.yml" \
  "$src/deploy/prometheus/prometheus.yml" <<'PY'
import sys, yaml
stack = yaml.safe_load(open(sys.argv[1]))
services = stack["services"]
servers = sorted(s for s in services if s.startswith("zpaged"))
assert servers == ["zpaged-0", "zpaged-1", "zpaged-2"], servers
names = {services[s]["environment"]["ZPAGED_NODE_NAME"] for s in servers}
assert names == set(servers), f"node names {names}"
for name, service in services.items():
    for port in service.get("ports", []):
        published = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port['published']}"
        assert published.startswith("127.0.0.1:"), f"{name} publishes {published}"
for s in servers:
    env = services[s]["environment"]
    assert "ZPAGED_ALLOW_UNAUTHENTICATED_REMOTE" not in env, s
    assert env["ZPAGED_AUTH_TOKENS_FILE"] == "/run/secrets/zpaged-tokens", s
    assert any(x["source"] == "zpaged-tokens" for x in services[s]["secrets"]), s
    assert services[s]["read_only"] is True, s
prometheus = yaml.safe_load(open(sys.argv[2]))
targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
assert sorted(targets) == [f"{s}:9464" for s in servers], targets
print("3 servers, loopback only, token file, read-only, all scraped")
PY
run "dashboard JSON" python3 - "$src/deploy/grafana/dashboards/zpaged.json" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
panels = [p for p in dash["panels"] if p["type"] != "row"]
assert panels, "no panels"
for p in panels:
    assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]
PY

# Packages the runtime stage installs, as the Dockerfile lists them.
runtime=$(awk '/^FROM debian:bookworm-slim/{s=1} s' "$src/Dockerfile" |
  sed -n '/apt-get install/,/rm -rf/p' | tr ' \\' '\n\n' |
  grep -E '^lib[a-z0-9.+-]+$' || true)
run "Dockerfile names runtime packages" test -n "$runtime"
# What they pull in (their Depends, recursively), plus what every Debian
# image has (Priority: required).
python3 - "$work/allowed" $runtime <<'PY'
import subprocess, sys, re
out, todo, seen = sys.argv[1], list(sys.argv[2:]), set()
while todo:
    pkg = todo.pop()
    if pkg in seen:
        continue
    seen.add(pkg)
    deps = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", pkg],
                          capture_output=True, text=True).stdout
    for alt in deps.split(","):
        name = re.split(r"[ :(]", alt.strip().split("|")[0].strip())[0]
        if name:
            todo.append(name)
required = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Priority}\n"],
                          capture_output=True, text=True).stdout
seen |= {l.split()[0] for l in required.splitlines() if l.endswith(" required")}
open(out, "w").write("\n".join(sorted(seen)) + "\n")
PY
missing=""
for lib in $(ldd "$zpaged" "$zpagectl" | awk '/=> \// {print $3}' | sort -u); do
  pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1) || true
  [ -z "$pkg" ] && pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1) || true
  grep -qx "$pkg" "$work/allowed" || missing="$missing $lib($pkg)"
done
if [ -z "$missing" ]; then pass "runtime packages provide every shared library"; else
  fail "libraries not provided by the Dockerfile's runtime packages:$missing"; fi

# The build stage copies only these; they must configure and build alone.
mkdir "$work/ctx"
for p in $(awk '/^COPY / && !/--from/ && !/install-deps/ {print $2}' "$src/Dockerfile"); do
  cp -r "$src/$p" "$work/ctx/"
done
run "Dockerfile sources configure without tests" \
  cmake -S "$work/ctx" -B "$work/ctx/build" -G Ninja -DZPAGED_BUILD_TESTS=OFF

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
