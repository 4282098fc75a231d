# shellcheck shell=bash
# Host-side helpers shared by tests/lab/build-image, tests/lab/run and the
# image stages. Sourced, never executed. Everything here runs on the build
# machine; what runs inside Dom0 lives in tests/lab/guest/.

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_REPO=$(cd "$LAB_SRC/../.." && pwd)
# Debian release of the Dom0. The host builds xenctld against Debian 12 too,
# so the binaries run unchanged in Dom0 with the same library versions.
LAB_SUITE=bookworm
LAB_MIRROR=${LAB_MIRROR:-http://deb.debian.org/debian}
LAB_SECURITY_MIRROR=${LAB_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

lab_log() { printf 'lab: %s\n' "$*" >&2; }
lab_die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

# lab_step NAME CMD... runs CMD and prints "lab: step NAME Ns" however it ends,
# so a failing step still shows how long it ran before failing.
lab_step() {
  local name=$1 t0 rc=0
  shift
  t0=$(date +%s)
  "$@" || rc=$?
  lab_log "step $name $(($(date +%s) - t0))s$( ((rc == 0)) || printf ' (failed, exit %d)' "$rc")"
  return "$rc"
}

# Exit status when this machine cannot run the lab at all (not root, tools
# missing): CTest's SKIP_RETURN_CODE, and still a failure for a plain caller.
LAB_EXIT_CANNOT_RUN=77

lab_require_root() {
  if [[ $(id -u) -ne 0 ]]; then
    lab_log "error: $1 needs root (debootstrap, chroot and mounts); run it with sudo"
    exit "$LAB_EXIT_CANNOT_RUN"
  fi
}

# lab_require_tools CMD... fails with the install hint if a host tool is missing.
lab_require_tools() {
  local missing=() c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  if ((${#missing[@]} > 0)); then
    lab_log "error: missing host tools: ${missing[*]}; install them with: scripts/install-deps --lab"
    exit "$LAB_EXIT_CANNOT_RUN"
  fi
}

# lab_require_space DIR GB: fails early rather than halfway through a build.
lab_require_space() {
  local avail
  avail=$(df --output=avail -BG "$1" | tail -n 1 | tr -dc 0-9)
  ((avail >= $2)) || lab_die "only ${avail} GB free under $1; the lab needs about $2 GB there (or set LAB_CACHE to a roomier place)"
}

# The cache of images and results for one build tree. LAB_CACHE overrides it,
# e.g. to keep the image across fresh CI clones on the same machine.
lab_cache_dir() { printf '%s\n' "${LAB_CACHE:-$1/lab}"; }

# lab_abs_build_dir DIR: the build dir as an absolute path (relative paths are
# taken from the repository root, as the CMake presets do).
lab_abs_build_dir() {
  local d=$1
  [[ $d == /* ]] || d=$LAB_REPO/$d
  printf '%s\n' "$d"
}

# The binaries the lab shares into Dom0, relative to the build dir.
LAB_BINARIES=(daemon/xenctld daemon/xenctl-fetch client/vmm bench/lvm2cmd/lvm2cmd_latency bench/clone/clone_bench daemon/xenctl-xl-json bench/api/api_bench)
# Scripts shared beside them, relative to the source tree (no build needed).
LAB_SCRIPTS=(bench/provision/provision_bench.sh bench/api/rss_by_library)

# lab_runtime_packages BUILD_DIR prints, sorted, the Debian packages that own
# the shared libraries the built binaries load (ldd -> dpkg -S). Prints nothing
# when no binary is built yet. Derived, not hand-kept, so a new library in
# CMake reaches the image without anyone remembering to list it.
lab_runtime_packages() {
  local build=$1 rel bin libs=() line path
  for rel in "${LAB_BINARIES[@]}"; do
    bin=$build/$rel
    [[ -x $bin ]] || continue
    local out
    out=$(ldd "$bin" 2>&1) || lab_die "ldd $bin failed: $out"
    if grep -q 'not found' <<<"$out"; then
      lab_die "$bin needs libraries missing on this host: $(grep 'not found' <<<"$out" | tr -s ' \t\n' ' '); install them (scripts/install-deps) and rebuild"
    fi
    while read -r line; do
      # "libx.so.1 => /lib/.../libx.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
      path=$(sed -nE 's#.*=> (/[^ ]+) \(0x.*#\1#p; s#^[[:space:]]*(/[^ ]+) \(0x.*#\1#p' <<<"$line")
      [[ -n $path ]] && libs+=("$path")
    done <<<"$out"
  done
  ((${#libs[@]} > 0)) || return 0

  # dpkg knows a file under the path its package shipped it at. With merged
  # /usr the loader may report /lib/... for a file shipped as /usr/lib/... (or
  # the reverse), and a soname link for a file shipped under its real name, so
  # try each spelling. One dpkg -S call for all of them: each call reads the
  # whole database.
  local -A owner=()
  local cands=() lib real c
  for lib in "${libs[@]}"; do
    real=$(readlink -f "$lib")
    for c in "$lib" "$real"; do
      cands+=("$c")
      if [[ $c == /usr/* ]]; then cands+=("${c#/usr}"); else cands+=("/usr$c"); fi
    done
  done
  while IFS= read -r line; do
    [[ $line == diversion* ]] && continue
    # "libfoo1:amd64: /usr/lib/x86_64-linux-gnu/libfoo.so.1" (a path owned by
    # several packages lists them comma-separated; any one will do)
    owner[${line#*: }]=$(cut -d: -f1 <<<"${line%%, *}")
  done < <(dpkg -S "${cands[@]}" 2>/dev/null || true)

  local pkgs=() found
  for lib in "${libs[@]}"; do
    real=$(readlink -f "$lib")
    found=
    for c in "$lib" "$real" "/usr$lib" "${lib#/usr}" "/usr$real" "${real#/usr}"; do
      if [[ -n ${owner[$c]:-} ]]; then found=${owner[$c]}; break; fi
    done
    [[ -n $found ]] ||
      lab_die "$lib (loaded by the built binaries) belongs to no Debian package, so the lab image cannot provide it; link it statically or install it from a package"
    pkgs+=("$found")
  done
  printf '%s\n' "${pkgs[@]}" | sort -u
}

lab_sha() { sha256sum | cut -c1-16; }

# Key of the base root filesystem: the Debian release, the package list (its
# packages, not its comments) and the script that builds it. Changing any of
# them rebuilds from debootstrap.
lab_base_key() {
  { echo "$LAB_SUITE"; sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$LAB_SRC/image/packages"; cat "$LAB_SRC/image/rootfs.sh"; } | lab_sha
}

# Key of the golden guest image: the Debian release and the files that make
# it. It does not depend on the Dom0 stages nor on the built binaries.
lab_golden_key() {
  { echo "$LAB_SUITE"; cat "$LAB_SRC/image/golden.sh" "$LAB_SRC/image/golden-report"; } | lab_sha
}

# lab_image_key PACKAGES: key of the bootable image: the base key, the files
# that finish it, and PACKAGES, the output of lab_runtime_packages (taken as
# an argument: computed in a pipeline here, a failure would go unnoticed).
lab_image_key() {
  {
    lab_base_key
    cat "$LAB_SRC/build-image" "$LAB_SRC/image/finish.sh" "$LAB_SRC/image/packages-image" "$LAB_SRC/image/lab-boot" "$LAB_SRC/image/lab-boot.service" "$LAB_SRC/image/guest-init"
    printf '%s\n' "$1"
  } | lab_sha
}

# lab_unmount_under DIR unmounts everything mounted at or below DIR, deepest
# first. Used on every exit path of the chroot stages and before deleting a
# tree, so rm never walks into the host's /dev, /proc or /sys.
lab_unmount_under() {
  local dir mnt
  dir=$(readlink -f "$1" 2>/dev/null) || return 0
  [[ -n $dir && $dir != / ]] || return 0
  # mountinfo field 5 is the mount point (octal escapes for spaces, none here)
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r mnt; do
    umount "$mnt" 2>/dev/null || umount -l "$mnt" || true
  done
  if awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
    return 1
  fi
}

# lab_safe_rm DIR deletes a tree that may hold a chroot, after making sure
# nothing is still mounted inside it, and never crosses a file system.
lab_safe_rm() {
  local dir=$1
  [[ -e $dir ]] || return 0
  lab_unmount_under "$dir" || lab_die "something is still mounted under $dir; unmount it by hand, then retry"
  rm -rf --one-file-system "$dir"
}

# lab_chroot_mounts ROOT mounts what package scripts in a chroot expect. The
# caller must arrange for lab_unmount_under ROOT on exit (a trap).
lab_chroot_mounts() {
  local r=$1
  mount -t proc proc "$r/proc"
  mount -t sysfs sysfs "$r/sys"
  mount --bind /dev "$r/dev"
}

# Bounds for the network-bound steps of a root file system: a stalled
# mirror must fail the build, not hang it. A normal build takes 20-40 s each.
LAB_DEBOOTSTRAP_TIMEOUT=900
LAB_APT_TIMEOUT=1200

# lab_debootstrap ROOTFS DEB_CACHE WHAT: a minbase $LAB_SUITE in ROOTFS, its
# packages cached in DEB_CACHE/debootstrap; everything else comes through
# apt (lab_apt_install), whose dependency resolution handles virtual deps.
lab_debootstrap() {
  local rootfs=$1 debs=$2 what=$3
  mkdir -p "$debs/debootstrap"
  timeout -k 10 "$LAB_DEBOOTSTRAP_TIMEOUT" debootstrap --variant=minbase --cache-dir="$debs/debootstrap" \
    "$LAB_SUITE" "$rootfs" "$LAB_MIRROR" >"$rootfs.debootstrap.log" 2>&1 || {
    tail -n 30 "$rootfs.debootstrap.log" >&2
    lab_die "debootstrap of $what ($LAB_SUITE from $LAB_MIRROR) failed or took over ${LAB_DEBOOTSTRAP_TIMEOUT}s (log above, full log $rootfs.debootstrap.log); check network access to the mirror"
  }
  rm -f "$rootfs.debootstrap.log"
}

# lab_apt_prepare ROOTFS: the mirror's sources, and no daemon started by a
# package script (xen, udev, sshd): it would run on the build host and keep
# the tree busy. The caller removes usr/sbin/policy-rc.d when done.
lab_apt_prepare() {
  local rootfs=$1
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' "$LAB_MIRROR" "$LAB_SUITE" \
    "$LAB_MIRROR" "$LAB_SUITE" "$LAB_SECURITY_MIRROR" "$LAB_SUITE" >"$rootfs/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
}

# lab_apt_install ROOTFS DEB_CACHE WHAT PACKAGE...: installs PACKAGEs in the
# chroot without recommends, .debs cached in DEB_CACHE/apt, keeping the
# conffiles written before (confold: e.g. initramfs-tools' modules list).
# Leaves the chroot mounts for the caller's lab_unmount_under.
lab_apt_install() {
  local rootfs=$1 debs=$2 what=$3
  shift 3
  mkdir -p "$debs/apt/partial"
  lab_chroot_mounts "$rootfs"
  mount --bind "$debs/apt" "$rootfs/var/cache/apt/archives"
  printf 'Acquire::Retries "3";\nAcquire::http::Timeout "60";\n' >"$rootfs/etc/apt/apt.conf.d/80lab-network"
  timeout -k 10 300 chroot "$rootfs" apt-get update -q >/dev/null ||
    lab_die "apt-get update in the $what chroot failed or took over 300s; check network access to $LAB_MIRROR"
  DEBIAN_FRONTEND=noninteractive timeout -k 10 "$LAB_APT_TIMEOUT" chroot "$rootfs" apt-get install -y -q \
    --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "$@" >"$rootfs.apt.log" 2>&1 || {
    tail -n 30 "$rootfs.apt.log" >&2
    lab_die "apt-get install in the $what chroot failed or took over ${LAB_APT_TIMEOUT}s (log above, full log $rootfs.apt.log)"
  }
  rm -f "$rootfs.apt.log"
}

# lab_extract_vmlinux BZIMAGE DEST writes the kernel inside a Debian bzImage
# as an uncompressed ELF: the PV guests boot that, because under TCG most of
# `xl create` is libxenguest decompressing a bzImage (~25 s vs ~11 s).
lab_extract_vmlinux() {
  local bz=$1 dest=$2 off
  # the bzImage payload is one XZ stream; LC_ALL=C so grep -P matches bytes
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | head -n 1 | cut -d: -f1)
  [[ -n $off ]] || lab_die "no XZ payload in $bz: the kernel's compression changed; adapt lab_extract_vmlinux"
  # xz stops after the first stream, so tail dies of SIGPIPE: not an error
  { tail -c +$((off + 1)) "$bz" || true; } | xz -dc --single-stream >"$dest"
  [[ $(head -c 4 "$dest" | od -An -c | tr -d ' ') == '177ELF' ]] ||
    lab_die "what $bz unpacks to is not an ELF kernel"
}
