#!/usr/bin/env bash
# Stage 1 of the lab image: a Debian root filesystem with Xen, the Debian
# kernel with a small initramfs, and LVM. The slow part (~2 min, network);
# build-image caches its result by a hash of this file and image/packages.
#
#   rootfs.sh ROOTFS DEB_CACHE      (as root; ROOTFS must not exist)
#
# DEB_CACHE keeps downloaded .debs between rebuilds of the same build tree.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/../lib.sh"

rootfs=$1
debs=$2
[[ ! -e $rootfs ]] || lab_die "rootfs.sh: $rootfs already exists"
# Whatever happens, leave no mount behind in the tree build-image may delete.
trap 'lab_unmount_under "$rootfs" || lab_log "could not unmount everything under $rootfs"' EXIT

mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$LAB_SRC/image/packages")

debootstrap_rootfs() { lab_debootstrap "$rootfs" "$debs" "the Dom0 root"; }

install_packages() {
  lab_apt_prepare "$rootfs"
  # The small Dom0 initramfs is configured before the kernel is installed, so
  # it is built once. Debian's default (MODULES=most, ~41 MB) takes long to
  # unpack under TCG; root on a virtio disk needs only these three.
  mkdir -p "$rootfs/etc/initramfs-tools/conf.d"
  printf 'MODULES=list\nCOMPRESS=gzip\n' >"$rootfs/etc/initramfs-tools/conf.d/lab.conf"
  printf 'virtio_pci\nvirtio_blk\next4\n' >"$rootfs/etc/initramfs-tools/modules"
  lab_apt_install "$rootfs" "$debs" Dom0 "${packages[@]}"
}

check_initramfs() {
  local kv initrd size
  kv=$(basename "$(ls "$rootfs"/boot/vmlinuz-* | sort -V | tail -n 1)")
  kv=${kv#vmlinuz-}
  initrd=$rootfs/boot/initrd.img-$kv
  size=$(stat -c %s "$initrd" 2>/dev/null || echo 0)
  # A big initramfs means the list above was ignored: rebuild it rather than
  # pay ~20 s more on every boot.
  if ((size == 0 || size > 25 * 1024 * 1024)); then
    lab_log "Dom0 initramfs is $((size / 1024 / 1024)) MB, rebuilding it with MODULES=list"
    timeout -k 10 600 chroot "$rootfs" update-initramfs -c -k "$kv" >/dev/null
    size=$(stat -c %s "$initrd")
  fi
  lab_log "Dom0 kernel $kv, initramfs $((size / 1024 / 1024)) MB"
}

lab_step debootstrap debootstrap_rootfs
lab_step dom0-packages install_packages
lab_step dom0-initramfs check_initramfs
lab_unmount_under "$rootfs" || lab_die "could not unmount the chroot mounts under $rootfs"
