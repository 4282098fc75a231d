#!/bin/bash
# lab-timeout: 1800
# xlboot: the xl configs that need more than a PV kernel boot through
# xenctld on libxl (`vmm create FILE`, as an administrator starts a domain):
# a PVH guest with two vcpus pinned by cpus= (xl vcpu-list shows each
# vcpu's hard affinity), a PV guest with vfb= (VNC) and vkb= (its backends
# and frontends connected in xenstore, the VNC port answers RFB), and an
# HVM guest on qemu-xen with a disk (hvmloader + SeaBIOS, direct kernel
# boot; xen-qemu-system-i386 runs as its device model). Each prints the
# marker of its own thin LV; the scenario prints each one's time to it.
# HVM and PVH need HAP (Debian's Xen has no shadow paging): the lab's CPU
# must offer SVM with NPT (tests/lab/run's -cpu).
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

pvh=lab-xlb-pvh
pv=lab-xlb-pv
hvm=lab-xlb-hvm
vncdisplay=7

trap 'lab_cleanup "$pvh" "$pv" "$hvm" -- xb-pvh xb-pv xb-hvm' EXIT

# The hypervisor's virtualisation: what HVM and PVH need, and why it is
# missing when it is.
timeout 60 xl info >"$LAB_OUT/xl-info.txt" 2>&1 || lab_fail "xl info failed: $(tail -n 3 "$LAB_OUT/xl-info.txt")"
timeout 60 xl dmesg >"$LAB_OUT/xl-dmesg.txt" 2>&1 || true
caps=$(sed -n 's/^virt_caps *: *//p' "$LAB_OUT/xl-info.txt")
lab_say "virt_caps: $caps; $(grep -E '^xen_caps' "$LAB_OUT/xl-info.txt" | tr -s ' ')"
grep -E 'SVM|VMX|HAP|HVM:' "$LAB_OUT/xl-dmesg.txt" | sed 's/^/    | /'
[[ " $caps " == *" hvm "* && " $caps " == *" hap "* ]] ||
  lab_fail "Xen offers no HVM with HAP (virt_caps: $caps); HVM and PVH guests cannot start (xl dmesg above). The lab's CPU needs SVM with NPT: tests/lab/run -cpu qemu64,+npt"

# boot NAME CFG SECS [LOG]: vmm create CFG through xenctld, then waits up to
# SECS for the guest's marker on its console (or in LOG); sets domid and
# prints the time from the create to the marker (and the guest's own uptime
# then).
boot() {
  local name=$1 cfg=$2 limit=$3 log=${4:-} t0
  [[ -n $log ]] || log=$(lab_guest_log "$name")
  rm -f "$log"
  lab_say "xl config $cfg:"
  sed 's/^/    | /' "$cfg"
  t0=$(date +%s.%N)
  lab_cli "create-$name" vmm create "$cfg" --json
  lab_json_has "$LAB_OUT/create-$name.out" \
    "(.state == \"DOMAIN_STATE_RUNNING\" or .state == \"DOMAIN_STATE_BLOCKED\") and .spec.name == \"$name\"" \
    "vmm create $cfg did not leave $name running"
  domid=$(jq -r .domid "$LAB_OUT/create-$name.out")
  [[ $(xl domid "$name" 2>/dev/null) == "$domid" ]] ||
    lab_fail "xl does not see $name as domid $domid: $(xl list 2>&1 | tr '\n' ' ')"
  lab_guest_wait "$name" "^LAB-GUEST-MARKER ${markers[$name]}" "$limit" "$log"
  lab_guest_wait "$name" "^LAB-GUEST-READY" 60 "$log"
  lab_say "BOOT $name (domid $domid): marker after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')s from vmm create; guest: $(grep -a '^LAB-GUEST-READY' "$log" | tr -d '\r')"
}

# xs_state PATH WANT: whether xenstore PATH/state is WANT.
xs_state() { [[ $(xenstore-read "$1/state" 2>/dev/null) == "$2" ]]; }

# dm_of DOMID: the device model process serving DOMID, if any.
dm_of() { pgrep -af "xen-qemu-system-i386 .*-xen-domid $1( |$)"; }
dm_gone() { ! dm_of "$1" >/dev/null; }

declare -A markers
for g in "$pvh" "$pv" "$hvm"; do markers[$g]="xlboot-${g#lab-xlb-}-$(date +%s)-$RANDOM"; done
lab_root_volume xb-pvh "${markers[$pvh]}"
lab_root_volume xb-pv "${markers[$pv]}"
lab_root_volume xb-hvm "${markers[$hvm]}"

lab_xenctld_start libxl

