#!/bin/bash
# lab-timeout: 3600
# lab-golden: yes
# ganeti: a one-node Ganeti 3.0 cluster on the lab Dom0 uses xenctld as its
# storage and OS provider: gnt-instance add -t ext (provider xenctl,
# image=debian-12) -o xenctl+debian-12 for two instances; both boot with
# their own hostname and identity, their disks are thin snapshots of the
# golden volume (lvs shows the origin), grow-disk grows one, remove leaves
# no LV, and xenctld lists the instances as foreign domains. The add is
# timed against Ganeti's plain template with its own os-image download.
#
# NEVER RUN: written before the lab Dom0 image has Ganeti (ganeti 3.0.2
# from Debian 12) and before the driver shares the hooks
# (ganeti/extstorage/xenctl, ganeti/os/xenctl, ganeti/lib.sh) as
# $LAB_GANETI_HOOKS. Until both are there it reports WAITING and passes,
# unless GANETI_REQUIRE=1.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

image=debian-12
bridge=gntbr0
node=node1.lab.example
cluster=cluster.lab.example
i1=web1.lab.example
i2=web2.lab.example
i3=plain1.lab.example

waiting() {
  lab_say "WAITING: $*"
  [[ ${GANETI_REQUIRE:-0} != 1 ]] || lab_fail "ganeti cannot run: $*"
  exit 0
}
command -v gnt-cluster >/dev/null || waiting "the lab Dom0 image has no Ganeti (apt install ganeti in tests/lab/build-image)"
[[ -d ${LAB_GANETI_HOOKS:-} ]] || waiting "the driver does not share ganeti/ as \$LAB_GANETI_HOOKS"

trap 'set +e; for i in $i1 $i2 $i3; do gnt-instance remove -f "$i" >/dev/null 2>&1; done;
      gnt-cluster destroy --yes-do-it >/dev/null 2>&1; lab_cleanup -- "$image";
      ip link del "$bridge" 2>/dev/null; rm -rf /usr/share/ganeti/extstorage/xenctl /usr/share/ganeti/os/xenctl' EXIT

# The hooks where Debian's Ganeti looks, talking to the lab's xenctld.
mkdir -p /usr/share/ganeti/extstorage /usr/share/ganeti/os /usr/share/xenctl/ganeti /etc/xenctl
cp -a "$LAB_GANETI_HOOKS/extstorage/xenctl" /usr/share/ganeti/extstorage/
cp -a "$LAB_GANETI_HOOKS/os/xenctl" /usr/share/ganeti/os/
cp "$LAB_GANETI_HOOKS/lib.sh" /usr/share/xenctl/ganeti/lib.sh

lab_thin_pool
config=$(mktemp)
lab_thin_pool_config "$config"
lab_xenctld_start xen --config "$config"
printf 'XENCTL_CONNECT=%s\nVMM=%s/vmm\n' "$LAB_CONNECT" "$LAB_BIN" >/etc/xenctl/ganeti.conf
lab_cli import vm-image import "$image" "file://$LAB_GOLDEN_DIR/$image.tar.zst" --pool thin \
  --allow-unsigned || lab_fail "importing $image"
lab_run /usr/share/ganeti/os/xenctl/update-variants || lab_fail "update-variants"

# Names without DNS (/etc/hosts), a node address that is not loopback, a
# spare cluster address (docs/FACTS.md 1c).
lab_run ip link add "$bridge" type bridge
lab_run ip addr add 192.0.2.10/24 dev "$bridge"
lab_run ip link set "$bridge" up
sed -i '/127.0.1.1/d' /etc/hosts
printf '192.0.2.10 %s node1\n192.0.2.2 %s cluster\n192.0.2.21 %s\n192.0.2.22 %s\n192.0.2.23 %s\n' \
  "$node" "$cluster" "$i1" "$i2" "$i3" >>/etc/hosts
