#!/usr/bin/env bash
# Builds the test guest once per test run: Debian's kernel (linux-image-amd64)
# and an initramfs of busybox (busybox-static), the virtio modules the disk
# needs, tests/vm/init and page_churn. Exit 77 (skipped, the reason printed)
# where there is no kernel, busybox or QEMU to run it with.
#
# Usage: build_guest.sh OUT_DIR PAGE_CHURN
# Writes OUT_DIR/vmlinuz and OUT_DIR/initramfs.gz.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1 page_churn=$2

command -v qemu-system-x86_64 >/dev/null ||
  { echo "skipped: no qemu-system-x86_64 (Debian: qemu-system-x86)"; exit 77; }
[ -x /bin/busybox ] || { echo "skipped: no /bin/busybox (Debian: busybox-static)"; exit 77; }
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)
[ -n "$kernel" ] || { echo "skipped: no kernel in /boot (Debian: linux-image-amd64)"; exit 77; }
version=${kernel#/boot/vmlinuz-}

echo "==> guest: kernel $version, busybox, virtio modules, page_churn into $out"
rm -rf "$out"
mkdir -p "$out/root/bin" "$out/root/lib/modules" "$out/root/proc" "$out/root/sys" "$out/root/dev"
cp "$kernel" "$out/vmlinuz"
cp /bin/busybox "$out/root/bin/busybox"
cp "$here/init" "$out/root/init"
cp "$page_churn" "$out/root/page_churn"
# In the order init loads them: each after the modules it needs.
for module in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev \
              virtio_pci virtio_blk; do
  file=$(modinfo -k "$version" -n "$module")
  case "$file" in
    *.ko) cp "$file" "$out/root/lib/modules/" ;;
    *.ko.xz) xz -dc "$file" >"$out/root/lib/modules/$module.ko" ;;
    *.ko.zst) zstd -qdc "$file" >"$out/root/lib/modules/$module.ko" ;;
    *) echo "no module $module for kernel $version"; exit 1 ;;
  esac
done
(cd "$out/root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initramfs.gz"
rm -rf "$out/root"
echo "==> guest ready: $(du -h "$out/initramfs.gz" | cut -f1) initramfs"
