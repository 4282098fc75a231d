#!/bin/bash
# lab-timeout: 480
# xlconfig: with xenctld on libxl, `vmm create FILE` boots a PV guest from a
# standard xl config file (the one lab_guest_cfg writes for `xl create`: the
# lab's guest kernel + busybox initramfs, extra=, a phy: disk on a thin LV
# with a marker): xl list shows it, the guest prints the marker, vm-info
# shows the file's spec. The same file with a key that is not in xl.cfg(5)
# (a typo xl would ignore) is refused (exit 2, the key named) and nothing
# reaches Xen or xenctld's store.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

guest=lab-xlc
refused=lab-xlc-no
root=xc-root
marker="xlconfig-marker-$(date +%s)-$RANDOM"

trap 'lab_cleanup "$guest" "$refused" -- "$root"' EXIT

lab_root_volume "$root" "$marker"

cfg=$(lab_guest_cfg "$guest" "/dev/$LAB_VG/$root")
lab_say "xl config $cfg:"
sed 's/^/    | /' "$cfg"

lab_xenctld_start libxl
rm -f "$(lab_guest_log "$guest")"
lab_cli create vmm create "$cfg" --json
lab_json_has "$LAB_OUT/create.out" "(.state == \"DOMAIN_STATE_RUNNING\" or .state == \"DOMAIN_STATE_BLOCKED\") and .spec.name == \"$guest\"" \
  "vmm create $cfg did not leave $guest running"
domid=$(jq -r .domid "$LAB_OUT/create.out")
[[ $(xl domid "$guest" 2>/dev/null) == "$domid" ]] ||
  lab_fail "xl does not see $guest as domid $domid: $(xl list 2>&1 | tr '\n' ' ')"
xl list "$guest" | sed 's/^/    | /'
lab_guest_wait "$guest" "LAB-GUEST-READY" 240
grep -q "^LAB-GUEST-MARKER $marker" "$(lab_guest_log "$guest")" ||
  lab_fail "guest $guest did not print the marker '$marker' from its root volume"
lab_say "guest $guest (domid $domid) booted from the xl config and read '$marker'"

lab_cli info vm-info "$guest" --json
lab_json_has "$LAB_OUT/info.out" "
  .spec | .type == \"DOMAIN_TYPE_PV\" and .memory_mib == \"128\" and .vcpus == 1 and
  .kernel == \"$LAB_GUEST_DIR/vmlinux\" and .ramdisk == \"$LAB_GUEST_DIR/initrd.img\" and
  .cmdline == \"console=hvc0 rdinit=/init quiet\" and
  .disks == [{\"target\": \"/dev/$LAB_VG/$root\", \"vdev\": \"xvda\", \"mode\": \"w\", \"format\": \"\"}] and
  .on_poweroff == \"LIFECYCLE_ACTION_DESTROY\" and .on_reboot == \"LIFECYCLE_ACTION_RESTART\" and
  .on_crash == \"LIFECYCLE_ACTION_DESTROY\"" \
  "vm-info does not show the spec of $cfg"

# The same guest under another name, with a misspelt key.
bad=$LAB_OUT/$refused.cfg
sed -e "s/^name .*/name = \"$refused\"/" "$cfg" >"$bad"
echo 'memroy = 256' >>"$bad"
rc=0
lab_say "+ vmm create $bad"
timeout 120 "$LAB_BIN/vmm" --connect "$LAB_CONNECT" create "$bad" >"$LAB_OUT/refused.out" 2>"$LAB_OUT/refused.err" ||
  rc=$?
sed 's/^/    | /' "$LAB_OUT/refused.err"
((rc == 2)) || lab_fail "vmm create of a config with memroy= exited $rc, want 2"
grep -q "does not support the key memroy (line $(wc -l <"$bad"))" "$LAB_OUT/refused.err" ||
  lab_fail "the refusal does not name memroy and its line: $(cat "$LAB_OUT/refused.err")"
! xl domid "$refused" >/dev/null 2>&1 || lab_fail "xl lists $refused although its config was refused"
lab_cli list vm-list --json
lab_json_has "$LAB_OUT/list.out" "all(.[]; .spec.name != \"$refused\") and any(.[]; .spec.name == \"$guest\")" \
  "vm-list shows the refused $refused, or lost $guest"
lab_say "a config with memroy= was refused by name and created nothing"

lab_cli destroy vm-destroy "$guest" --json
! xl domid "$guest" >/dev/null 2>&1 || lab_fail "xl still lists $guest after vm-destroy"

lab_xenctld_stop
lab_say "xlconfig passed"
