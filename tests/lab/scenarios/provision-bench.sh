#!/bin/bash
# lab-timeout: 2400
# lab-golden: yes
# provision-bench: not a check but bench/provision (see its header and the
# README's Benchmarks): the golden Debian 12 image imported into lvm-thin,
# then PROVISION_BENCH_ROUNDS (default 5) rounds of one `vm-create --image`
# to the domain running against a raw `lvcreate -s` + `xl create` of the
# same guest, alternating. Prints the figures (BENCH lines) and the ratio;
# fails only when the bench cannot run.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

image=debian-12
trap 'for d in $(xl list 2>/dev/null | awk "/^pb-/ {print \$1}"); do xl destroy "$d"; done; lab_cleanup -- $(lvs --noheadings -o lv_name "$LAB_VG" 2>/dev/null | grep -E "^ *pb-") $image' EXIT

golden_dir=${LAB_GOLDEN_DIR:?}
[[ -x $LAB_BIN/provision_bench.sh ]] || lab_fail "no provision_bench.sh in $LAB_BIN (tests/lab/run shares bench/provision)"
lab_thin_pool
lab_thin_pool_config "$LAB_OUT/xenctld.toml"
printf '\n[images]\ntrusted_keys = ["%s"]\n' "$golden_dir/golden.pub" >>"$LAB_OUT/xenctld.toml"
lab_xenctld_start libxl --config "$LAB_OUT/xenctld.toml"
t0=$(date +%s)
lab_run -t 1800 -o "$LAB_OUT/import.out" vm-image --connect "$LAB_CONNECT" import "$image" \
  "file://$golden_dir/$image.tar.zst" --pool thin --json || lab_fail "vm-image import of the golden image failed"
lab_say "BENCH import of $image ($(du -h "$golden_dir/$image.tar.zst" | cut -f1) tar.zst): $(($(date +%s) - t0)) s"

lab_run -t 2000 -o "$LAB_OUT/provision-bench.txt" "$LAB_BIN/provision_bench.sh" --connect "$LAB_CONNECT" \
  --image "$image" --pool thin --vg "$LAB_VG" --kernel "$golden_dir/vmlinux" --ramdisk "$golden_dir/initrd.img" \
  --memory 256 --rounds "${PROVISION_BENCH_ROUNDS:-5}" || lab_fail "provision_bench failed (see above)"
while read -r line; do lab_say "BENCH $line"; done <"$LAB_OUT/provision-bench.txt"
lab_xenctld_stop
