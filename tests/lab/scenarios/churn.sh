#!/bin/bash
# lab-timeout: 900
# churn: domains come and go around one xenctld on libxl, as on a busy host:
# each round `xl create`s a foreign guest, vm-creates one of ours, lists
# everything, then `xl destroy`s the foreign one and vm-destroys and
# vm-deletes ours. xenctld must answer every call and still run at the end
# (it once died in the round after other domains had come and gone).
# CHURN_ROUNDS (tests/lab/run -e) sets the number of rounds, 5 by default.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

rounds=${CHURN_ROUNDS:-5}
xl_guest=churn-xl
ours=churn-ours

trap 'lab_cleanup "$xl_guest" "$ours" -- churn-xl churn-ours' EXIT

alive() {
  kill -0 "$LAB_XENCTLD_PID" 2>/dev/null ||
    lab_fail "xenctld died ($1): $(tail -n 30 "$LAB_OUT/xenctld.log")"
}

lab_root_volume churn-xl "churn-$RANDOM"
lab_root_volume churn-ours "churn-$RANDOM"

lab_xenctld_start libxl
cfg=$(lab_guest_cfg "$xl_guest" "/dev/$LAB_VG/churn-xl")
for ((r = 1; r <= rounds; r++)); do
  lab_say "round $r of $rounds"
  lab_run -t 240 xl create "$cfg" || lab_fail "round $r: xl create $xl_guest failed"
  lab_cli "create-$r" vm-create "$ours" --type pv --kernel "$LAB_GUEST_DIR/vmlinux" \
    --ramdisk "$LAB_GUEST_DIR/initrd.img" --cmdline "console=hvc0 rdinit=/init quiet" --memory 128M --vcpus 1 \
    --disk "/dev/$LAB_VG/churn-ours,xvda,w" --json
  alive "round $r, after vm-create"
  lab_cli "list-$r" vm-list --all --json
  lab_json_has "$LAB_OUT/list-$r.out" "any(.[]; .spec.name == \"$xl_guest\" and .foreign) and any(.[]; .spec.name == \"$ours\")" \
    "round $r: vm-list --all does not show both $xl_guest (foreign) and $ours"
  lab_run -t 60 xl destroy "$xl_guest" || lab_fail "round $r: xl destroy $xl_guest failed"
  lab_cli "destroy-$r" vm-destroy "$ours"
  lab_cli "delete-$r" vm-delete "$ours"
  alive "round $r, after destroy and delete"
done
lab_xenctld_stop
lab_say "churn passed ($rounds rounds)"
