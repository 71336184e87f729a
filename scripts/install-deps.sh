#!/usr/bin/env bash
# Installs the Debian 12 packages zpaged needs. Idempotent: when everything is
# present it says so in one line.
#
#   scripts/install-deps.sh                  build, test and run (the default)
#   scripts/install-deps.sh --runtime-build  only what building zpaged and
#                                            zpagectl needs (the container)
set -euo pipefail

# To build zpaged, zpagectl and the NBD bridge (an nbdkit plugin).
build_packages=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev liblz4-dev libzstd-dev prometheus-cpp-dev nbdkit-plugin-dev
)
# To build and run the tests and benchmarks: GoogleTest, Google Benchmark,
# clang's sanitizer runtimes, gdb for gcore (the page corpus), python3 for the
# corpus and end-to-end scripts, Prometheus (promtool and the server),
# docker-compose (to validate the compose file; no engine is needed), and
# Redis with hiredis, the peer zpaged-bench measures zpaged against,
# python3-h2, the frame-level HTTP/2 client of the hardening tests, and the
# NBD server and clients the bridge is tested and measured with (nbdkit,
# nbdinfo and nbdcopy, fio's nbd engine, qemu-io and qemu-img), and
# iproute2, whose network namespaces are the hosts of the tier tests, and
# the real guest of tests/vm: QEMU, Debian's kernel (and kmod to find its
# modules), busybox and cpio for its initramfs; podman with runc, netavark
# and aardvark-dns (names between containers) and debootstrap (the base
# image, made locally) for the container tests; and Node.js, which runs the
# Kubernetes manifests' schema check (npm below).
test_packages=(
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  clang lld libclang-rt-14-dev clang-format
  gdb python3 curl openssl prometheus docker-compose
  libhiredis-dev redis-server python3-h2
  nbdkit libnbd-bin fio qemu-utils iproute2
  qemu-system-x86 linux-image-amd64 kmod busybox-static cpio
  podman runc netavark aardvark-dns debootstrap nodejs
)

packages=("${build_packages[@]}")
case "${1:-}" in
  --runtime-build) ;;
  "") packages+=("${test_packages[@]}") ;;
  *) echo "usage: $0 [--runtime-build]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done

# npm comes in Debian's own package, or inside another nodejs build (the
# NodeSource one ships its own): asked for only when the command is missing.
if [ -z "${1:-}" ] && ! command -v npm >/dev/null; then
  missing+=(npm)
fi

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