hostname "$node"
lab_run -t 900 gnt-cluster init --enabled-hypervisors=xen-pvm --enabled-disk-templates=ext,plain \
  --vg-name "$LAB_VG" --no-ssh-init --master-netdev="$bridge" --nic-parameters=link="$bridge" \
  -H "xen-pvm:xen_cmd=xl,kernel_path=$LAB_GOLDEN_DIR/vmlinux,initrd_path=$LAB_GOLDEN_DIR/initrd.img,root_path=/dev/xvda,kernel_args=ro console=hvc0" \
  "$cluster" || lab_fail "gnt-cluster init"
lab_run gnt-storage diagnose || lab_fail "Ganeti does not see the xenctl provider"
lab_run gnt-os diagnose || lab_fail "Ganeti does not see the xenctl OS"

add_ext() {
  local name=$1 ip=$2 t0
  t0=$(date +%s.%N)
  lab_run -t 1800 gnt-instance add -t ext --disk "0:size=2G,provider=xenctl,image=$image" \
    -o "xenctl+$image" -O "ssh_key=$(cat "$LAB_GOLDEN_DIR/golden.pub" 2>/dev/null || echo)" \
    --net "0:ip=$ip" -B memory=320M -n "$node" --no-name-check --no-ip-check "$name" ||
    lab_fail "gnt-instance add $name"
  lab_say "TIME gnt-instance add -t ext $name: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
}
add_ext "$i1" 192.0.2.21
add_ext "$i2" 192.0.2.22

# Their disks: thin snapshots of the golden volume.
lab_run -o "$LAB_OUT/lvs.txt" lvs -o lv_name,origin,pool_lv,lv_size "$LAB_VG"
[[ $(grep -c " $image " "$LAB_OUT/lvs.txt") -ge 2 ]] || lab_fail "the instances' LVs are not snapshots of $image"
for i in "$i1" "$i2"; do
  lab_guest_wait "$i" LAB-GUEST-READY 900
  grep -q "LAB-GOLDEN hostname $i" "$(lab_guest_log "$i")" || lab_fail "$i did not boot with its own hostname"
done
id1=$(sed -n 's/.*LAB-GOLDEN machine-id //p' "$(lab_guest_log "$i1")" | head -n 1)
id2=$(sed -n 's/.*LAB-GOLDEN machine-id //p' "$(lab_guest_log "$i2")" | head -n 1)
[[ -n $id1 && $id1 != "$id2" ]] || lab_fail "the instances share a machine-id ($id1)"
lab_cli foreign vm-list --json
grep -q "\"$i1\"" "$LAB_OUT/foreign.out" || lab_fail "xenctld does not list $i1"

# grow-disk on the stopped instance, then remove: no LV left.
lab_run -t 600 gnt-instance shutdown "$i2" || lab_fail "shutdown $i2"
lab_run -t 600 gnt-instance grow-disk "$i2" 0 1G || lab_fail "grow-disk $i2"
for i in "$i1" "$i2"; do lab_run -t 600 gnt-instance remove -f "$i" || lab_fail "remove $i"; done
lab_run -o "$LAB_OUT/lvs-after.txt" lvs --noheadings -o lv_name "$LAB_VG"
grep -q "ext.disk" "$LAB_OUT/lvs-after.txt" && lab_fail "gnt-instance remove left LVs: $(cat "$LAB_OUT/lvs-after.txt")"

# The same add with Ganeti's plain template and its own os-image download
# (no checksum, no personalization), for the time it takes. It needs the
# golden image as a raw disk image ($image.img), which build-image does not
# make yet (it makes the tar.zst xenctld imports).
t0=$(date +%s.%N)
lab_run -t 3600 gnt-instance add -t plain --disk 0:size=2G -o noop \
  -O "os-image=$LAB_GOLDEN_DIR/$image.img" --net 0:ip=192.0.2.23 -B memory=320M -n "$node" \
  --no-name-check --no-ip-check --no-start "$i3" || lab_fail "gnt-instance add -t plain $i3"
lab_say "TIME gnt-instance add -t plain (os-image) $i3: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
lab_say "PASS"
