# shellcheck shell=bash
# Helpers for lab scenarios, which run inside the Dom0 (as root, under the
# driver). A scenario starts with:
#   source "${LAB_LIB:?run scenarios through tests/lab/run}"
# Its stdout/stderr is its log; it passes by exiting 0.
#
# Environment set by the driver:
#   LAB_SCENARIO  this scenario's name
#   LAB_BIN       xenctld, vmm and the vm-* links from the host build (may be empty)
#   LAB_OUT       a directory for files worth keeping (it lands in the results)
#   LAB_GUEST_DIR vmlinux + initrd.img of the test PV guest
#   LAB_HOST_BUILD_DIR  the host build dir the binaries came from (for messages)
# Everything under TCG is slow (an lvcreate takes seconds): every wait here is
# bounded, and the bounds are generous.
set -euo pipefail

LAB_DISK=${LAB_DISK:-/dev/vdb}   # the second virtio disk, blank at boot
LAB_VG=${LAB_VG:-vg0}
LAB_POOL=${LAB_POOL:-pool}
LAB_T0=$(date +%s.%N)

# lab_say MSG: a log line stamped with seconds since the scenario started.
lab_say() {
  printf '[%7.2f] %s\n' "$(awk -v a="$LAB_T0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$*"
}

lab_fail() {
  lab_say "FAIL: $*"
  exit 1
}

# lab_run [-t SECS] [-o FILE] CMD...: logs CMD, runs it bounded (default
# 300 s), logs its output, exit status and duration; returns CMD's status.
# With -o, CMD's stdout is also kept in FILE (stderr only goes to the log).
# Output goes through files, never a pipe: `xl create` forks a monitor that
# keeps its stdout open, and a pipe reader would wait for it forever.
lab_run() {
  local limit=300 keep='' t0 rc=0 tmp
  while [[ $1 == -[to] ]]; do
    case $1 in
      -t) limit=$2 ;;
      -o) keep=$2 ;;
    esac
    shift 2
  done
  tmp=$(mktemp)
  lab_say "+ $*"
  t0=$(date +%s.%N)
  if [[ -n $keep ]]; then
    timeout -k 5 "$limit" "$@" >"$keep" 2>"$tmp" </dev/null || rc=$?
    cat "$keep" >>"$tmp"
  else
    timeout -k 5 "$limit" "$@" >"$tmp" 2>&1 </dev/null || rc=$?
  fi
  sed 's/^/    | /' "$tmp"
  rm -f "$tmp"
  lab_say "  exit $rc after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')s$( ((rc != 124)) || printf ' (TIMED OUT after %ss)' "$limit")"
  return "$rc"
}

# lab_wait_for SECS WHAT CMD...: polls CMD every half second until it succeeds;
# fails the scenario naming WHAT after SECS.
lab_wait_for() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || lab_fail "timed out after ${limit}s waiting for $what"
    sleep 0.5
  done
  lab_say "ready: $what"
}

# lab_thin_pool: makes sure VG $LAB_VG with thin pool $LAB_POOL exists on
# $LAB_DISK. Idempotent, so every scenario that needs storage calls it and
# the first one creates it.
lab_thin_pool() {
  if vgs "$LAB_VG" >/dev/null 2>&1; then
    lab_say "thin pool $LAB_VG/$LAB_POOL already there"
    return 0
  fi
  lab_run pvcreate -ff -y "$LAB_DISK"
  lab_run vgcreate "$LAB_VG" "$LAB_DISK"
  lab_run lvcreate -y --type thin-pool -L 2G -n "$LAB_POOL" "$LAB_VG"
}

# lab_guest_log NAME: where xenconsoled (--log=guest) writes NAME's console.
lab_guest_log() { printf '/var/log/xen/console/guest-%s.log\n' "$1"; }

# lab_guest_cfg NAME DISK: writes an xl config for the test PV guest (the
# uncompressed Debian kernel + the busybox initramfs, DISK as xvda) into
# $LAB_OUT and prints its path.
lab_guest_cfg() {
  local name=$1 disk=$2 cfg=$LAB_OUT/$1.cfg
  cat >"$cfg" <<EOF
name        = "$name"
type        = "pv"
kernel      = "$LAB_GUEST_DIR/vmlinux"
ramdisk     = "$LAB_GUEST_DIR/initrd.img"
extra       = "console=hvc0 rdinit=/init quiet"
memory      = 128
vcpus       = 1
disk        = [ 'phy:$disk,xvda,w' ]
on_poweroff = "destroy"
on_crash    = "destroy"
EOF
  printf '%s\n' "$cfg"
}

# lab_guest_wait NAME PATTERN SECS: waits until the guest's console log has a
# line matching PATTERN (grep -E). Fails early when the guest reports an error
# or disappears, and then shows its console.
lab_guest_wait() {
  local name=$1 pattern=$2 limit=$3 log deadline why=
  log=$(lab_guest_log "$name")
  deadline=$(($(date +%s) + limit))
  while ! grep -qE "$pattern" "$log" 2>/dev/null; do
    if grep -q LAB-GUEST-ERROR "$log" 2>/dev/null; then why="the guest reported an error"; break; fi
    if ! xl domid "$name" >/dev/null 2>&1; then why="guest $name is gone"; break; fi
    if (($(date +%s) >= deadline)); then why="not seen after ${limit}s"; break; fi
    sleep 0.5
  done
  if [[ -n $why ]]; then
    lab_say "console of $name ($log):"
    sed 's/^/    | /' "$log" 2>/dev/null | tr -d '\r' || true
    lab_fail "waiting for /$pattern/ on the console of $name: $why"
  fi
  lab_say "guest $name console: $(grep -E "$pattern" "$log" | head -n 1 | tr -d '\r')"
}
