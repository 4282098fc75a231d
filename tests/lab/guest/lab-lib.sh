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
#   LAB_GOLDEN_DIR the golden Debian 12 image (debian-12.tar.zst, its
#                 .minisig, golden.pub, vmlinux, initrd.img, identity.txt)
#   LAB_GANETI_HOOKS  the repository's ganeti/ (ExtStorage provider, OS
#                 definition, lib.sh), for the ganeti scenario
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

# lab_wait_for SECS WHAT CMD...: polls CMD until it succeeds, after half a
# second, then one, two, and every four seconds; fails the scenario naming
# WHAT after SECS. Under TCG every exec costs Dom0 tens of milliseconds of
# CPU, which what is being waited for (a guest starting, its hotplug
# scripts, which libxl kills after 40 s) needs more.
lab_wait_for() {
  local limit=$1 what=$2 deadline pause=0.5
  shift 2
  deadline=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || lab_fail "timed out after ${limit}s waiting for $what"
    sleep "$pause"
    case $pause in 0.5) pause=1 ;; 1) pause=2 ;; *) pause=4 ;; esac
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

# lab_thin_pool_config FILE [LINE...]: writes FILE, an xenctld config whose
# one pool is "thin", lvm-thin on $LAB_VG/$LAB_POOL, with LINEs (more keys of
# that [[pool]], e.g. 'max_overcommit = 50') after it.
lab_thin_pool_config() {
  local file=$1
  shift
  {
    printf '[[pool]]\nname = "thin"\ndriver = "lvm-thin"\nvg = "%s"\nthinpool = "%s"\n' "$LAB_VG" "$LAB_POOL"
    (($# == 0)) || printf '%s\n' "$@"
  } >"$file"
}

# lab_root_volume LV MARKER: a 64 MiB thin LV $LAB_VG/LV holding an ext4 file
# system whose /marker.txt says MARKER (the test guest prints it).
lab_root_volume() {
  local lv=$1 marker=$2 dir
  lab_thin_pool
  dir=$(mktemp -d)
  echo "$marker" >"$dir/marker.txt"
  lab_run lvcreate -y -V 64M -T "$LAB_VG/$LAB_POOL" -n "$lv" || lab_fail "cannot create thin volume $lv"
  lab_run mkfs.ext4 -q -F -d "$dir" "/dev/$LAB_VG/$lv" || lab_fail "mkfs.ext4 on $lv failed"
  rm -rf "$dir"
}

# lab_cleanup GUEST... [-- LV...]: for EXIT traps. Destroys the guests still
# in Xen (keeping their console logs), kills a xenctld still running (see
# lab_xenctld_kill) and removes the LVs. Never fails.
lab_cleanup() {
  local g lv guests=() lvs_=()
  while (($#)) && [[ $1 != -- ]]; do guests+=("$1"); shift; done
  (($#)) && shift
  lvs_=("$@")
  set +e
  for g in "${guests[@]}"; do
    xl domid "$g" >/dev/null 2>&1 && lab_run -t 60 xl destroy "$g"
    cp "$(lab_guest_log "$g")" "$LAB_OUT/" 2>/dev/null
  done
  lab_xenctld_kill
  for lv in "${lvs_[@]}"; do lvs "$LAB_VG/$lv" >/dev/null 2>&1 && lab_run lvremove -y "$LAB_VG/$lv"; done
  return 0
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

# lab_guest_wait NAME PATTERN SECS [LOG]: waits until the guest's console log
# (or LOG, e.g. an HVM guest's serial port written to a file) has a line
# matching PATTERN (grep -E). Fails early when the guest reports an error or
# disappears, and then shows its console.
lab_guest_wait() {
  local name=$1 pattern=$2 limit=$3 log=${4:-} deadline why="" n=0
  [[ -n $log ]] || log=$(lab_guest_log "$name")
  deadline=$(($(date +%s) + limit))
  # The console every 2 s, and xl every 10 s: under TCG an `xl domid`
  # costs Dom0 most of a second of CPU and every other exec tens of
  # milliseconds, which the guest's boot and its hotplug scripts (libxl
  # kills them after 40 s) then wait for.
  while ! grep -qE "$pattern" "$log" 2>/dev/null; do
    if grep -q LAB-GUEST-ERROR "$log" 2>/dev/null; then why="the guest reported an error"; break; fi
    if ((n++ % 5 == 0)) && ! xl domid "$name" >/dev/null 2>&1; then why="guest $name is gone"; break; fi
    if (($(date +%s) >= deadline)); then why="not seen after ${limit}s"; break; fi
    sleep 2
  done
  if [[ -n $why ]]; then
    lab_say "console of $name ($log):"
    sed 's/^/    | /' "$log" 2>/dev/null | tr -d '\r' || true
    lab_fail "waiting for /$pattern/ on the console of $name: $why"
  fi
  lab_say "guest $name console: $(grep -E "$pattern" "$log" | head -n 1 | tr -d '\r')"
}

# lab_xenctld_start HYPERVISOR [--keep-state] [--crash-at POINT] [ARG...]:
# starts the host-built xenctld (with ARGs, e.g. --config FILE) on
# $LAB_XENCTLD_SOCK with a fresh state dir (or, with --keep-state, the last
# one's, as a restart does), waits for its socket, and sets LAB_XENCTLD_PID
# and LAB_CONNECT. Its log is $LAB_OUT/xenctld.log. --crash-at POINT starts it
# with XENCTLD_CRASH_AT=POINT (it aborts there, without a core file); without
# it, XENCTLD_CRASH_AT is never passed on.
LAB_XENCTLD_SOCK=/run/xenctld/xenctld.sock
LAB_XENCTLD_STATE=/var/lib/xenctld
LAB_CONNECT=unix:$LAB_XENCTLD_SOCK
LAB_XENCTLD_PID=
lab_xenctld_start() {
  local hypervisor=$1 keep='' crash_at='' b deadline status
  shift
  if [[ ${1:-} == --keep-state ]]; then
    keep=1
    shift
  fi
  if [[ ${1:-} == --crash-at ]]; then
    crash_at=${2:?--crash-at needs a crash point}
    shift 2
  fi
  for b in xenctld vmm vm-list vm-create; do
    [[ -x $LAB_BIN/$b ]] ||
      lab_fail "$b binary not found at ${LAB_HOST_BUILD_DIR:-BUILD_DIR}/$(case $b in xenctld) echo daemon ;; *) echo client ;; esac)/$b; build it first (cmake --preset default && cmake --build build), or pass tests/lab/run --build-dir"
  done
  mkdir -p "$(dirname "$LAB_XENCTLD_SOCK")"
  rm -rf "$LAB_XENCTLD_SOCK"
  [[ -n $keep ]] || rm -rf "$LAB_XENCTLD_STATE"
  # A crash leaves a core in $LAB_OUT (it lands in the results) for gdb on
  # the host; LAB_XENCTLD_WRAP (tests/lab/run -e) runs xenctld under a tool,
  # e.g. "valgrind --error-exitcode=99".
  echo "$LAB_OUT/core.%e.%p" >/proc/sys/kernel/core_pattern
  local wrap=()
  [[ -z ${LAB_XENCTLD_WRAP:-} ]] || read -r -a wrap <<<"$LAB_XENCTLD_WRAP"
  lab_say "+ ${crash_at:+XENCTLD_CRASH_AT=$crash_at }${wrap[*]} xenctld --listen $LAB_CONNECT --state-dir $LAB_XENCTLD_STATE --hypervisor $hypervisor $*"
  # An armed crash point is an abort by design: no core (tens of MB each).
  (unset XENCTLD_CRASH_AT
  if [[ -n $crash_at ]]; then export XENCTLD_CRASH_AT=$crash_at; ulimit -c 0; else ulimit -c unlimited; fi
  exec "${wrap[@]}" "$LAB_BIN/xenctld" --listen "$LAB_CONNECT" \
    --state-dir "$LAB_XENCTLD_STATE" --hypervisor "$hypervisor" "$@") >>"$LAB_OUT/xenctld.log" 2>&1 </dev/null &
  LAB_XENCTLD_PID=$!
  deadline=$(($(date +%s) + 60))
  until [[ -S $LAB_XENCTLD_SOCK ]]; do
    if ! kill -0 "$LAB_XENCTLD_PID" 2>/dev/null; then
      status=0
      wait "$LAB_XENCTLD_PID" || status=$?
      LAB_XENCTLD_PID=
      lab_fail "xenctld exited with status $status before creating $LAB_XENCTLD_SOCK: $(tail -n 20 "$LAB_OUT/xenctld.log")"
    fi
    (($(date +%s) < deadline)) ||
      lab_fail "xenctld did not create $LAB_XENCTLD_SOCK within 60s: $(tail -n 20 "$LAB_OUT/xenctld.log")"
    sleep 0.5
  done
  lab_say "xenctld (pid $LAB_XENCTLD_PID, hypervisor $hypervisor) listening on $LAB_XENCTLD_SOCK"
}

# lab_xenctld_stop: SIGTERM; fails unless xenctld exits 0 within 30 s and
# removes its socket.
lab_xenctld_stop() {
  local deadline status=0
  lab_say "+ kill -TERM $LAB_XENCTLD_PID"
  kill -TERM "$LAB_XENCTLD_PID"
  deadline=$(($(date +%s) + 30))
  while kill -0 "$LAB_XENCTLD_PID" 2>/dev/null; do
    (($(date +%s) < deadline)) || lab_fail "xenctld still running 30s after SIGTERM: $(tail -n 20 "$LAB_OUT/xenctld.log")"
    sleep 0.2
  done
  wait "$LAB_XENCTLD_PID" || status=$?
  LAB_XENCTLD_PID=
  ((status == 0)) || lab_fail "xenctld exited with status $status after SIGTERM (want 0): $(tail -n 20 "$LAB_OUT/xenctld.log")"
  [[ ! -e $LAB_XENCTLD_SOCK ]] || lab_fail "xenctld left its socket $LAB_XENCTLD_SOCK behind after SIGTERM"
  lab_say "xenctld stopped cleanly (status 0, socket removed)"
}

# lab_xenctld_kill: for cleanup traps; kills a xenctld still running and keeps
# its state, and the backtraces of every thread of any core it left.
lab_xenctld_kill() {
  local core
  if [[ -n $LAB_XENCTLD_PID ]] && kill -0 "$LAB_XENCTLD_PID" 2>/dev/null; then
    lab_say "xenctld (pid $LAB_XENCTLD_PID) still running: killing it"
    kill -KILL "$LAB_XENCTLD_PID"
  fi
  # Not images.tmp: an import cut short leaves an unpacked OS tree there,
  # hundreds of MB with device nodes, which the 9p share refuses.
  local f
  mkdir -p "$LAB_OUT/state"
  for f in "$LAB_XENCTLD_STATE"/*; do
    [[ -e $f && $(basename "$f") != images.tmp ]] && cp -r "$f" "$LAB_OUT/state/" 2>/dev/null
  done
  true
  for core in "$LAB_OUT"/core.*; do
    [[ -f $core && $core != *.txt ]] || continue
    lab_say "xenctld left $core; backtraces in $core.txt"
    timeout 120 gdb -batch -nx -ex "info proc mappings" -ex "info threads" -ex "thread apply all bt" \
      "$LAB_BIN/xenctld" "$core" >"$core.txt" 2>&1 || true
  done
}

# lab_cli NAME CMD ARGS...: runs "CMD --connect $LAB_CONNECT ARGS..." keeping
# its output in $LAB_OUT/NAME.out; fails the scenario on error.
lab_cli() {
  local name=$1 cmd=$2
  shift 2
  lab_run -t 300 -o "$LAB_OUT/$name.out" "$LAB_BIN/$cmd" --connect "$LAB_CONNECT" "$@" ||
    lab_fail "'$cmd --connect $LAB_CONNECT $*' failed (output above)"
}

# lab_json_has FILE JQ_FILTER WHAT: fails unless the JSON in FILE satisfies the filter.
lab_json_has() {
  jq -e "$2" "$1" >/dev/null 2>&1 || lab_fail "$3; got: $(head -c 500 "$1")"
}
