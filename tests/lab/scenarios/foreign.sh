#!/bin/bash
# lab-timeout: 480
# foreign: with xenctld on libxl, a domain made by `xl create` is listed as
# foreign (only with --all) and refuses changes through xenctld; a domain
# xenctld created and `xl destroy` removed behind its back is noticed (the
# death event) and shown stopped, with "destroyed outside xenctld" as the reason.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

xl_guest=lab-xl
ours=lab-ours

trap 'lab_cleanup "$xl_guest" "$ours" -- fr-xl fr-ours' EXIT

lab_root_volume fr-xl "foreign-$RANDOM"
lab_root_volume fr-ours "foreign-$RANDOM"

lab_xenctld_start libxl
lab_run -t 240 xl create "$(lab_guest_cfg "$xl_guest" "/dev/$LAB_VG/fr-xl")" || lab_fail "xl create $xl_guest failed"
xl_domid=$(xl domid "$xl_guest")

lab_cli list-all vm-list --all --json
lab_json_has "$LAB_OUT/list-all.out" "any(.[]; .spec.name == \"$xl_guest\" and .foreign == true and (.domid | tonumber) == $xl_domid)" \
  "vm-list --all does not show $xl_guest (domid $xl_domid) as foreign"
lab_cli list-ours vm-list --json
lab_json_has "$LAB_OUT/list-ours.out" "all(.[]; .spec.name != \"$xl_guest\")" "vm-list without --all shows the foreign $xl_guest"

rc=0
lab_run -t 60 -o "$LAB_OUT/pause-foreign.out" vm-pause --connect "$LAB_CONNECT" "$xl_guest" || rc=$?
((rc == 1)) || lab_fail "vm-pause of the foreign $xl_guest exited $rc, want 1 (refused)"
[[ $(xl list "$xl_guest" | awk 'NR == 2 { print $5 }') != *p* ]] || lab_fail "the foreign $xl_guest was paused"
lab_say "vm-pause of the foreign $xl_guest was refused and changed nothing"

lab_cli create vm-create "$ours" --type pv --kernel "$LAB_GUEST_DIR/vmlinux" --ramdisk "$LAB_GUEST_DIR/initrd.img" \
  --cmdline "console=hvc0 rdinit=/init quiet" --memory 128M --vcpus 1 --disk "/dev/$LAB_VG/fr-ours,xvda,w" --json
lab_json_has "$LAB_OUT/create.out" '.state == "DOMAIN_STATE_RUNNING" or .state == "DOMAIN_STATE_BLOCKED"' "vm-create did not leave $ours running"
lab_run -t 60 xl destroy "$ours" || lab_fail "xl destroy $ours failed"
ours_stopped() {
  vm-info --connect "$LAB_CONNECT" "$ours" --json >"$LAB_OUT/info-ours.out" 2>&1 &&
    jq -e '.state == "DOMAIN_STATE_STOPPED" and .domid == "-1"' "$LAB_OUT/info-ours.out" >/dev/null
}
lab_wait_for 60 "xenctld to show $ours stopped after xl destroy" ours_stopped
lab_json_has "$LAB_OUT/info-ours.out" '.state_reason | test("destroyed outside xenctld")' \
  "vm-info does not say $ours was destroyed outside xenctld"
lab_say "xenctld noticed the xl destroy of $ours: $(jq -c '{state, domid, state_reason}' "$LAB_OUT/info-ours.out")"

lab_xenctld_stop
lab_say "foreign passed"
