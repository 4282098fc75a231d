#!/bin/bash
# lab-timeout: 1200
# memory: xenctld's memory on the libxl build (issue 17 part 5: RSS <= 15 MiB
# idle, <= 40 MiB with 1000 domains). xenctld on libxl, started with
# LD_BIND_NOW=1 as xenctld.service runs it. Read from /proc/PID/status and
# /proc/PID/smaps_rollup (RSS, its anonymous and file parts, PSS): after the
# first call, and idle 16 s and 26 s later (after the daemon's idle release); then
# with MEMORY_RUNNING (default 2) test guests running through xenctld, idle;
# then bench/api's api_bench --connect defines MEMORY_DOMAINS (default 1000)
# more domains, stopped (CreateDomain with define_only: TCG cannot run a
# thousand guests), and reads the same right after and idle 16 s later. A
# copy of /proc/PID/smaps of each point is kept (smaps.*), and
# bench/api/rss_by_library's split by mapping printed for the idle points.
# Prints MEMORY lines; fails when a target is missed (MEMORY_ENFORCE=0: only
# prints). Not in .ci/run.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

running=${MEMORY_RUNNING:-2}
domains=${MEMORY_DOMAINS:-1000}
guests=() roots=()
for ((i = 1; i <= running; i++)); do
  guests+=("lab-mem$i")
  roots+=("mem-root$i")
done
trap 'lab_cleanup "${guests[@]}" -- "${roots[@]}"; rm -rf "$LAB_XENCTLD_STATE"' EXIT

[[ -x $LAB_BIN/api_bench ]] || lab_fail "no api_bench binary; build it (cmake --build build --target api_bench)"

# cpu_ms: xenctld's CPU time so far (user + system), in ms.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "/proc/$LAB_XENCTLD_PID/stat"; }
# point NAME: xenctld's memory now, as a MEMORY line with the CPU time it
# used since the last point, and its smaps kept. RSS, its anonymous part and
# PSS are smaps_rollup's, exact; /proc/PID/status's VmRSS is also printed:
# Linux 6.1 (Dom0's) keeps RSS counters per thread and folds them in every
# 64 page events, so it lags (it showed 3.1 MiB idle for smaps' 5.6 MiB).
last_cpu=0
point() {
  local pid=$LAB_XENCTLD_PID cpu
  cpu=$(cpu_ms)
  cp "/proc/$pid/smaps" "$LAB_OUT/smaps.$1"
  awk '/^Rss:/ { print $2 }' "/proc/$pid/smaps_rollup" >"$LAB_OUT/rss.$1"
  lab_say "$(awk -v name="$1" -v cpu=$((cpu - last_cpu)) '
    FNR == NR { v[$1] = $2; next }
    { r[$1] = $2 }
    END {
      printf "MEMORY %-24s RSS %6.1f MiB (anon %.1f, file and shmem %.1f)  PSS %6.1f MiB  VmRSS %.1f MiB  threads %d  cpu %d ms since the last point",
        name, r["Rss:"] / 1024, r["Anonymous:"] / 1024, (r["Rss:"] - r["Anonymous:"]) / 1024, r["Pss:"] / 1024,
        v["VmRSS:"] / 1024, v["Threads:"], cpu
    }' "/proc/$pid/status" "/proc/$pid/smaps_rollup")"
  last_cpu=$cpu
}
# by_library NAME: rss_by_library of smaps.NAME, kept and printed.
by_library() {
  command -v python3 >/dev/null || { lab_say "no python3 in Dom0: no split by library"; return 0; }
  python3 "$LAB_BIN/rss_by_library" "$LAB_OUT/smaps.$1" 25 >"$LAB_OUT/rss-by-library.$1.txt" 2>&1
  lab_say "rss_by_library $1:"
  sed 's/^/    | /' "$LAB_OUT/rss-by-library.$1.txt"
}

export LD_BIND_NOW=1  # as xenctld.service runs it (xenctld unsets it for its children)
lab_xenctld_start libxl
unset LD_BIND_NOW
lab_cli first vm-list --json
sleep 1
point after-first-call
sleep 16
point idle
sleep 10
point idle-10s-later  # the CPU of two idle periods
by_library idle

for ((i = 0; i < running; i++)); do
  lab_root_volume "${roots[i]}" "memory-marker-$i"
  rm -f "$(lab_guest_log "${guests[i]}")"
  lab_cli "create-${guests[i]}" vm-create "${guests[i]}" --type pv --kernel "$LAB_GUEST_DIR/vmlinux" \
    --ramdisk "$LAB_GUEST_DIR/initrd.img" --cmdline "console=hvc0 rdinit=/init quiet" --memory 128M --vcpus 1 \
    --disk "/dev/$LAB_VG/${roots[i]},xvda,w" --json
done
for g in "${guests[@]}"; do lab_guest_wait "$g" "LAB-GUEST-READY" 600; done
sleep 16
point "idle-$running-running"

lab_run -t 900 -o "$LAB_OUT/api-bench.txt" "$LAB_BIN/api_bench" --connect "$LAB_CONNECT" --pid "$LAB_XENCTLD_PID" \
  --domains "$domains" --define-only --lists 20 --cycles 0 --smaps "$LAB_OUT/smaps.bench" ||
  lab_fail "api_bench failed (see above)"
while read -r line; do lab_say "BENCH memory $line"; done <"$LAB_OUT/api-bench.txt"
point "with-$domains-after-lists"
sleep 16
point "with-$domains-idle"
by_library "with-$domains-idle"
by_library "with-$domains-after-lists"
lab_cli list vm-list --all --json
n=$(jq length "$LAB_OUT/list.out")
lab_say "vm-list --all: $n domains ($(jq '[.[] | select(.domid != null and (.domid | tonumber) > 0)] | length' "$LAB_OUT/list.out") with a domid)"

lab_xenctld_stop
missed=()
(($(cat "$LAB_OUT/rss.idle") <= 15 * 1024)) || missed+=("idle RSS $(cat "$LAB_OUT/rss.idle") kB > 15 MiB")
for p in "with-$domains-after-lists" "with-$domains-idle"; do
  (($(cat "$LAB_OUT/rss.$p") <= 40 * 1024)) || missed+=("$p RSS $(cat "$LAB_OUT/rss.$p") kB > 40 MiB")
done
if ((${#missed[@]})); then
  if [[ ${MEMORY_ENFORCE:-1} == 0 ]]; then lab_say "targets missed: ${missed[*]}"; else lab_fail "targets missed: ${missed[*]}"; fi
fi
lab_say "memory passed"
