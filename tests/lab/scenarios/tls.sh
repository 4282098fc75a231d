#!/bin/bash
# lab-timeout: 600
# tls: remote callers over mutual TLS (issue 13). xenctld in Dom0 serves a
# tcp: listener with [daemon.tls] beside its Unix socket; [access] makes one
# client certificate's subject an operator and another's a viewer. The
# operator provisions a domain over TCP (vm-create --image from a small
# catalog image, --hostname, a kernel under [security] allowed_paths), and it
# boots; the viewer lists it, but its vm-destroy and vm-delete are refused
# (PERMISSION_DENIED) and the domain still runs. A TLS client without a
# certificate (openssl s_client), one whose certificate another CA signed,
# and vmm without --cert are all refused, and none of them reaches a
# service (no audit line). The operator then destroys and deletes its own
# domain over TCP. The certificates are made here with openssl (EC P-256).
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

guest=tls-web
image=tls-img
port=7443
tcp=tcp:127.0.0.1:$port
operator_subject="CN=orchestrator,O=lab"
viewer_subject="CN=auditor,O=lab"
marker="tls-marker-$(date +%s)-$RANDOM"

trap 'lab_cleanup "$guest" -- "$guest-root" "$image"' EXIT
command -v openssl >/dev/null || lab_fail "openssl is missing in Dom0 (tests/lab/image/packages lists it)"

