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

[[ -x $LAB_BIN/clone_bench ]] || lab_fail "no clone_bench binary; build it (cmake --build build --target clone_bench)"
lab_thin_pool
lab_thin_pool_config "$LAB_OUT/xenctld.toml" "max_overcommit = 50"
lab_xenctld_start libxl --config "$LAB_OUT/xenctld.toml"
lab_cli base vm-volume create "$base" 64M --pool thin --json
lab_cli gold vm-volume snapshot "$base" gold --pool thin --json

lab_run -t 2400 -o "$LAB_OUT/clone-bench.txt" "$LAB_BIN/clone_bench" --connect "$LAB_CONNECT" --pool thin --vg "$LAB_VG" \
  --base "$base@gold" --fill "${CLONE_FILL:-200}" --samples "${CLONE_SAMPLES:-20}" ||
  lab_fail "clone_bench failed (see above)"
while read -r line; do lab_say "BENCH $line"; done <"$LAB_OUT/clone-bench.txt"
lab_run lvs --version
