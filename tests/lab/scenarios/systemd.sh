#!/bin/bash
# lab-timeout: 1200
# systemd: xenctl as an administrator installs and runs it on a Dom0 booted
# with systemd. `apt install ./xenctl_*.deb` (the package scripts/package
# built from this tree) resolves its Depends offline from the Dom0's own
# packages and enables xenctld.socket, not the service; the first `vm-list`
# starts xenctld through the socket; `systemctl show` has its sd_notify
# StatusText and ActiveState=active. An image is imported, a volume cloned
# from it and a guest with a vif on a bridge boots from the clone under the
# unit's hardening. SIGSTOP makes xenctld stop answering: the watchdog kills
# it and systemd starts a new one (a new MainPID) that still lists the guest
# running. `systemctl stop xenctld` leaves the guest running under its domid
# and `systemctl start` re-attaches it. Both units stopped, the socket
# started and a call that starts xenctld again: the definition, the image
# and the volume are kept. `journalctl -u
# xenctld` holds an audit line for each call that changed something.
# `apt purge` removes the units and keeps the state directory.
# Keeps: the installed file list, `systemd-analyze security`, the journal.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

guest=lab-sd
image=sd-image
clone=sd-root
bridge=sdbr0
unit=xenctld.service
# The installed commands, not the ones the driver shares on PATH.
bin=/usr/bin

cleanup() {
  set +e
  journalctl -u xenctld.service -u xenctld.socket --no-pager -o short-monotonic >"$LAB_OUT/journal.txt" 2>&1
  systemctl status --no-pager xenctld.socket xenctld.service >"$LAB_OUT/status.txt" 2>&1
  if dpkg -s xenctl >/dev/null 2>&1; then
    systemctl stop xenctld.socket xenctld.service
    lab_run -t 300 apt-get purge -y xenctl
  fi
  # lab_cleanup keeps a copy of what is left in the state dir.
  lab_cleanup "$guest" -- "$clone" "$image"
  rm -rf /var/lib/xenctld /run/xenctld
  ip link del "$bridge" 2>/dev/null
  return 0
}
trap cleanup EXIT

# show PROP: one property of xenctld.service.
show() { systemctl show -p "$1" --value "$unit"; }

# --- install ---------------------------------------------------------------
debs=("$LAB_IN"/deb/xenctl_*.deb)
[[ -f ${debs[0]} ]] ||
  lab_fail "no xenctl_*.deb in the share: build it with ./scripts/package (it lands in ${LAB_HOST_BUILD_DIR:-BUILD_DIR}/deb)"
work=$(mktemp -d /var/tmp/lab-sd.XXXXXX)
cp "${debs[0]}" "$work/"
deb=$work/$(basename "${debs[0]}")
lab_say "package: $(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"
# Offline: the Dom0 has no package lists and no network, so every Depends
# must already be installed in the image.
lab_run -t 600 env DEBIAN_FRONTEND=noninteractive apt-get install -y "$deb" ||
  lab_fail "apt-get install of $(basename "$deb") failed (Depends not in the Dom0 image? see above)"
dpkg -L xenctl | sort >"$LAB_OUT/installed-files.txt"
lab_say "installed $(wc -l <"$LAB_OUT/installed-files.txt") paths (installed-files.txt)"
lab_run systemctl is-enabled xenctld.socket || lab_fail "installing did not enable xenctld.socket"
lab_run systemctl is-active xenctld.socket || lab_fail "installing did not start xenctld.socket"
[[ $(show ActiveState) == inactive ]] || lab_fail "xenctld.service runs before any client called (ActiveState $(show ActiveState))"
[[ -S /run/xenctld/xenctld.sock ]] || lab_fail "no socket at /run/xenctld/xenctld.sock after install"
getent group xenctl >/dev/null || lab_fail "installing did not create the xenctl group (sysusers)"

# The administrator's one change: a storage pool on the lab's thin pool.
lab_thin_pool
lab_thin_pool_config "$work/pool.toml"
cat "$work/pool.toml" >>/etc/xenctl/xenctld.toml

lab_run -o "$LAB_OUT/security.txt" systemd-analyze security --no-pager "$unit"
lab_say "systemd-analyze security: $(tail -n 1 "$LAB_OUT/security.txt")"

