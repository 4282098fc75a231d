#!/usr/bin/env bash
# Stage 3 of the lab image: the golden image guests are provisioned from. A
# real Debian 12 root (debootstrap minbase + systemd, openssh-server, the
# Debian kernel, systemd-networkd), packed as a minisign-signed tar.zst, as
# an image server would offer it, plus the guest kernel (uncompressed) and
# its initramfs for a PV direct-kernel boot from Dom0. build-image caches it
# by a hash of this file and image/golden-report; it does not depend on the
# Dom0 stages, so changing xenctl's binaries does not rebuild it.
#
#   golden.sh OUT_DIR DEB_CACHE      (as root; OUT_DIR must not exist)
#
# OUT_DIR receives:
#   debian-12.tar.zst(.minisig)  the root file system, signed
#   golden.pub                   the minisign public key that signed it
#   vmlinux, initrd.img          the guest's kernel and initramfs (same kernel
#                                as the image's modules; not in the image's
#                                /boot, which is left empty to keep it small)
#   identity.txt                 the image's machine-id and SSH host key
#                                fingerprints, as lab-report prints them
#   manifest.txt                 kernel, packages, sizes
# and keeps the secret key in OUT_DIR/.key (never shared into Dom0).
#
# Direct-kernel boot, not pygrub: pygrub would parse the image's boot files
# in Dom0 (code reading untrusted guest data on the host), and would hand
# libxenguest a compressed bzImage, which costs ~15 s more per boot under
# TCG. The kernel the lab boots is the image's own, so its modules match.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/../lib.sh"

out=$1
debs=$2
[[ ! -e $out ]] || lab_die "golden.sh: $out already exists"
mkdir -p "$out"
rootfs=$out/rootfs
trap 'lab_unmount_under "$rootfs" || lab_log "could not unmount everything under $rootfs"' EXIT

# What a small server needs, without recommends. systemd-networkd (in
# systemd) configures the network, so no ifupdown: the provisioner writes a
# .network file for it. iproute2 lets the report print the addresses.
packages=(systemd systemd-sysv udev openssh-server linux-image-amd64 initramfs-tools iproute2 zstd)

debootstrap_golden() { lab_debootstrap "$rootfs" "$debs" "the golden image"; }

install_golden_packages() {
  lab_apt_prepare "$rootfs"
  # A small initramfs that mounts the root over xen-blkfront: Debian's
  # default (MODULES=most) is ~40 MB, which is slow to load under TCG.
  mkdir -p "$rootfs/etc/initramfs-tools/conf.d"
  printf 'MODULES=list\nCOMPRESS=gzip\n' >"$rootfs/etc/initramfs-tools/conf.d/lab.conf"
  printf 'xen-blkfront\next4\n' >"$rootfs/etc/initramfs-tools/modules"
  lab_apt_install "$rootfs" "$debs" golden "${packages[@]}"
  lab_unmount_under "$rootfs" || lab_die "could not unmount the chroot mounts under $rootfs"
  rm -f "$rootfs/etc/apt/apt.conf.d/80lab-network"
}

configure_golden() {
  echo debian-golden >"$rootfs/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian-golden\n' >"$rootfs/etc/hosts"
  printf '/dev/xvda\t/\text4\terrors=remount-ro\t0\t1\n' >"$rootfs/etc/fstab"
  # systemd-networkd configures the vifs; waiting for a network that a
  # guest without vifs never gets would hold the boot for 2 minutes.
  chroot "$rootfs" systemctl enable systemd-networkd.service >/dev/null 2>&1
  chroot "$rootfs" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1
  # Test instrumentation: print the guest's identity on its console at boot.
  install -m 0755 "$LAB_SRC/image/golden-report" "$rootfs/usr/local/sbin/lab-report"
  cat >"$rootfs/etc/systemd/system/lab-report.service" <<'EOF'
[Unit]
Description=lab: print this guest's identity and test files on the console
After=ssh.service systemd-networkd.service systemd-hostnamed.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lab-report

[Install]
WantedBy=multi-user.target
EOF
  chroot "$rootfs" systemctl enable lab-report.service >/dev/null 2>&1
  # The files a provisioning scenario replaces and patches.
  mkdir -p "$rootfs/etc/lab"
  echo "golden marker: debian-12 as built" >"$rootfs/etc/lab/marker.txt"
  printf '# patched by the lab\nname = golden\nmode = plain\nlevel = 1\n' >"$rootfs/etc/lab/patch-me.conf"
  # Neither the build host's apt state nor documentation belongs in an image.
  rm -f "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin "$rootfs/var/cache/apt/archives/"*.deb \
    "$rootfs/usr/share/doc/"* "$rootfs/usr/share/man/"* "$rootfs/usr/share/info/"* "$rootfs/usr/share/locale/"*
}

