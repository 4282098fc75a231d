#!/bin/bash
# lab-timeout: 2700
# clone-bench: bench/clone in Dom0. A 64 MiB thin base volume and its golden
# snapshot (read-only, inactive) in an lvm-thin pool of xenctld on libxl;
# CLONE_FILL clones (default 200) stay present while the bench times
# CLONE_SAMPLES (default 20) raw `lvcreate -s` against as many CloneVolume
# calls, then 10 clones at once against 10 in a row. Prints the figures
# (BENCH lines) and their ratios; fails only when the bench cannot run.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

base=cb-base
trap 'lab_cleanup -- $(lvs --noheadings -o lv_name "$LAB_VG" 2>/dev/null | grep -E "^ *cb-") $base+gold $base' EXIT

# CLONE_FIXTURES=1: first, on a loop PV of its own (VG cbfx), the first MiB
# of the PV (label, metadata area) and the lvs report after each change made
# outside xenctld (lvcreate, lvrename, lvchange, lvremove), kept in
# fixtures/ of the results: tests/unit/storage/fixtures/mda is made from them.
fixtures() {
  local img=/tmp/cbfx.img dev fx=$LAB_OUT/fixtures
  mkdir -p "$fx"
  truncate -s 160M "$img"
  dev=$(losetup -f --show "$img") || { lab_say "no loop device; no fixtures"; return 0; }
  dump() {
    dd if="$dev" of="$fx/$1.pv" bs=64K count=16 status=none
    lvs -a --reportformat json --units b --nosuffix --config 'report {time_format="%s"}' \
      -o lv_name,vg_name,lv_attr,lv_size,segtype,origin,origin_size,pool_lv,data_percent,metadata_percent,lv_tags,lv_time,vg_seqno \
      cbfx >"$fx/$1.lvs.json"
    dmsetup info -c >"$fx/$1.dminfo"
    dmsetup status >"$fx/$1.dmstatus"
    lab_say "fixture $1: seqno $(vgs --noheadings -o vg_seqno cbfx)"
  }
  lab_run pvcreate -y "$dev" && lab_run vgcreate cbfx "$dev" &&
    lab_run lvcreate -y --type thin-pool -L 32M -n tp cbfx &&
    lab_run lvcreate -y -T cbfx/tp -V 16M -n base -kn -ay &&
    lab_run dd if=/dev/urandom of=/dev/cbfx/base bs=64K count=40 oflag=direct &&
    lab_run lvcreate -y -s -ky -p r -n base+gold --addtag xenctl.origin=base cbfx/base &&
    lab_run lvcreate -y -s -kn -ay -p rw -n web1 --addtag xenctl.origin=base+gold cbfx/base+gold &&
    lab_run dd if=/dev/urandom of=/dev/cbfx/web1 bs=64K count=8 oflag=direct &&
    lab_run lvcreate -y -L 8M -n plain --addtag xenctl.pool=snap cbfx &&
    lab_run lvcreate -y -s -L 4M -p rw -n plainclone --addtag xenctl.pool=snap --addtag xenctl.origin=plain cbfx/plain &&
    lab_run dd if=/dev/urandom of=/dev/cbfx/plainclone bs=64K count=4 oflag=direct &&
    dump s1-made &&
    lab_run lvcreate -y -s -kn -ay -p rw -n outside cbfx/base+gold && dump s2-lvcreate &&
    lab_run lvrename cbfx outside renamed && dump s3-lvrename &&
    lab_run lvchange --addtag note=x cbfx/renamed && dump s4-lvchange &&
    lab_run lvchange -an cbfx/renamed && dump s5-deactivate &&
    lab_run lvremove -y cbfx/renamed && dump s6-lvremove
  lab_run vgremove -ff -y cbfx
  lab_run pvremove -y "$dev"
  losetup -d "$dev"
  rm -f "$img"
}
[[ ${CLONE_FIXTURES:-0} == 1 ]] && fixtures