# --- socket activation, sd_notify -------------------------------------------
lab_run -t 150 -o "$LAB_OUT/list-first.out" "$bin/vm-list" --call-timeout 120 --json ||
  lab_fail "the first vm-list did not get an answer through xenctld.socket"
lab_json_has "$LAB_OUT/list-first.out" 'type == "array"' "the first vm-list did not print a JSON array"
[[ $(show ActiveState) == active ]] || lab_fail "xenctld.service is $(show ActiveState) after the first vm-list, want active"
lab_run -o "$LAB_OUT/show.out" systemctl show -p StatusText,ActiveState,SubState,MainPID,NRestarts,TriggeredBy "$unit"
grep -q '^StatusText=serving on ' "$LAB_OUT/show.out" || lab_fail "StatusText does not say xenctld is serving (sd_notify STATUS=)"
grep -qx 'SubState=running' "$LAB_OUT/show.out" || lab_fail "xenctld.service is not running (Type=notify READY=1)"
pid=$(show MainPID)
grep -qF 'StatusText=serving on unix:/run/xenctld/xenctld.sock (from systemd)' "$LAB_OUT/show.out" ||
  lab_fail "xenctld does not serve the socket systemd passed (StatusText above)"

# --- an image, a clone, a guest with a vif, all under the unit's hardening -
lab_run ip link add "$bridge" type bridge
lab_run ip link set "$bridge" up
mkdir -p "$work/root/etc"
marker="systemd-marker-$RANDOM"
echo "$marker" >"$work/root/marker.txt"
echo "$guest" >"$work/root/etc/hostname"
(cd "$work/root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) >"$work/root.cpio.gz"
sha=$(sha256sum "$work/root.cpio.gz" | cut -d' ' -f1)
lab_run -t 300 "$bin/vm-image" import "$image" "file://$work/root.cpio.gz" --sha256 "$sha" --pool thin ||
  lab_fail "vm-image import under xenctld.service failed"
lab_run -t 300 "$bin/vm-volume" clone "$image" "$clone" --pool thin || lab_fail "vm-volume clone failed"
rm -f "$(lab_guest_log "$guest")"
lab_run -t 300 -o "$LAB_OUT/create.out" "$bin/vm-create" "$guest" --type pv --kernel "$LAB_GUEST_DIR/vmlinux" \
  --ramdisk "$LAB_GUEST_DIR/initrd.img" --cmdline "console=hvc0 rdinit=/init quiet" --memory 128M --vcpus 1 \
  --disk "vol:thin/$clone,xvda,w" --vif "bridge=$bridge" --json || lab_fail "vm-create under xenctld.service failed"
domid=$(jq -r .domid "$LAB_OUT/create.out")
lab_guest_wait "$guest" "LAB-GUEST-MARKER $marker" 300
ports=$(ip -o link show master "$bridge")
lab_say "ports of $bridge: $ports"
[[ $ports == *"vif$domid."* ]] || lab_fail "the guest's vif is not on $bridge (vif-bridge hotplug under the unit)"

# running DOMID FILE: FILE (vm-list --json) shows the guest running as DOMID.
running() {
  jq -e --arg n "$guest" --argjson d "$1" \
    'any(.[]; .spec.name == $n and (.domid | tonumber) == $d and (.state == "DOMAIN_STATE_RUNNING" or .state == "DOMAIN_STATE_BLOCKED"))' \
    "$2" >/dev/null
}

# --- the watchdog -------------------------------------------------------------
restarts=$(show NRestarts)
lab_say "+ kill -STOP $pid (xenctld stops answering; WatchdogSec=$(show WatchdogUSec))"
kill -STOP "$pid"
new_pid() { [[ $(show ActiveState) == active && $(show MainPID) != "$pid" && $(show MainPID) != 0 ]]; }
lab_wait_for 180 "the watchdog to replace the stopped xenctld (pid $pid)" new_pid
lab_say "xenctld restarted: MainPID $pid -> $(show MainPID), NRestarts $restarts -> $(show NRestarts)"
fired=$(journalctl -u "$unit" --no-pager | grep -i 'watchdog timeout' | tail -n 1) ||
  lab_fail "the journal does not say the watchdog fired"
lab_say "journal: $fired"
((restarts < $(show NRestarts))) || lab_fail "NRestarts did not grow ($restarts)"
[[ $(xl domid "$guest" 2>/dev/null) == "$domid" ]] || lab_fail "the guest did not survive the watchdog's kill of xenctld"
lab_run -o "$LAB_OUT/list-watchdog.out" "$bin/vm-list" --json || lab_fail "vm-list after the watchdog restart failed"
running "$domid" "$LAB_OUT/list-watchdog.out" || lab_fail "after the watchdog restart vm-list does not show $guest running as $domid"

# --- stop leaves the guest, start re-attaches it --------------------------------
lab_run -t 60 systemctl stop "$unit" || lab_fail "systemctl stop $unit failed"
[[ $(show ActiveState) == inactive ]] || lab_fail "xenctld.service is $(show ActiveState) after stop"
[[ $(xl domid "$guest" 2>/dev/null) == "$domid" ]] || lab_fail "systemctl stop xenctld took the guest $guest (domid $domid) down"
lab_say "after systemctl stop: guest $guest still runs as domid $domid"
lab_run -t 120 systemctl start "$unit" || lab_fail "systemctl start $unit failed"
lab_run -o "$LAB_OUT/list-start.out" "$bin/vm-list" --json || lab_fail "vm-list after systemctl start failed"
running "$domid" "$LAB_OUT/list-start.out" || lab_fail "after systemctl start vm-list does not show $guest running as $domid"

# --- a restart of the units keeps definitions and volumes -------------------------
# Both units down, then only the socket up: the next call starts xenctld again.
lab_run -t 120 systemctl stop "$unit" xenctld.socket || lab_fail "stopping $unit and xenctld.socket failed"
[[ $(xl domid "$guest" 2>/dev/null) == "$domid" ]] || lab_fail "stopping the units took the guest $guest (domid $domid) down"
lab_run -t 120 systemctl start xenctld.socket || lab_fail "systemctl start xenctld.socket failed"
[[ $(show ActiveState) == inactive ]] || lab_fail "xenctld.service is $(show ActiveState) after only the socket started"
lab_run -t 150 -o "$LAB_OUT/list-restart.out" "$bin/vm-list" --call-timeout 120 --json ||
  lab_fail "vm-list after the restart of the units failed"
[[ $(show ActiveState) == active ]] || lab_fail "vm-list did not start xenctld.service through the socket again"
running "$domid" "$LAB_OUT/list-restart.out" || lab_fail "after the restart of the units vm-list does not show $guest running as $domid"
lab_run -o "$LAB_OUT/volumes.out" "$bin/vm-volume" list --json || lab_fail "vm-volume list after the restart failed"
lab_json_has "$LAB_OUT/volumes.out" "[.. | strings] | any(. == \"$clone\")" "the volume $clone is gone after the restart"
lab_run -o "$LAB_OUT/images.out" "$bin/vm-image" list --json || lab_fail "vm-image list after the restart failed"
lab_json_has "$LAB_OUT/images.out" "any(.[]; .name == \"$image\" and .sha256 == \"$sha\")" "the image $image is gone after the restart"

lab_run -t 120 "$bin/vm-destroy" "$guest" || lab_fail "vm-destroy failed"
lab_run -t 300 "$bin/vm-delete" "$guest" --delete-volumes || lab_fail "vm-delete --delete-volumes failed"
lab_run -t 300 "$bin/vm-image" delete "$image" || lab_fail "vm-image delete failed"

# --- the journal holds the audit trail -------------------------------------------
journalctl -u "$unit" --no-pager -o cat | grep -E '(^|: )audit ' >"$LAB_OUT/audit.txt" || true
sed 's/^/    | /' "$LAB_OUT/audit.txt"
for m in ImportImage CloneVolume CreateDomain DestroyDomain DeleteDomain DeleteImage; do
  grep -q "method=[^ ]*\.$m " "$LAB_OUT/audit.txt" || lab_fail "journalctl -u xenctld has no audit line for $m"
done
lab_say "journal: $(wc -l <"$LAB_OUT/audit.txt") audit lines"

# --- purge ---------------------------------------------------------------------
lab_run -t 300 apt-get purge -y xenctl || lab_fail "apt-get purge xenctl failed"
[[ ! -e /lib/systemd/system/xenctld.socket ]] || lab_fail "purge left xenctld.socket"
! systemctl is-active -q xenctld.socket || lab_fail "xenctld.socket still active after purge"
[[ -d /var/lib/xenctld ]] || lab_fail "purge removed the state directory /var/lib/xenctld (it must keep it unless asked)"
lab_say "systemd passed"
