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
mkdir -p "$debs/debootstrap" "$debs/apt/partial"
# Whatever happens, leave no mount behind in the tree build-image may delete.
trap 'lab_unmount_under "$rootfs" || lab_log "could not unmount everything under $rootfs"' EXIT

mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$LAB_SRC/image/packages")
# Bounds for the network-bound steps: a stalled mirror must fail the build,
# not hang it. A normal build takes 20-40 s for each.
DEBOOTSTRAP_TIMEOUT=900
APT_TIMEOUT=1200

debootstrap_rootfs() {
  # minbase: just Essential + apt; everything else comes from the list, through
  # apt, whose dependency resolution handles the Xen packages' virtual deps.
  timeout -k 10 "$DEBOOTSTRAP_TIMEOUT" debootstrap --variant=minbase --cache-dir="$debs/debootstrap" \
    "$LAB_SUITE" "$rootfs" "$LAB_MIRROR" >"$rootfs.debootstrap.log" 2>&1 || {
    tail -n 30 "$rootfs.debootstrap.log" >&2
    lab_die "debootstrap $LAB_SUITE from $LAB_MIRROR failed or took over ${DEBOOTSTRAP_TIMEOUT}s (log above, full log $rootfs.debootstrap.log); check network access to the mirror"
  }
  rm -f "$rootfs.debootstrap.log"
}

install_packages() {
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $LAB_MIRROR $LAB_SUITE main
deb $LAB_MIRROR $LAB_SUITE-updates main
deb $LAB_SECURITY_MIRROR $LAB_SUITE-security main
EOF
  # Package scripts must not start daemons in the chroot (xen, udev): they
  # would run on the build host and keep the tree busy.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

  # The small Dom0 initramfs is configured before the kernel is installed, so
  # it is built once. Debian's default (MODULES=most, ~41 MB) takes long to
  # unpack under TCG; root on a virtio disk needs only these three.
  mkdir -p "$rootfs/etc/initramfs-tools/conf.d"
  printf 'MODULES=list\nCOMPRESS=gzip\n' >"$rootfs/etc/initramfs-tools/conf.d/lab.conf"
  printf 'virtio_pci\nvirtio_blk\next4\n' >"$rootfs/etc/initramfs-tools/modules"

  lab_chroot_mounts "$rootfs"
  mount --bind "$debs/apt" "$rootfs/var/cache/apt/archives"
  printf 'Acquire::Retries "3";\nAcquire::http::Timeout "60";\n' >"$rootfs/etc/apt/apt.conf.d/80lab-network"
  timeout -k 10 300 chroot "$rootfs" apt-get update -q >/dev/null ||
    lab_die "apt-get update in the Dom0 chroot failed or took over 300s; check network access to $LAB_MIRROR"
  # confold: keep the initramfs 'modules' file written above over the
  # package's own copy of that conffile.
  DEBIAN_FRONTEND=noninteractive timeout -k 10 "$APT_TIMEOUT" chroot "$rootfs" apt-get install -y -q \
    --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${packages[@]}" >"$rootfs.apt.log" 2>&1 || {
    tail -n 30 "$rootfs.apt.log" >&2
    lab_die "apt-get install in the Dom0 chroot failed or took over ${APT_TIMEOUT}s (log above, full log $rootfs.apt.log)"
  }
  rm -f "$rootfs.apt.log"
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
