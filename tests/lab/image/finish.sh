#!/usr/bin/env bash
# Stage 2 of the lab image: from a copy of the stage 1 root filesystem, add the
# runtime libraries of xenctl's binaries, configure Dom0 for the lab, build the
# PV guest's kernel and initramfs, and write the boot files and the disk image.
# Fast (well under a minute) next to stage 1, so it reruns whenever the
# binaries' libraries or these files change.
#
#   finish.sh BASE_ROOTFS OUT_DIR DEB_CACHE [RUNTIME_PACKAGE...]   (as root)
#
# OUT_DIR receives: xen (the multiboot ELF), vmlinuz, initrd.img (Dom0),
# root.img (ext4), manifest.txt.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/../lib.sh"

base=$1
out=$2
debs=$3
shift 3
runtime_packages=("$@")
# What else the image needs (programs xenctld runs, the xenctl package's
# Depends, what scenarios use): image/packages-image.
mapfile -t image_packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$LAB_SRC/image/packages-image")
rootfs=$out/rootfs
trap 'lab_unmount_under "$rootfs" || lab_log "could not unmount everything under $rootfs"' EXIT

kernel_version() {
  local v
  v=$(basename "$(ls "$rootfs"/boot/vmlinuz-* | sort -V | tail -n 1)")
  printf '%s\n' "${v#vmlinuz-}"
}

copy_base() {
  mkdir -p "$out"
  cp -a --reflink=auto "$base" "$rootfs"
}

