#!/usr/bin/env bash
# Checks deploy/kubernetes without a cluster: installs the schema packages
# (tests/deploy/kubernetes/package-lock.json, from the npm registry, once per
# build directory), then runs validate.mjs (every manifest against the
# Kubernetes API's schemas, and against what `zpaged --help` says). The
# plain scrape job is checked there too: Debian's promtool is built without
# Kubernetes discovery, so it cannot read one.
#
# Usage: check_kubernetes.sh SOURCE_DIR ZPAGED WORK_DIR
set -euo pipefail
src=$1 zpaged=$2 work=$3
here=$src/tests/deploy/kubernetes
for tool in node npm; do
  command -v "$tool" >/dev/null ||
    { echo "FAILED: $tool is missing (scripts/install-deps.sh installs it)"; exit 1; }
done
mkdir -p "$work"
cp "$here/package.json" "$here/validate.mjs" "$work/"
if ! cmp -s "$here/package-lock.json" "$work/package-lock.json" ||
   [ ! -d "$work/node_modules" ]; then
  echo "installing kubernetes-models and yaml from the npm registry into $work (once)"
  cp "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
fi
"$zpaged" --help >"$work/zpaged-help.txt" 2>&1 || true
(cd "$work" && node validate.mjs "$src/deploy/kubernetes" zpaged-help.txt)

