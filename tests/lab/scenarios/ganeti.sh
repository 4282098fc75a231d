#!/bin/bash
# lab-timeout: 2400
# lab-golden: yes
# ganeti: a one-node Ganeti 3.0 cluster on the lab Dom0 uses xenctld as its
# storage and OS provider: gnt-instance add -t ext (provider xenctl,
# image=debian-12) -o xenctl+debian-12 for two instances; both boot with
# their own hostname and identity, their disks are thin snapshots of the
# golden volume (lvs shows the origin), grow-disk grows one, remove leaves
# no LV, and xenctld lists the instances as foreign domains. The add is
# timed against Ganeti's plain template with its own os-image (a raw image
# file dd'd onto the disk).
#
# Ganeti (Debian 12: 3.0.2) is in the Dom0 image (image/packages-image);
# tests/lab/run shares the repository's ganeti/ hooks as $LAB_GANETI_HOOKS.
# Ganeti refuses a volume group under 20 GiB, which is why the lab's LVM
# disk is 24 GB (sparse).
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

image=debian-12
bridge=gntbr0
node=node1.lab.example
cluster=cluster.lab.example
i1=web1.lab.example
i2=web2.lab.example
i3=plain1.lab.example
memory=320
size=${GANETI_DISK_SIZE:-2G}
golden_dir=$LAB_GOLDEN_DIR
raw=/var/tmp/$image.img

command -v gnt-cluster >/dev/null ||
  lab_fail "the lab Dom0 image has no Ganeti (ganeti in tests/lab/image/packages-image)"
[[ -d ${LAB_GANETI_HOOKS:-} ]] ||
  lab_fail "no hooks at \$LAB_GANETI_HOOKS ('${LAB_GANETI_HOOKS:-}'): tests/lab/run shares the repository's ganeti/ there"
[[ -f $golden_dir/$image.tar.zst ]] || lab_fail "no golden image at $golden_dir (scripts/lab builds it for lab-golden scenarios)"

work=$(mktemp -d)
cp /etc/hosts "$work/hosts"
old_hostname=$(hostname)
cleanup() {
  set +e
  for i in $i1 $i2 $i3; do
    gnt-instance list --no-headers -o name 2>/dev/null | grep -qx "$i" && timeout 300 gnt-instance remove -f "$i" >/dev/null 2>&1
    cp "$(lab_guest_log "$i")" "$LAB_OUT/" 2>/dev/null
  done
  cp -r /var/log/ganeti "$LAB_OUT/ganeti-log" 2>/dev/null
  [[ -e /var/lib/ganeti/config.data ]] && timeout 300 gnt-cluster destroy --yes-do-it >/dev/null 2>&1
  lab_cleanup $i1 $i2 $i3
  ip link del "$bridge" 2>/dev/null
  cp "$work/hosts" /etc/hosts
  hostname "$old_hostname"
  rm -rf "$work" "$raw" /usr/share/ganeti/extstorage/xenctl /usr/share/ganeti/os/xenctl /etc/xenctl/ganeti.conf
}
trap cleanup EXIT

# since T0: seconds since T0 (date +%s.%N), one decimal.
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# The hooks where Debian's Ganeti looks, talking to the lab's xenctld.
mkdir -p /usr/share/ganeti/extstorage /usr/share/ganeti/os /usr/share/xenctl/ganeti /etc/xenctl
cp -r "$LAB_GANETI_HOOKS/extstorage/xenctl" /usr/share/ganeti/extstorage/
cp -r "$LAB_GANETI_HOOKS/os/xenctl" /usr/share/ganeti/os/
cp "$LAB_GANETI_HOOKS/lib.sh" /usr/share/xenctl/ganeti/lib.sh
# Ganeti refuses to run an ExtStorage script without its log directory
# ("Cannot find log directory"), which Debian's package does not create.
mkdir -p /var/log/ganeti/extstorage /var/log/ganeti/os

lab_thin_pool
lab_thin_pool_config "$LAB_OUT/xenctld.toml"
printf '\n[images]\ntrusted_keys = ["%s"]\n' "$golden_dir/golden.pub" >>"$LAB_OUT/xenctld.toml"
lab_xenctld_start libxl --config "$LAB_OUT/xenctld.toml"
printf 'XENCTL_CONNECT=%s\nVMM=%s/vmm\n' "$LAB_CONNECT" "$LAB_BIN" >/etc/xenctl/ganeti.conf
lab_run -t 1800 vm-image --connect "$LAB_CONNECT" import "$image" "file://$golden_dir/$image.tar.zst" --pool thin ||
  lab_fail "importing $image"