# --- certificates ---------------------------------------------------------
pki=$(mktemp -d)
ossl() { lab_run -t 60 -o "$pki/openssl.out" openssl "$@" || lab_fail "openssl $1 failed: $(tail -n 5 "$pki/openssl.out")"; }
ca() {
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/$1.key" -out "$pki/$1.pem" \
    -subj "$2" -days 2 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
# leaf NAME CA SUBJECT SANS USAGE
leaf() {
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$4" "$5" >"$pki/$1.ext"
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "$3"
  ossl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2.key" -CAcreateserial -days 1 \
    -extfile "$pki/$1.ext" -out "$pki/$1.pem"
  chmod 0600 "$pki/$1.key"
}
ca ca "/CN=xenctl lab CA"
ca other-ca "/CN=someone else's CA"
leaf server ca "/CN=xenctld-lab" "DNS:localhost,IP:127.0.0.1" serverAuth
leaf operator ca "/O=lab/CN=orchestrator" "DNS:orchestrator.lab" clientAuth
leaf viewer ca "/O=lab/CN=auditor" "DNS:auditor.lab" clientAuth
leaf stranger other-ca "/O=lab/CN=orchestrator" "DNS:orchestrator.lab" clientAuth
lab_say "certificates made in $pki: CA, server, operator ($operator_subject), viewer ($viewer_subject), and one from another CA"

# --- xenctld: Unix socket and mutual TLS on tcp: ----------------------------
lab_thin_pool
config=$LAB_OUT/xenctld.toml
lab_thin_pool_config "$config"
cat >>"$config" <<CONF

[daemon.tls]
cert = "$pki/server.pem"
key = "$pki/server.key"
client_ca = "$pki/ca.pem"

[access]
operator = ["cert:$operator_subject"]
viewer = ["cert:$viewer_subject"]

[security]
allowed_paths = ["$LAB_GUEST_DIR"]
CONF
lab_xenctld_start libxl --config "$config" --listen "$tcp"
lab_wait_for 60 "xenctld serving mutual TLS on $tcp" grep -q "mutual TLS on tcp: listeners" "$LAB_OUT/xenctld.log"
grep -E "serving on|mutual TLS" "$LAB_OUT/xenctld.log" | sed 's/^/    | /' || true

as_operator=(--connect "$tcp" --cert "$pki/operator.pem" --key "$pki/operator.key" --ca "$pki/ca.pem")
as_viewer=(--connect "$tcp" --cert "$pki/viewer.pem" --key "$pki/viewer.key" --ca "$pki/ca.pem")
# remote NAME WHO CMD ARGS...: runs CMD as WHO (operator|viewer) over TCP,
# output in $LAB_OUT/NAME.out; sets rc.
remote() {
  local name=$1 who=$2 cmd=$3
  shift 3
  local -n creds="as_$who"
  rc=0
  lab_run -t 300 -o "$LAB_OUT/$name.out" "$LAB_BIN/$cmd" "${creds[@]}" "$@" || rc=$?
}

# --- the catalog image: root (an admin) imports it over the Unix socket ----
work=$(mktemp -d)
mkdir -p "$work/root/etc"
echo "$marker" >"$work/root/marker.txt"
echo "$image" >"$work/root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$image" >"$work/root/etc/hosts"
(cd "$work/root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) >"$work/root.cpio.gz" ||
  lab_fail "cannot build the cpio.gz image"
lab_cli import vm-image import "$image" "file://$work/root.cpio.gz" --sha256 "$(sha256sum "$work/root.cpio.gz" | cut -d' ' -f1)" \
  --pool thin --json
lab_say "image $image: $(stat -c %s "$work/root.cpio.gz") bytes of cpio.gz, imported by root over $LAB_CONNECT"

# --- the operator provisions over TCP ---------------------------------------
rm -f "$(lab_guest_log "$guest")"
t0=$(date +%s)
remote create operator vm-create "$guest" --image "$image" --pool thin --hostname "$guest" --keep-identity \
  --type pv --kernel "$LAB_GUEST_DIR/vmlinux" --ramdisk "$LAB_GUEST_DIR/initrd.img" \
  --cmdline "console=hvc0 rdinit=/init quiet" --memory 128M --vcpus 1 --json
((rc == 0)) || lab_fail "the operator's vm-create over $tcp failed (exit $rc): $(cat "$LAB_OUT/create.out")"
lab_say "the operator's vm-create over $tcp returned in $(($(date +%s) - t0)) s"
lab_json_has "$LAB_OUT/create.out" ".spec.disks[0].target == \"vol:thin/$guest-root\"" \
  "vm-create --image did not give $guest the root vol:thin/$guest-root"
lab_json_has "$LAB_OUT/create.out" ".owner == \"cert:$operator_subject\"" \
  "$guest is not owned by the operator's certificate cert:$operator_subject"
grep -q "audit identity=\"cert:$operator_subject\" role=operator method=DomainService.CreateDomain" \
  "$LAB_OUT/xenctld.log" || lab_fail "no audit line names the operator's certificate for CreateDomain of $guest"
lab_guest_wait "$guest" LAB-GUEST-READY 300
grep -q "^LAB-GUEST-MARKER $marker" "$(lab_guest_log "$guest")" ||
  lab_fail "$guest did not print the image's marker '$marker'"
domid=$(xl domid "$guest") || lab_fail "xl does not know $guest"
lab_say "$guest (domid $domid), provisioned by $operator_subject over mutual TLS, booted and read '$marker'"

# --- the viewer reads, and cannot destroy -----------------------------------
remote viewer-list viewer vm-list --json
((rc == 0)) || lab_fail "the viewer's vm-list failed (exit $rc)"
lab_json_has "$LAB_OUT/viewer-list.out" "any(.[]; .spec.name == \"$guest\")" "the viewer's vm-list does not show $guest"
for cmd in vm-destroy vm-delete; do
  args=("$guest")
  [[ $cmd == vm-delete ]] && args+=(--delete-volumes)
  timeout 120 "$LAB_BIN/$cmd" "${as_viewer[@]}" "${args[@]}" >"$LAB_OUT/viewer-$cmd.out" 2>&1 && rc=0 || rc=$?
  lab_say "viewer: $cmd ${args[*]}: exit $rc: $(cat "$LAB_OUT/viewer-$cmd.out")"
  # The CLIs print a PERMISSION_DENIED status as "permission denied: ..." (exit 1).
  ((rc == 1)) || lab_fail "the viewer's $cmd exited $rc, want 1 (refused)"
  grep -q "permission denied: cert:$viewer_subject (role viewer) may not call" "$LAB_OUT/viewer-$cmd.out" ||
    lab_fail "the viewer's $cmd was not refused as PERMISSION_DENIED naming its certificate and role"
done
grep "audit identity=\"cert:$viewer_subject\" role=viewer" "$LAB_OUT/xenctld.log" | grep denied | sed 's/^/    | /' || true
(($(grep "audit identity=\"cert:$viewer_subject\" role=viewer" "$LAB_OUT/xenctld.log" | grep -c denied) >= 2)) ||
  lab_fail "the viewer's refusals are not in the audit log"
[[ $(xl domid "$guest" 2>/dev/null) == "$domid" ]] || lab_fail "$guest (domid $domid) is gone after the viewer's refused calls"
lvs "$LAB_VG/$guest-root" >/dev/null 2>&1 || lab_fail "$LAB_VG/$guest-root is gone after the viewer's refused vm-delete"
lab_cli info vm-info "$guest" --json
lab_json_has "$LAB_OUT/info.out" '.state == "DOMAIN_STATE_RUNNING" or .state == "DOMAIN_STATE_BLOCKED"' \
  "$guest is not running after the viewer's refused calls"
lab_say "$guest still runs (domid $domid) and keeps its root after the viewer's vm-destroy and vm-delete were refused"

# --- callers without a good certificate never reach a service --------------
audits=$(grep -c "audit identity=" "$LAB_OUT/xenctld.log")
# openssl s_client speaks TLS with ALPN h2 and waits for the server (-ign_eof):
# with a certificate the connection stays up (HTTP/2 from xenctld) until the
# timeout; without one xenctld drops it at once, before any HTTP/2.
rc=0
timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile "$pki/ca.pem" -cert "$pki/viewer.pem" -key "$pki/viewer.key" \
  -alpn h2 -ign_eof </dev/null >"$LAB_OUT/with-cert.out" 2>&1 || rc=$?
((rc == 124)) || lab_fail "openssl s_client with the viewer's certificate did not stay connected (exit $rc): $(grep -aiE 'error|alert' "$LAB_OUT/with-cert.out" | head -n 3)"
rc=0
timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$pki/ca.pem" -alpn h2 -ign_eof \
  </dev/null >"$LAB_OUT/no-cert.out" 2>&1 || rc=$?
lab_say "openssl s_client without a certificate: exit $rc: $(grep -aiE 'alert|error|Verify return|Cipher is' "$LAB_OUT/no-cert.out" | head -n 4 | tr '\n' ';')"
((rc != 124 && rc != 0)) && grep -aqiE "unexpected eof|alert" "$LAB_OUT/no-cert.out" ||
  lab_fail "a TLS client without a certificate was not dropped by xenctld (exit $rc)"
rc=0
timeout 120 vm-list --connect "$tcp" --cert "$pki/stranger.pem" --key "$pki/stranger.key" --ca "$pki/ca.pem" \
  >"$LAB_OUT/other-ca.out" 2>&1 || rc=$?
lab_say "vm-list with a certificate from another CA: exit $rc: $(head -c 300 "$LAB_OUT/other-ca.out")"
((rc == 4)) && grep -q "TLS handshake failed" "$LAB_OUT/other-ca.out" ||
  lab_fail "a certificate from another CA was not refused at the handshake (exit $rc, want 4)"
rc=0
timeout 120 vm-destroy --connect "$tcp" --ca "$pki/ca.pem" "$guest" >"$LAB_OUT/no-cert-vmm.out" 2>&1 || rc=$?
lab_say "vm-destroy without --cert: exit $rc: $(head -c 300 "$LAB_OUT/no-cert-vmm.out")"
((rc == 2)) || lab_fail "vm-destroy without --cert exited $rc, want 2"
[[ $(grep -c "audit identity=" "$LAB_OUT/xenctld.log") == "$audits" ]] ||
  lab_fail "a caller without a good certificate reached a service: $(grep "audit identity=" "$LAB_OUT/xenctld.log" | tail -n 3)"
[[ $(xl domid "$guest" 2>/dev/null) == "$domid" ]] || lab_fail "$guest is gone after the refused strangers"
lab_say "no certificate, another CA's certificate, no --cert: all refused before any service; $guest still runs"

# --- the owner may ----------------------------------------------------------
remote destroy operator vm-destroy "$guest"
((rc == 0)) || lab_fail "the operator could not destroy its own $guest (exit $rc)"
remote delete operator vm-delete "$guest" --delete-volumes
((rc == 0)) || lab_fail "the operator could not delete its own $guest (exit $rc)"
! xl domid "$guest" >/dev/null 2>&1 || lab_fail "$guest still in Xen after the operator's vm-destroy"
! lvs "$LAB_VG/$guest-root" >/dev/null 2>&1 || lab_fail "$LAB_VG/$guest-root left after the operator's vm-delete --delete-volumes"
lab_cli delete-image vm-image delete "$image"
lab_xenctld_stop
lab_say "tls passed"
