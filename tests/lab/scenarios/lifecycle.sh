#!/bin/bash
# lab-timeout: 480
# lifecycle: xenctld with the libxl backend creates a PV guest (the lab's
# guest kernel + busybox initramfs, its root a thin LV with a marker), and
# drives it: created paused with `vm-console --read-only` attached, then
# unpaused, the guest prints the marker, seen on that console; pause and unpause, seen by `xl
# list`; live vcpu and memory changes, seen in the guest's xenstore keys
# (onlining a vcpu inside the guest is its own udev's job, and the lab's
# busybox guest has none); destroy, which closes the console (vm-console
# exits 0 saying so); xenctld stops cleanly.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

guest=lab-lc
root=lc-root
marker="lifecycle-marker-$(date +%s)-$RANDOM"

trap 'lab_cleanup "$guest" -- "$root"' EXIT

# xl_field NAME COLUMN: one column of `xl list NAME` (2 ID, 3 Mem, 4 VCPUs, 5 State).
xl_field() { xl list "$1" 2>/dev/null | awk -v c="$2" 'NR == 2 { print $c }'; }

lab_root_volume "$root" "$marker"

lab_xenctld_start libxl
rm -f "$(lab_guest_log "$guest")"
lab_cli create vm-create "$guest" --type pv --kernel "$LAB_GUEST_DIR/vmlinux" --ramdisk "$LAB_GUEST_DIR/initrd.img" \
  --cmdline "console=hvc0 rdinit=/init quiet" --memory 128M --vcpus 1 --maxvcpus 2 \
  --disk "/dev/$LAB_VG/$root,xvda,w" --paused --json
lab_json_has "$LAB_OUT/create.out" '.state == "DOMAIN_STATE_PAUSED"' "vm-create --paused did not leave $guest paused"
domid=$(jq -r .domid "$LAB_OUT/create.out")
# Attach before the guest runs, so all it prints comes through the console.
lab_wait_for 60 "xenconsoled to give $guest a console" xenstore-read "/local/domain/$domid/console/tty"
lab_say "+ vm-console --read-only $guest (in the background)"
"$LAB_BIN/vm-console" --connect "$LAB_CONNECT" --read-only "$guest" >"$LAB_OUT/console.out" 2>"$LAB_OUT/console.err" &
console_pid=$!
sleep 2
kill -0 "$console_pid" 2>/dev/null || lab_fail "vm-console --read-only $guest ended at once: $(cat "$LAB_OUT/console.err")"
lab_cli start-running vm-unpause "$guest" --json
[[ $(xl domid "$guest" 2>/dev/null) == "$domid" ]] ||
  lab_fail "xl does not see $guest as domid $domid: $(xl list 2>&1 | tr '\n' ' ')"
lab_guest_wait "$guest" "LAB-GUEST-READY" 240
grep -q "^LAB-GUEST-MARKER $marker" "$(lab_guest_log "$guest")" ||
  lab_fail "guest $guest did not print the marker '$marker' from its root volume"
lab_say "guest $guest (domid $domid) booted and read '$marker'"
lab_wait_for 30 "the marker on vm-console --read-only $guest" grep -q "LAB-GUEST-MARKER $marker" "$LAB_OUT/console.out"

lab_cli pause vm-pause "$guest" --json
[[ $(xl_field "$guest" 5) == *p* ]] || lab_fail "xl list shows $guest as '$(xl_field "$guest" 5)' after vm-pause"
lab_json_has "$LAB_OUT/pause.out" '.state == "DOMAIN_STATE_PAUSED"' "vm-pause did not report paused"
lab_cli unpause vm-unpause "$guest" --json
[[ $(xl_field "$guest" 5) != *p* ]] || lab_fail "xl list still shows $guest paused after vm-unpause"

lab_cli set vm-set "$guest" --vcpus 2 --memory 96M --json
lab_json_has "$LAB_OUT/set.out" '.spec.vcpus == 2 and (.spec.memory_mib | tonumber) == 96' "vm-set did not keep vcpus 2 and memory 96 MiB in the spec"
[[ $(xenstore-read "/local/domain/$domid/cpu/1/availability" 2>&1) == online ]] ||
  lab_fail "vcpu 1 of $guest is not offered to the guest after vm-set --vcpus 2: cpu/1/availability is '$(xenstore-read "/local/domain/$domid/cpu/1/availability" 2>&1)'"
[[ $(xenstore-read "/local/domain/$domid/memory/target" 2>&1) == 98304 ]] ||
  lab_fail "memory target of $guest is '$(xenstore-read "/local/domain/$domid/memory/target" 2>&1)' KiB after vm-set --memory 96M, want 98304"
lab_say "vcpu 1 offered and memory target 96 MiB set in xenstore"

lab_cli list vm-list --json
lab_json_has "$LAB_OUT/list.out" "any(.[]; .spec.name == \"$guest\" and (.domid | tonumber) == $domid)" "vm-list does not show $guest as domid $domid"

lab_cli destroy vm-destroy "$guest" --json
lab_json_has "$LAB_OUT/destroy.out" '.state == "DOMAIN_STATE_STOPPED"' "vm-destroy did not leave $guest stopped"
! xl domid "$guest" >/dev/null 2>&1 || lab_fail "xl still lists $guest after vm-destroy"
console_ended() { ! kill -0 "$console_pid" 2>/dev/null; }
lab_wait_for 30 "vm-console to end with the domain" console_ended
console_rc=0
wait "$console_pid" || console_rc=$?
((console_rc == 0)) || lab_fail "vm-console exited $console_rc after the destroy: $(cat "$LAB_OUT/console.err")"
grep -q "closed" "$LAB_OUT/console.err" || lab_fail "vm-console did not say the console closed: $(cat "$LAB_OUT/console.err")"
lab_say "vm-console ended with the domain: $(tr -d '\r' <"$LAB_OUT/console.err" | tr '\n' ' ')"

lab_xenctld_stop
lab_say "lifecycle passed"