# A PV guest needs few of the kernel's ~4000 modules: keep file systems,
# crypto, libraries, networking and the Xen, block and virtual network
# drivers; drop the rest (GPUs, sound, wireless, media...) to keep the image
# and its import small. dpkg's file list then no longer matches: fine for a
# test image that is never upgraded.
prune_modules() {
  local kv mods d
  kv=$(basename "$(ls -d "$rootfs"/lib/modules/* | sort -V | tail -n 1)")
  mods=$rootfs/lib/modules/$kv/kernel
  rm -rf "$mods/sound" "$mods/virt"
  for d in "$mods"/drivers/*; do
    case $(basename "$d") in xen | block | net) ;; *) rm -rf "$d" ;; esac
  done
  for d in "$mods"/drivers/net/*; do
    case $(basename "$d") in xen-netfront.ko | tun.ko | dummy.ko | veth.ko) ;; *) rm -rf "$d" ;; esac
  done
  for d in "$mods"/drivers/block/*; do
    case $(basename "$d") in xen-blkfront.ko | loop.ko) ;; *) rm -rf "$d" ;; esac
  done
  for d in "$mods"/net/*; do
    case $(basename "$d") in ipv4 | ipv6 | packet | unix | core) ;; *) rm -rf "$d" ;; esac
  done
  for d in "$mods"/fs/*; do
    case $(basename "$d") in ext4 | jbd2 | mbcache.ko | autofs | fuse | overlayfs | nls) ;; *) rm -rf "$d" ;; esac
  done
  # Each MB here costs seconds of every import under TCG: the udev hardware
  # database (a PV guest has no hardware to look up; its rebuild at boot is
  # masked), iconv's charsets, and /boot (the lab boots the kernel from
  # Dom0, vmlinux and initrd.img beside the archive).
  rm -f "$rootfs/usr/lib/udev/hwdb.bin"
  rm -rf "$rootfs/usr/lib/udev/hwdb.d" "$rootfs/usr/lib/x86_64-linux-gnu/gconv"
  chroot "$rootfs" systemctl mask systemd-hwdb-update.service >/dev/null 2>&1
  lab_chroot_mounts "$rootfs"
  chroot "$rootfs" depmod "$kv"
  # The initramfs loads xen-blkfront and ext4 from the list; rebuild it for
  # the pruned tree.
  timeout -k 10 600 chroot "$rootfs" update-initramfs -u -k "$kv" >/dev/null
  lab_unmount_under "$rootfs" || lab_die "could not unmount the chroot mounts under $rootfs"
}

pack_golden() {
  local kv
  kv=$(basename "$(ls "$rootfs"/boot/vmlinuz-* | sort -V | tail -n 1)")
  kv=${kv#vmlinuz-}
  lab_extract_vmlinux "$rootfs/boot/vmlinuz-$kv" "$out/vmlinux"
  cp "$rootfs/boot/initrd.img-$kv" "$out/initrd.img"
  rm -f "$rootfs/boot/"*
  # A tar of the root as debootstrap made it: device nodes in /dev, set-id
  # files (su, passwd, mount), owners and xattrs kept.
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$rootfs" -cf - . | zstd -q -T0 -10 >"$out/debian-12.tar.zst"
  mkdir -m 0700 "$out/.key"
  minisign -G -W -p "$out/golden.pub" -s "$out/.key/golden.key" >/dev/null
  minisign -S -s "$out/.key/golden.key" -m "$out/debian-12.tar.zst" \
    -t "lab golden image debian-12, kernel $kv" >/dev/null
  # The golden identity, as lab-report prints it: every clone must differ.
  {
    echo "machine-id $(cat "$rootfs/etc/machine-id")"
    for k in "$rootfs"/etc/ssh/ssh_host_*_key.pub; do
      echo "hostkey $(ssh-keygen -lf "$k" | awk '{ print $NF, $2 }')"
    done
  } >"$out/identity.txt"
  {
    echo "kernel $kv"
    echo "root $(du -sh "$rootfs" | cut -f1) unpacked, $(find "$rootfs" | wc -l) entries"
    echo "archive $(du -h "$out/debian-12.tar.zst" | cut -f1) debian-12.tar.zst sha256 $(sha256sum "$out/debian-12.tar.zst" | cut -d' ' -f1)"
    echo "initrd $(du -h "$out/initrd.img" | cut -f1), vmlinux $(du -h "$out/vmlinux" | cut -f1)"
    echo "packages:"
    chroot "$rootfs" dpkg-query -W -f='  ${Package} ${Version}\n' "${packages[@]}"
  } >"$out/manifest.txt"
  lab_safe_rm "$rootfs"
}

lab_step golden-debootstrap debootstrap_golden
lab_step golden-packages install_golden_packages
lab_step golden-configure configure_golden
lab_step golden-modules prune_modules
lab_step golden-pack pack_golden
