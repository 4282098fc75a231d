#!/bin/bash
# lab-timeout: 600
# images: a golden image (a cpio.gz root file system, as the paper's images
# are) is imported with `vm-image import` from a file:// URI and its SHA-256
# into an lvm-thin pool; a root volume is cloned from its base volume; a
# guest whose disk names the clone (`--disk vol:thin/CLONE,xvda,w`) boots
# from it through xenctld on libxl, which gave blkback the clone's LV path,
# and prints the marker the image carried. The clone cannot be deleted while
# the guest runs; `vm-delete --delete-volumes` deletes it with the domain.
# A wrong digest is refused (DATA_LOSS: exit 1, both values named) and
# leaves no volume behind.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

guest=lab-img
image=img-base
clone=img-root1
marker="image-marker-$(date +%s)-$RANDOM"

trap 'lab_cleanup "$guest" -- "$clone" "$image" img-bad' EXIT

lab_thin_pool
work=$(mktemp -d)
mkdir -p "$work/root/etc"
echo "$marker" >"$work/root/marker.txt"
echo "$guest" >"$work/root/etc/hostname"
(cd "$work/root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) >"$work/root.cpio.gz" ||
  lab_fail "cannot build the cpio.gz image"
sha=$(sha256sum "$work/root.cpio.gz" | cut -d' ' -f1)
lab_say "image $work/root.cpio.gz: $(stat -c %s "$work/root.cpio.gz") bytes, sha256 $sha"

lab_thin_pool_config "$LAB_OUT/xenctld.toml"
lab_xenctld_start libxl --config "$LAB_OUT/xenctld.toml"

rc=0
lab_run -o "$LAB_OUT/import-bad.out" vm-image --connect "$LAB_CONNECT" import img-bad "file://$work/root.cpio.gz" \
  --sha256 "$(printf '0%.0s' {1..64})" --pool thin || rc=$?
((rc == 1)) || lab_fail "vm-image import with a wrong digest exited $rc, want 1"
! lvs "$LAB_VG/img-bad" >/dev/null 2>&1 || lab_fail "a refused import left the volume $LAB_VG/img-bad behind"

lab_cli import vm-image import "$image" "file://$work/root.cpio.gz" --sha256 "$sha" --pool thin --json
lab_cli images vm-image list --json
lab_json_has "$LAB_OUT/images.out" "any(.[]; .name == \"$image\" and .sha256 == \"$sha\")" \
  "vm-image list does not show $image with its digest"

lab_cli clone vm-volume clone "$image" "$clone" --pool thin --json
path=$(jq -r .path "$LAB_OUT/clone.out")
[[ -b $path ]] || lab_fail "the clone's path '$path' is not a block device"

rm -f "$(lab_guest_log "$guest")"
lab_cli create vm-create "$guest" --type pv --kernel "$LAB_GUEST_DIR/vmlinux" --ramdisk "$LAB_GUEST_DIR/initrd.img" \
  --cmdline "console=hvc0 rdinit=/init quiet" --memory 128M --vcpus 1 --disk "vol:thin/$clone,xvda,w" --json
lab_json_has "$LAB_OUT/create.out" ".spec.disks[0].target == \"vol:thin/$clone\"" \
  "vm-create does not show the disk as vol:thin/$clone"
domid=$(jq -r .domid "$LAB_OUT/create.out")
# What libxl gave blkback: the backend path of xvda, then its params.
lab_run -o "$LAB_OUT/block-list.out" xl block-list "$guest" || lab_fail "xl block-list $guest failed"
backend=$(awk '$1 == 51712 { print $NF }' "$LAB_OUT/block-list.out")
params=$(xenstore-read "$backend/params" 2>&1)
[[ $params == "$path" ]] ||
  lab_fail "xvda of $guest (domid $domid) is backed by '$params' ($backend/params), want the clone's path $path"
lab_say "xvda of $guest is backed by $params"
lab_guest_wait "$guest" "LAB-GUEST-READY" 240
grep -q "^LAB-GUEST-MARKER $marker" "$(lab_guest_log "$guest")" ||
  lab_fail "guest $guest did not print the marker '$marker' of the imported image"
lab_say "guest $guest booted from vol:thin/$clone, a clone of image $image, and read '$marker'"

rc=0
# Its error goes to stderr, which lab_run -o does not keep.
timeout 300 vm-volume --connect "$LAB_CONNECT" delete "$clone" --pool thin >"$LAB_OUT/delete-busy.out" 2>&1 || rc=$?
lab_say "vm-volume delete $clone while $guest runs: exit $rc: $(cat "$LAB_OUT/delete-busy.out")"
((rc == 1)) && grep -q "running domain '$guest' uses it" "$LAB_OUT/delete-busy.out" ||
  lab_fail "vm-volume delete of the running guest's clone exited $rc, want 1 naming $guest"
lvs "$LAB_VG/$clone" >/dev/null 2>&1 || lab_fail "a refused vm-volume delete removed $LAB_VG/$clone"

lab_cli destroy vm-destroy "$guest"
lab_cli delete vm-delete "$guest" --delete-volumes
! lvs "$LAB_VG/$clone" >/dev/null 2>&1 || lab_fail "vm-delete --delete-volumes left $LAB_VG/$clone behind"
lab_say "vm-delete --delete-volumes removed $guest and $LAB_VG/$clone"
lab_cli delete-image vm-image delete "$image"
lab_xenctld_stop
rm -rf "$work"
lab_say "images passed"
