#!/usr/bin/env bash
# Installs the Debian 12 packages zpaged needs to build, test and run.
# Idempotent: when everything is present it says so in one line and exits.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ninja-build
  clang lld libclang-rt-14-dev clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev liblz4-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  gdb prometheus curl python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
