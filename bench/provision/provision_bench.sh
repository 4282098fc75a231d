#!/bin/bash
# bench/provision: prints figures, asserts nothing. Runs in the lab's Dom0
# (scenario provision-bench) against a running xenctld on libxl whose
# lvm-thin pool holds an imported image.
#
# From a cached image to the domain running, alternating the two so that
# drift hits both alike:
#   - xenctld: one `vm-create NAME --image IMAGE --pool POOL ...` (clone,
#     new identity, define, start: one CreateDomain operation), until the
#     call returns with the domain running;
#   - raw: `lvcreate -s -kn` of the image's base LV + `xl create` of the
#     same guest (same kernel, memory, disk), until xl returns with it
#     running; no identity of its own, nothing recorded.
# Each sample's domain and volume are removed before the next (untimed).
# Target (issue 12): xenctld p50 <= 1.0x raw.
#
#   provision_bench.sh --connect unix:SOCK --image NAME --pool POOL --vg VG
#                      --kernel K --ramdisk R [--cmdline C] [--memory MIB]
#                      [--rounds N]
set -euo pipefail

connect=unix:/run/xenctld/xenctld.sock image=debian-12 pool=thin vg=vg0
kernel= ramdisk= cmdline="root=/dev/xvda ro console=hvc0" memory=256 rounds=5
while (($#)); do
  case $1 in
    --connect) connect=$2 ;;
    --image) image=$2 ;;
    --pool) pool=$2 ;;
    --vg) vg=$2 ;;
    --kernel) kernel=$2 ;;
    --ramdisk) ramdisk=$2 ;;
    --cmdline) cmdline=$2 ;;
    --memory) memory=$2 ;;
    --rounds) rounds=$2 ;;
    *) echo "provision_bench: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
[[ -n $kernel && -n $ramdisk ]] || { echo "provision_bench: --kernel and --ramdisk are needed" >&2; exit 2; }
bin=$(dirname "$(readlink -f "$0")")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run CMD...: runs it, output to the work dir; on failure prints it and exits.
run() {
  if ! "$@" >"$work/out" 2>&1 </dev/null; then
    echo "provision_bench: '$*' failed: $(tail -n 5 "$work/out")" >&2
    exit 1
  fi
}

xenctld_sample() {
  local name=pb-x$1 t0 t1
  t0=$(now)
  run "$bin/vm-create" --connect "$connect" "$name" --image "$image" --pool "$pool" --type pv --kernel "$kernel" \
    --ramdisk "$ramdisk" --cmdline "$cmdline" --memory "${memory}M" --vcpus 1
  t1=$(now)
  xl domid "$name" >/dev/null || { echo "provision_bench: $name is not running in xl after vm-create" >&2; exit 1; }
  elapsed "$t0" "$t1"
  run "$bin/vm-destroy" --connect "$connect" "$name"
  run "$bin/vm-delete" --connect "$connect" "$name" --delete-volumes
}

raw_sample() {
  local name=pb-r$1 t0 t1
  cat >"$work/$name.cfg" <<CFG
name    = "$name"
type    = "pv"
kernel  = "$kernel"
ramdisk = "$ramdisk"
extra   = "$cmdline"
memory  = $memory
vcpus   = 1
disk    = [ 'phy:/dev/$vg/$name,xvda,w' ]
CFG
  t0=$(now)
  run lvcreate -y -s -kn -ay -p rw -n "$name" "$vg/$image"
  # xl create forks a monitor that keeps its stdout: a file, never a pipe.
  run xl create "$work/$name.cfg"
  t1=$(now)
  elapsed "$t0" "$t1"
  run xl destroy "$name"
  run lvremove -y "$vg/$name"
}

: >"$work/x"
: >"$work/r"
for ((i = 1; i <= rounds; i++)); do
  # Alternate which goes first, so that neither always follows a teardown.
  if ((i % 2)); then
    x=$(xenctld_sample "$i"); r=$(raw_sample "$i")
  else
    r=$(raw_sample "$i"); x=$(xenctld_sample "$i")
  fi
  echo "$x" >>"$work/x"
  echo "$r" >>"$work/r"
  echo "round $i: xenctld vm-create --image ${x} s, raw lvcreate -s + xl create ${r} s"
done
xm=$(median <"$work/x")
rm_=$(median <"$work/r")
echo "xenctld vm-create --image (clone, new identity, define, start): p50 ${xm} s over $rounds"
echo "raw lvcreate -s + xl create: p50 ${rm_} s over $rounds"
echo "ratio xenctld/raw: $(awk -v a="$xm" -v b="$rm_" 'BEGIN { printf "%.2f", a / b }')x (target <= 1.0x)"