lab_cli images vm-image list --json
base=$(jq -r --arg n "$image" '.[] | select(.name == $n) | .base_volume | sub("^[^/]*/"; "")' "$LAB_OUT/images.out")
[[ -n $base ]] || lab_fail "vm-image list has no base volume for $image"
lab_run -o "$LAB_OUT/variants.out" /usr/share/ganeti/os/xenctl/update-variants || lab_fail "update-variants"
grep -qx "$image" "$LAB_OUT/variants.out" || lab_fail "update-variants does not list $image"

# Names without DNS (/etc/hosts), a node address that is not loopback on a
# bridge for the instances' NICs, a spare cluster address.
lab_run ip link add "$bridge" type bridge
lab_run ip addr add 192.0.2.10/24 dev "$bridge"
lab_run ip link set "$bridge" up
sed -i '/127.0.1.1/d' /etc/hosts
printf '192.0.2.10 %s node1\n192.0.2.2 %s cluster\n192.0.2.21 %s\n192.0.2.22 %s\n192.0.2.23 %s\n' \
  "$node" "$cluster" "$i1" "$i2" "$i3" >>/etc/hosts
hostname "$node"
# xen-pvm on xl (3.0.2 defaults to xm), the golden image's own kernel
# booted directly, disks as xvdX (the default prefix is sd).
lab_run -t 900 gnt-cluster init --enabled-hypervisors=xen-pvm --enabled-disk-templates=ext,plain \
  --vg-name "$LAB_VG" --no-ssh-init --master-netdev="$bridge" \
  --nic-parameters=link="$bridge" \
  -H "xen-pvm:xen_cmd=xl,kernel_path=$golden_dir/vmlinux,initrd_path=$golden_dir/initrd.img,root_path=/dev/xvda,blockdev_prefix=xvd,kernel_args=ro console=hvc0" \
  "$cluster" || lab_fail "gnt-cluster init"
lab_run -o "$LAB_OUT/storage-diagnose.out" gnt-storage diagnose || lab_fail "gnt-storage diagnose"
grep -q xenctl "$LAB_OUT/storage-diagnose.out" || lab_fail "Ganeti does not see the xenctl ExtStorage provider"
lab_run -o "$LAB_OUT/os-diagnose.out" gnt-os diagnose || lab_fail "gnt-os diagnose"
lab_run -o "$LAB_OUT/os-list.out" gnt-os list --no-headers || lab_fail "gnt-os list"
grep -qx "xenctl+$image" "$LAB_OUT/os-list.out" || lab_fail "Ganeti does not offer the OS xenctl+$image"

ssh-keygen -q -t ed25519 -N '' -C lab-ganeti -f "$work/id" || lab_fail "ssh-keygen"
pubkey=$(cat "$work/id.pub")

add_ext() {
  local name=$1 ip=$2 t0
  rm -f "$(lab_guest_log "$name")"
  t0=$(date +%s.%N)
  lab_run -t 1800 gnt-instance add -t ext --disk "0:size=$size,provider=xenctl,image=$image" \
    -o "xenctl+$image" -O "ssh_key=$pubkey" --net "0:ip=$ip" -B "maxmem=$memory,minmem=$memory" \
    -n "$node" --no-name-check --no-ip-check "$name" || lab_fail "gnt-instance add $name"
  lab_say "TIME gnt-instance add -t ext (xenctl clone + customize) $name: $(since "$t0")s"
}
add_ext "$i1" 192.0.2.21
add_ext "$i2" 192.0.2.22

# Their disks: thin snapshots of the golden base volume.
lab_run -o "$LAB_OUT/lvs.txt" lvs -o lv_name,origin,pool_lv,lv_size,data_percent "$LAB_VG"
lab_say "lvs with both instances:"
sed 's/^/    /' "$LAB_OUT/lvs.txt"
n=$(awk -v b="$base" '$1 ~ /ext\.disk0$/ && $2 == b' "$LAB_OUT/lvs.txt" | wc -l)
((n == 2)) || lab_fail "want the 2 instances' LVs (*.ext.disk0) with origin $base, got $n"