[[ -x $LAB_BIN/clone_bench ]] || lab_fail "no clone_bench binary; build it (cmake --build build --target clone_bench)"
lab_thin_pool
lab_thin_pool_config "$LAB_OUT/xenctld.toml" "max_overcommit = 50"
# bench [NAME] [ARG...]: clone_bench against the running xenctld, its output kept in NAME.txt.
bench() {
  local name=$1
  shift
  lab_run -t 2400 -o "$LAB_OUT/$name.txt" "$LAB_BIN/clone_bench" --connect "$LAB_CONNECT" --pool thin --vg "$LAB_VG" \
    --base "$base@gold" --fill "${CLONE_FILL:-200}" --samples "${CLONE_SAMPLES:-20}" "$@" ||
    lab_fail "clone_bench failed (see above)"
  while read -r line; do lab_say "BENCH $name $line"; done <"$LAB_OUT/$name.txt"
}

# First xenctld reading the VG with lvs (XENCTLD_LVM_METADATA=0, as before
# the metadata reader), the fill kept; then xenctld as it ships, which reads
# the VG from its PV: the same VG, the same boot.
ab=${CLONE_AB:-1}
((ab)) && export XENCTLD_LVM_METADATA=0
lab_xenctld_start libxl --config "$LAB_OUT/xenctld.toml"
unset XENCTLD_LVM_METADATA
lab_cli base vm-volume create "$base" 64M --pool thin --json
lab_cli gold vm-volume snapshot "$base" gold --pool thin --json
variants=()
[[ ${CLONE_VARIANTS:-0} == 1 ]] && variants=(--variants)
if ((ab)); then
  bench clone-bench-lvs --keep "${variants[@]}"
  lab_xenctld_stop
  lab_xenctld_start libxl --config "$LAB_OUT/xenctld.toml"
  variants=()
fi
bench clone-bench "${variants[@]}"

# A change made outside xenctld right between two of its calls is seen by
# the next one (its VG model is proved current at every call, not aged).
seen() { # seen NAME JQ WHAT: vm-volume list --pool thin must satisfy JQ
  lab_cli "$1" vmm volume list --pool thin --json
  lab_json_has "$LAB_OUT/$1.out" "$2" "$3"
}
lab_cli seen-a vmm volume clone "$base@gold" cb-seen-a --pool thin --json
seen seen-0 'any(.[]; .name == "cb-seen-a")' "xenctld does not list its own clone cb-seen-a"
lab_run lvcreate -y -s -kn -ay -p rw -n cb-seen-b "$LAB_VG/$base+gold"
seen seen-1 'any(.[]; .name == "cb-seen-b")' "an lvcreate outside xenctld is not seen by its next call"
lab_run lvrename "$LAB_VG" cb-seen-a cb-seen-c
seen seen-2 'any(.[]; .name == "cb-seen-c") and all(.[]; .name != "cb-seen-a")' "an lvrename outside xenctld is not seen"
lab_run lvchange -p r "$LAB_VG/cb-seen-c"
seen seen-3 'any(.[]; .name == "cb-seen-c" and .read_only == true)' "an lvchange -p r outside xenctld is not seen"
lab_run lvremove -y "$LAB_VG/cb-seen-b"
seen seen-4 'all(.[]; .name != "cb-seen-b")' "an lvremove outside xenctld is not seen"
lab_run lvcreate -y -s -kn -ay -p rw -n cb-seen-d "$LAB_VG/$base+gold"
rc=0
"$LAB_BIN/vmm" --connect "$LAB_CONNECT" volume clone "$base@gold" cb-seen-d --pool thin >"$LAB_OUT/seen-5.out" 2>&1 || rc=$?
grep -qi "already exists" "$LAB_OUT/seen-5.out" && ((rc != 0)) ||
  lab_fail "xenctld cloned onto cb-seen-d, made outside it just before, without ALREADY_EXISTS: $(cat "$LAB_OUT/seen-5.out")"
lab_say "outside lvcreate, lvrename, lvchange, lvremove each seen by xenctld's next call"
grep -E "reading VG .* with lvs" "$LAB_OUT/xenctld.log" && lab_say "NOTE: xenctld fell back to lvs (above)"
lab_run lvs --version