install_runtime_packages() {
  ((${#runtime_packages[@]} > 0)) || lab_log "no xenctl binaries built yet: the image gets no runtime libraries"
  lab_log "runtime packages: ${runtime_packages[*]}; image packages: ${image_packages[*]}"
  lab_chroot_mounts "$rootfs"
  mount --bind "$debs/apt" "$rootfs/var/cache/apt/archives"
  # The lists in the base may be days old; refresh them so apt finds the
  # versions the mirror serves now.
  timeout -k 10 300 chroot "$rootfs" apt-get update -q >/dev/null ||
    lab_die "apt-get update in the Dom0 image failed or took over 300s; check network access to $LAB_MIRROR"
  DEBIAN_FRONTEND=noninteractive timeout -k 10 900 chroot "$rootfs" apt-get install -y -q --no-install-recommends \
    "${runtime_packages[@]}" "${image_packages[@]}" >"$out/apt.log" 2>&1 || {
    tail -n 30 "$out/apt.log" >&2
    lab_die "installing the runtime packages in the Dom0 image failed or took over 900s (log above)"
  }
  rm -f "$out/apt.log"
  lab_unmount_under "$rootfs"
}

configure_dom0() {
  echo lab-dom0 >"$rootfs/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 lab-dom0\n' >"$rootfs/etc/hosts"
  printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' >"$rootfs/etc/fstab"
  chroot "$rootfs" passwd -d root >/dev/null
  # Guest consoles go to /var/log/xen/console/guest-NAME.log, which the
  # scenarios read. xenconsoled does not create that directory and Debian does
  # not ship it: without it --log=guest silently logs nothing.
  sed -i '/^XENCONSOLED_ARGS=/d' "$rootfs/etc/default/xen"
  echo 'XENCONSOLED_ARGS="--log=guest"' >>"$rootfs/etc/default/xen"
  mkdir -p "$rootfs/var/log/xen/console"
  configure_systemd
  # Mount points of the two virtio-9p shares: inputs (read-only) and results.
  mkdir -p "$rootfs/mnt/lab" "$rootfs/mnt/lab-out"
  # Build-time only: let services start in the booted Dom0; drop what the
  # image never uses to keep it small and quick to write.
  rm -f "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin
}

# configure_systemd: Dom0 boots with systemd as PID 1, as a Xen host does.
# Debian's /etc/init.d/xen runs as xen.service (the SysV generator); the lab's
# runner, lab-boot.service, starts after it. What a lab Dom0 never uses is
# masked: it would only cost boot time under TCG.
configure_systemd() {
  local sd=$rootfs/etc/systemd/system u
  install -m 0755 "$LAB_SRC/image/lab-boot" "$rootfs/usr/local/sbin/lab-boot"
  install -m 0644 "$LAB_SRC/image/lab-boot.service" "$sd/lab-boot.service"
  mkdir -p "$sd/multi-user.target.wants"
  ln -sfn ../lab-boot.service "$sd/multi-user.target.wants/lab-boot.service"
  ln -sfn /lib/systemd/system/multi-user.target "$sd/default.target"
  # No logins (the runner is the console's user; --hold opens a shell on
  # ttyS1), no dbus for logind, no periodic jobs, no xendomains (it would
  # save or shut down the scenarios' guests), no first-boot wizard (it
  # would wait for an answer on the console). Nor the API file systems,
  # module loads, LVM monitoring of LVs that do not exist at boot and
  # bookkeeping that nothing in the lab uses: each costs seconds under TCG.
  # Ganeti's boot script (it finds no cluster and exits; gnt-cluster init
  # starts the daemons) and sshd, which came with it (4-5 s each).
  for u in getty.target serial-getty@hvc0.service getty@tty1.service systemd-logind.service \
    systemd-firstboot.service xendomains.service e2scrub_reap.service \
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
    systemd-tmpfiles-clean.timer \
    dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-kernel-config.mount sys-fs-fuse-connections.mount proc-sys-fs-binfmt_misc.automount \
    systemd-binfmt.service modprobe@fuse.service modprobe@efi_pstore.service modprobe@configfs.service \
    systemd-pstore.service systemd-random-seed.service systemd-update-utmp.service \
    systemd-update-utmp-runlevel.service systemd-user-sessions.service systemd-journal-flush.service \
    lvm2-monitor.service blk-availability.service \
    ganeti.service ssh.service; do
    ln -sfn /dev/null "$sd/$u"
  done
  # Coldplug only block devices (the root, the LVM disk) and virtio ones
  # (the 9p transport): replaying every device autoloads a dozen drivers a
  # Dom0 does not use (ahci, i2c, watchdog, crypto...), 10-30 s under TCG.
  # Devices added later (dm, xen backends) get their events as usual.
  mkdir -p "$sd/systemd-udev-trigger.service.d"
  printf '%s\n' '[Service]' 'ExecStart=' \
    'ExecStart=-udevadm trigger --type=devices --action=add --subsystem-match=block --subsystem-match=virtio' \
    >"$sd/systemd-udev-trigger.service.d/lab.conf"
  # The journal stays in memory (no /var/log/journal): the runs are throwaway.
  rm -rf "$rootfs/var/log/journal"
}

# A tiny initramfs for the PV guest: static busybox, the modules to mount an
# ext4 disk over xen-blkfront, and guest-init, which prints the disk's marker.
build_guest() {
  local kv dir mods m f
  kv=$(kernel_version)
  dir=$rootfs/usr/local/share/lab/guest
  mkdir -p "$dir"
  lab_extract_vmlinux "$rootfs/boot/vmlinuz-$kv" "$dir/vmlinux"

  local tree=$out/guest-initramfs
  rm -rf "$tree"
  mkdir -p "$tree/bin" "$tree/lib/modules"
  cp "$(command -v busybox)" "$tree/bin/busybox"
  install -m 0755 "$LAB_SRC/image/guest-init" "$tree/init"
  # insmod order = dependency order; busybox insmod cannot read compressed .ko
  mods=(crc32c_generic crc16 mbcache jbd2 ext4 xen-blkfront)
  for m in "${mods[@]}"; do
    f=$(find "$rootfs/lib/modules/$kv/kernel" -name "$m.ko" | head -n 1)
    [[ -n $f ]] || lab_die "guest module $m.ko not found in the $kv modules (compressed or renamed?)"
    cp "$f" "$tree/lib/modules/"
  done
  printf '%s\n' "${mods[@]}" >"$tree/lib/modules/order"
  (cd "$tree" && find . | cpio -o -H newc --quiet | gzip -9) >"$dir/initrd.img"
  rm -rf "$tree"
}

write_images() {
  local kv
  kv=$(kernel_version)
  # qemu's multiboot loader takes the gunzipped hypervisor: a 32-bit ELF
  zcat "$rootfs/boot/xen-4.17-amd64.gz" >"$out/xen"
  cp "$rootfs/boot/vmlinuz-$kv" "$out/vmlinuz"
  cp "$rootfs/boot/initrd.img-$kv" "$out/initrd.img"
  # mkfs.ext4 -d fills the filesystem from the tree: no loop mount needed
  rm -f "$out/root.img"
  truncate -s 3G "$out/root.img"
  mkfs.ext4 -q -F -L lab-root -d "$rootfs" "$out/root.img"
  {
    echo "kernel $kv"
    echo "xen $(chroot "$rootfs" dpkg-query -W -f='${Version}' xen-hypervisor-4.17-amd64)"
    echo "runtime-packages:"
    if ((${#runtime_packages[@]} > 0)); then
      chroot "$rootfs" dpkg-query -W -f='  ${Package} ${Version}\n' "${runtime_packages[@]}"
    fi
  } >"$out/manifest.txt"
  lab_safe_rm "$rootfs"
}

lab_step copy-base copy_base
lab_step runtime-packages install_runtime_packages
lab_step configure configure_dom0
lab_step guest-kernel build_guest
lab_step disk-image write_images
