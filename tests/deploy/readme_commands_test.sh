#!/usr/bin/env bash
# The README's commands after its Quick start, run as written: with zpaged on
# its defaults (what scripts/run-server.sh starts, 127.0.0.1:50051), the
# "from another shell" block, then the NBD bridge section's nbdkit and
# nbdinfo lines (not the guest's qemu line, whose "..." is the user's). The
# commands' paths are relative to the repository, as a user runs them: they
# run in a scratch directory whose build/ is the repository's.
#
# Usage: readme_commands_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
if [ "$(cd "$build" && pwd -P)" != "$(cd "$src" && pwd -P)/build" ]; then
  echo "skipped: the README's commands use build/; this build is $build"
  exit 77
fi
work=$(mktemp -d)
server_pid=""
cleanup() {
  pkill -f "nbdkit -U /tmp/vm-1.sock" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work" /tmp/vm-1.sock /var/tmp/vm-1.spill
}
trap cleanup EXIT
# What an earlier bridge on the README's paths may have left.
pkill -f "nbdkit -U /tmp/vm-1.sock" 2>/dev/null || true
rm -f /tmp/vm-1.sock /var/tmp/vm-1.spill
ln -s "$src/build" "$work/build"
cd "$work"

# The README's ```sh block after a line matching PATTERN, continuation
# lines joined, comments and "..." lines dropped.
block() {
  python3 - "$src/README.md" "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
after = text[re.search(sys.argv[2], text).end():]
body = re.search(r"```sh\n(.*?)```", after, re.S).group(1)
for line in body.replace("\\\n", " ").splitlines():
    line = re.sub(r"\s+#.*$", "", line).strip()
    if line and "..." not in line:
        print(line)
PY
}

# As scripts/run-server.sh starts it, on its defaults.
build/server/zpaged >"$work/zpaged.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do
  build/client/zpagectl health >/dev/null 2>&1 && break
  sleep 0.1
done

checks=0 failures=0
run_block() {  # run_block NAME PATTERN: each command of the block must succeed
  while IFS= read -r command; do
    checks=$((checks + 1))
    if output=$(bash -c "$command" 2>&1); then
      echo "ok: $command"
      printf '%s\n' "$output" | sed 's/^/    /' | head -5
    else
      failures=$((failures + 1))
      echo "FAILED ($1): $command"
      printf '%s\n' "$output" | sed 's/^/    /'
    fi
  done < <(block "$2")
}
run_block "quick start" "Then, from another shell:"
run_block "NBD bridge" "zpaged running \\(above\\), in three commands:"

checks=$((checks + 1))
if nbdinfo --size "nbd+unix:///?socket=/tmp/vm-1.sock" 2>/dev/null | grep -qx 4294967296; then
  echo "ok: the bridge exports the README's 4 GiB device"
else
  failures=$((failures + 1))
  echo "FAILED: the bridge does not export a 4 GiB device"
fi
echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
