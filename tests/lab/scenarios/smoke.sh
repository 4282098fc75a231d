#!/bin/bash
# lab-timeout: 420
# smoke: the lab itself works. Xen answers `xl info`; an LVM thin pool, a
# thin volume and a thin snapshot of it work; a PV guest boots from the
# snapshot and prints the marker written before the snapshot, and not the
# line written to the origin after it.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

guest=lab-smoke
origin=smoke-origin
snap=smoke-snap
marker="smoke-marker-$(date +%s)-$RANDOM"

cleanup() {
  set +e
  xl domid "$guest" >/dev/null 2>&1 && lab_run -t 60 xl destroy "$guest"
  mountpoint -q /mnt/smoke && umount /mnt/smoke
  lvs "$LAB_VG/$snap" >/dev/null 2>&1 && lab_run lvremove -y "$LAB_VG/$snap"
  lvs "$LAB_VG/$origin" >/dev/null 2>&1 && lab_run lvremove -y "$LAB_VG/$origin"
  cp "$(lab_guest_log "$guest")" "$LAB_OUT/" 2>/dev/null
}
trap cleanup EXIT

# write_origin LINE: appends LINE to marker.txt on the origin volume.
write_origin() {
  mkdir -p /mnt/smoke
  mount "/dev/$LAB_VG/$origin" /mnt/smoke
  echo "$1" >>/mnt/smoke/marker.txt
  umount /mnt/smoke
}

lab_say "+ xl info (kept as smoke/xl-info.txt)"
timeout 60 xl info >"$LAB_OUT/xl-info.txt" 2>&1 ||
  lab_fail "xl info failed: $(tail -n 3 "$LAB_OUT/xl-info.txt" | tr '\n' ' ')"
grep -q '^xen_version' "$LAB_OUT/xl-info.txt" || lab_fail "xl info printed no xen_version"
lab_say "$(grep -E '^(xen_version|total_memory|nr_cpus)' "$LAB_OUT/xl-info.txt" | tr -s ' \n' ' ')"

lab_thin_pool
lab_run lvcreate -y -V 256M -T "$LAB_VG/$LAB_POOL" -n "$origin" || lab_fail "cannot create thin volume $origin"
lab_run mkfs.ext4 -q -F "/dev/$LAB_VG/$origin" || lab_fail "mkfs.ext4 on $origin failed"
write_origin "$marker"
# -kn: without it the snapshot gets the activation-skip flag, stays inactive,
# and /dev/$LAB_VG/$snap never appears.
lab_run lvcreate -y -s -kn -n "$snap" "$LAB_VG/$origin" || lab_fail "thin snapshot of $origin failed"
lab_wait_for 30 "/dev/$LAB_VG/$snap" test -b "/dev/$LAB_VG/$snap"
# Written after the snapshot: the guest booted from the snapshot must not see it.
write_origin "written-after-snapshot"

cfg=$(lab_guest_cfg "$guest" "/dev/$LAB_VG/$snap")
rm -f "$(lab_guest_log "$guest")"
lab_run -t 240 xl create "$cfg" || lab_fail "xl create $guest failed; see dom0/xen/xl-$guest.log in the results"
lab_guest_wait "$guest" "LAB-GUEST-READY" 240
grep -q "^LAB-GUEST-MARKER $marker" "$(lab_guest_log "$guest")" ||
  lab_fail "guest $guest did not print the marker '$marker' written before the snapshot; it printed: $(grep -a LAB-GUEST-MARKER "$(lab_guest_log "$guest")" | tr -d '\r' | tr '\n' ' ')"
if grep -q "written-after-snapshot" "$(lab_guest_log "$guest")"; then
  lab_fail "guest $guest sees a line written to the origin after the snapshot: the snapshot is not isolated"
fi
lab_say "guest $guest read '$marker' from the snapshot"
lab_run -t 60 xl destroy "$guest" || lab_fail "xl destroy $guest failed"
lab_say "smoke passed"