# PVH, two vcpus pinned each to its own CPU: vcpu 0 on CPU 1, vcpu 1 on CPU 0.
# lab_guest_cfg's PV config made PVH.
cfg=$(lab_guest_cfg "$pvh" "/dev/$LAB_VG/xb-pvh")
sed -i -e 's/^type .*/type        = "pvh"/' -e 's/^vcpus .*/vcpus       = 2/' "$cfg"
echo 'cpus        = [ "1", "0" ]' >>"$cfg"
boot "$pvh" "$cfg" 300
lab_run -o "$LAB_OUT/vcpu-list.txt" xl vcpu-list "$pvh" || lab_fail "xl vcpu-list $pvh failed"
# Name ID VCPU CPU State Time(s) Affinity (Hard / Soft): hard is 3rd from the end.
hard=$(awk -v n="$pvh" '$1 == n { printf "%s=%s ", $3, $(NF - 2) }' "$LAB_OUT/vcpu-list.txt")
[[ $hard == "0=1 1=0 " ]] || lab_fail "xl vcpu-list shows hard affinities '$hard' for $pvh, want vcpu 0 on CPU 1 and vcpu 1 on CPU 0"
lab_json_has "$LAB_OUT/create-$pvh.out" '.spec.type == "DOMAIN_TYPE_PVH" and .spec.vcpus == 2' \
  "vmm create of $pvh does not report a PVH spec with 2 vcpus"
lab_say "PVH $pvh runs with vcpu 0 pinned to CPU 1 and vcpu 1 to CPU 0"
lab_cli destroy-pvh vm-destroy "$pvh" --json

# PV with a VNC framebuffer and a second virtual keyboard: qemu serves both
# from Dom0 (xenpv machine); the guest's fbfront and kbdfront are built in.
# A vkb item must name its backend-type: xl refuses vkb = [ '' ] ("backend-type
# should be set in vkb spec"), and so does xenctld.
cfg=$(lab_guest_cfg "$pv" "/dev/$LAB_VG/xb-pv")
printf '%s\n' "vfb         = [ 'vnc=1,vnclisten=127.0.0.1,vncdisplay=$vncdisplay' ]" \
  "vkb         = [ 'backend-type=qemu' ]" >>"$cfg"
boot "$pv" "$cfg" 300
dm_of "$domid" | sed 's/^/    | /' || lab_fail "no xen-qemu-system-i386 -xen-domid $domid serves $pv's vfb and vkb: $(pgrep -af qemu)"
for dev in vfb/0 vkbd/0 vkbd/1; do
  lab_wait_for 60 "$pv's $dev connected (backend and frontend state 4)" \
    eval "xs_state /local/domain/0/backend/${dev%/*}/$domid/${dev#*/} 4 && xs_state /local/domain/$domid/device/$dev 4"
done
xenstore-ls -f "/local/domain/0/backend/vfb/$domid" >"$LAB_OUT/vfb-backend.txt" 2>&1 || true
port=$((5900 + vncdisplay))
banner=$(timeout 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -c 12 <&3" 2>&1 | tr -d '\n') || true
[[ $banner == RFB\ 00* ]] || lab_fail "VNC port $port of $pv does not answer RFB (got '$banner')"
lab_say "PV $pv: vfb/0, vkbd/0 and vkbd/1 connected; VNC on 127.0.0.1:$port answers '$banner'"
lab_cli destroy-pv vm-destroy "$pv" --json
lab_wait_for 30 "$pv's vfb/vkb backend (domid $domid) gone after vm-destroy" dm_gone "$domid"

# HVM on qemu-xen: hvmloader and SeaBIOS, then the Dom0's own kernel
# (a bzImage, which qemu's -kernel hands SeaBIOS's linuxboot ROM through
# fw_cfg) with the guest's initramfs; the disk is emulated (SeaBIOS sees an
# ATA disk) until Linux unplugs it for blkfront. The console is the
# emulated serial port, which qemu writes to a file: xenconsoled logs only
# an HVM guest's PV console. Slow under TCG: SVM and its nested paging are
# emulated too.
kernel=/boot/vmlinuz-$(uname -r)
[[ -f $kernel ]] || lab_fail "no $kernel in Dom0 for the HVM guest"
serial=/var/log/xen/console/serial-$hvm.log
cat >"$LAB_OUT/$hvm.cfg" <<EOF
name                 = "$hvm"
type                 = "hvm"
device_model_version = "qemu-xen"
kernel               = "$kernel"
ramdisk              = "$LAB_GUEST_DIR/initrd.img"
extra                = "console=ttyS0 rdinit=/init quiet"
memory               = 256
vcpus                = 1
disk                 = [ 'phy:/dev/$LAB_VG/xb-hvm,xvda,w' ]
serial               = "file:$serial"
vnc                  = 0
vga                  = "none"
on_poweroff          = "destroy"
on_crash             = "destroy"
EOF
boot "$hvm" "$LAB_OUT/$hvm.cfg" 1200 "$serial"
cp "$serial" "$LAB_OUT/"
dm_of "$domid" | sed 's/^/    | /' || lab_fail "no xen-qemu-system-i386 -xen-domid $domid runs as $hvm's device model"
lab_json_has "$LAB_OUT/create-$hvm.out" '.spec.type == "DOMAIN_TYPE_HVM"' "vmm create of $hvm does not report an HVM spec"
lab_say "HVM $hvm runs on its qemu-xen device model and read its disk"
lab_cli destroy-hvm vm-destroy "$hvm" --json
# libxl stops the device model with SIGHUP during the destroy; it exits soon after.
lab_wait_for 30 "$hvm's device model (domid $domid) gone after vm-destroy" dm_gone "$domid"

lab_xenctld_stop
lab_say "xlboot passed"