# Both boot with their own hostname and a new identity.
declare -A mid
for i in "$i1" "$i2"; do
  lab_guest_wait "$i" LAB-GUEST-READY 900
  log=$(lab_guest_log "$i")
  grep -a "LAB-GOLDEN" "$log" | tr -d '\r' | sed 's/^/    /'
  grep -aq "LAB-GOLDEN hostname ${i%%.*}" "$log" || lab_fail "$i did not boot with its own hostname"
  grep -aqF "LAB-GOLDEN authorized-key /root/.ssh/authorized_keys $pubkey" "$log" ||
    lab_fail "$i has not the ssh_key given with -O in root's authorized_keys"
  mid[$i]=$(tr -d '\r' <"$log" | sed -n 's/.*LAB-GOLDEN machine-id //p' | head -n 1)
done
golden_mid=$(sed -n 's/^machine-id //p' "$golden_dir/identity.txt")
[[ -n ${mid[$i1]} && ${mid[$i1]} != "${mid[$i2]}" ]] || lab_fail "the instances share a machine-id (${mid[$i1]})"
[[ ${mid[$i1]} != "$golden_mid" && ${mid[$i2]} != "$golden_mid" ]] || lab_fail "an instance kept the golden image's machine-id $golden_mid"
lab_say "machine-ids: $i1 ${mid[$i1]}, $i2 ${mid[$i2]}, the image's $golden_mid"

# Ganeti's domains are foreign to xenctld: listed with --all, not owned.
lab_cli foreign vm-list --all --json
for i in "$i1" "$i2"; do
  lab_json_has "$LAB_OUT/foreign.out" "any(.[]; .spec.name == \"$i\" and .foreign == true)" "xenctld does not list $i as a foreign domain"
done

# grow-disk on the stopped instance (xenctld grows the file system from
# Dom0, so it refuses a disk a running domain uses), then remove: no LV left.
lab_run -t 600 gnt-instance shutdown "$i2" || lab_fail "gnt-instance shutdown $i2"
lab_run -t 600 gnt-instance grow-disk "$i2" 0 1G || lab_fail "gnt-instance grow-disk $i2"
lab_run -o "$LAB_OUT/lvs-grown.txt" lvs -o lv_name,origin,lv_size --units m "$LAB_VG"
lab_run -t 600 gnt-instance remove -f "$i1" || lab_fail "gnt-instance remove $i1"
lab_run -t 600 gnt-instance remove -f "$i2" || lab_fail "gnt-instance remove $i2"
lab_run -o "$LAB_OUT/lvs-after.txt" lvs --noheadings -o lv_name "$LAB_VG"
! grep -q 'ext\.disk' "$LAB_OUT/lvs-after.txt" || lab_fail "gnt-instance remove left LVs: $(tr -s ' \n' ' ' <"$LAB_OUT/lvs-after.txt")"

# The same add with Ganeti's plain template and its own image path: the
# os-image OS parameter (Ganeti 3.0, doc/design-os.rst) dd's an image file
# onto disk 0 (a thick LV), no OS scripts, no personalization. The file is
# the golden base volume as a raw image, made here and not timed.
lab_run lvchange -ay -K "$LAB_VG/$base" || lab_fail "activating $LAB_VG/$base"
lab_run -t 600 dd if="/dev/$LAB_VG/$base" of="$raw" bs=1M conv=sparse || lab_fail "copying $LAB_VG/$base to $raw"
lab_say "os-image $raw: $(du -h --apparent-size "$raw" | cut -f1) ($(du -h "$raw" | cut -f1) allocated)"
rm -f "$(lab_guest_log "$i3")"
t0=$(date +%s.%N)
lab_run -t 1800 gnt-instance add -t plain --disk "0:size=$size" -O "os-image=$raw" --net 0:ip=192.0.2.23 \
  -B "maxmem=$memory,minmem=$memory" -n "$node" --no-name-check --no-ip-check "$i3" ||
  lab_fail "gnt-instance add -t plain $i3"
lab_say "TIME gnt-instance add -t plain (os-image dd) $i3: $(since "$t0")s"
lab_guest_wait "$i3" LAB-GUEST-READY 900
lab_run -t 600 gnt-instance remove -f "$i3" || lab_fail "gnt-instance remove $i3"
lab_say "PASS"
