#!/bin/bash
# lab-timeout: 600
# reattach: xenctld is killed with SIGKILL while a guest it created runs.
# The guest keeps running; a new xenctld over the same state lists it
# running under the same domid, and takes it back: its on_reboot=restart
# applies again (vm-reboot gives a new domid and the guest boots again),
# which a domain xenctld had not adopted would not get.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

guest=lab-ra
root=ra-root

trap 'lab_cleanup "$guest" -- "$root"' EXIT

lab_root_volume "$root" "reattach-$RANDOM"

lab_xenctld_start libxl
rm -f "$(lab_guest_log "$guest")"
lab_cli create vm-create "$guest" --type pv --kernel "$LAB_GUEST_DIR/vmlinux" --ramdisk "$LAB_GUEST_DIR/initrd.img" \
  --cmdline "console=hvc0 rdinit=/init quiet" --memory 128M --vcpus 1 --on-reboot restart \
  --disk "/dev/$LAB_VG/$root,xvda,w" --json
domid=$(jq -r .domid "$LAB_OUT/create.out")
lab_guest_wait "$guest" "LAB-GUEST-READY" 240

lab_say "+ kill -KILL $LAB_XENCTLD_PID (xenctld)"
kill -KILL "$LAB_XENCTLD_PID"
wait "$LAB_XENCTLD_PID" 2>/dev/null || true
LAB_XENCTLD_PID=
[[ $(xl domid "$guest" 2>/dev/null) == "$domid" ]] || lab_fail "guest $guest (domid $domid) did not survive the kill of xenctld"

lab_xenctld_start libxl --keep-state
lab_cli info vm-info "$guest" --json
lab_json_has "$LAB_OUT/info.out" "(.domid | tonumber) == $domid and (.state == \"DOMAIN_STATE_RUNNING\" or .state == \"DOMAIN_STATE_BLOCKED\")" \
  "the restarted xenctld does not show $guest running as domid $domid"
lab_say "after the restart xenctld shows $guest: $(jq -c '{state, domid}' "$LAB_OUT/info.out")"

lab_cli reboot vm-reboot "$guest"
# The console first: xl only once the guest has booted again. Polling `xl
# domid` twice a second while libxl restarts the guest took Dom0's CPU from
# the block hotplug script, which libxl kills after 40 s (a FAIL under load).
rebooted() {
  local now
  (($(grep -c LAB-GUEST-READY "$(lab_guest_log "$guest")") >= 2)) &&
    now=$(xl domid "$guest" 2>/dev/null) && [[ $now != "$domid" ]]
}
if ! (lab_wait_for 240 "$guest to come back under a new domid and boot again (on_reboot=restart)" rebooted); then
  lab_run xl list
  lab_run tail -n 20 "$LAB_OUT/xenctld.log"
  lab_fail "$guest did not come back under a new domid after vm-reboot (on_reboot=restart)"
fi
lab_cli info-after vm-info "$guest" --json
lab_json_has "$LAB_OUT/info-after.out" "(.domid | tonumber) != $domid and (.state == \"DOMAIN_STATE_RUNNING\" or .state == \"DOMAIN_STATE_BLOCKED\")" \
  "vm-info does not show $guest running under a new domid after the reboot"
lab_say "restarted by the adopted on_reboot: $(jq -c '{state, domid}' "$LAB_OUT/info-after.out")"

lab_cli destroy vm-destroy "$guest"
lab_xenctld_stop
lab_say "reattach passed"
