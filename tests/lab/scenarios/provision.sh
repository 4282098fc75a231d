#!/bin/bash
# lab-timeout: 3600
# lab-golden: yes
# provision: the golden Debian 12 image (systemd, sshd, build-image's
# minisign-signed tar.zst) is imported into lvm-thin under xenctld's shipped
# image policy (set-id files and /dev nodes kept); a clone of it boots under
# Xen (PV, its own kernel) and prints its marker. Then two servers are
# provisioned from it, web1 with `vm-create --image --hostname --ssh-key
# --file --ip` and web2 from a container file through `vmm create FILE`
# (hostname, key, network, [replace], [patch], [reset-identity]); both boot,
# and their consoles show their own hostname, machine-ids and SSH host keys
# that differ from each other and from the golden image, the injected key
# (which also logs in over the vif), the replaced and the patched file. A
# container file with a syntax error is refused naming its line and column,
# and leaves no volume and no domain.
#
# The golden image prints what a scenario checks itself, at boot
# (image/golden-report): "LAB-GOLDEN KEY VALUE" lines, then LAB-GUEST-READY.
#
# Parts that need pieces still being written are skipped with a line
# saying which (WAITING), unless PROVISION_REQUIRE_ALL=1 (-e) makes that a
# failure; .ci/run sets it once they are all in.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

image=debian-12
gold=prov-gold     # a plain clone of the golden image, booted as it is
web1=prov-web1     # vm-create --image
web2=prov-web2     # vmm create CONTAINER-FILE
web3=prov-web3     # a container file with a syntax error
bridge=labbr0
memory=320M
cmdline="root=/dev/xvda ro console=hvc0"
BOOT_LIMIT=${PROVISION_BOOT_LIMIT:-900}
waiting=()

sampler=
trap '[[ -z $sampler ]] || kill "$sampler" 2>/dev/null; lab_cleanup "$gold" "$web1" "$web2" "$web3" -- "$gold-root" "$web1-root" "$web2-root" "$web3-root" "$web3-scratch" "$image"; ip link del "$bridge" 2>/dev/null || true' EXIT

# Where the time goes under TCG (an import, a boot): the busiest processes
# every 20 s, in the results.
(set +e
while :; do
  echo "== $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  top -b -n 1 -c -w 160 | sed -n '7,13p'
  du -sm /var/lib/xenctld/images.tmp 2>/dev/null
  sleep 20
done) >"$LAB_OUT/ps-samples.log" 2>&1 &
sampler=$!

golden_dir=${LAB_GOLDEN_DIR:?}
[[ -f $golden_dir/$image.tar.zst && -f $golden_dir/$image.tar.zst.minisig ]] ||
  lab_fail "no golden image in $golden_dir: tests/lab/build-image makes it (its golden-KEY stage)"
lab_say "golden image: $(tr '\n' ';' <"$golden_dir/manifest.txt" | cut -c 1-300)"
work=$(mktemp -d)

# wait_ready NAME: the guest's console reaches LAB-GUEST-READY; prints the
# boot time (xenctld's create returning to the report) and keeps the log.
wait_ready() {
  local name=$1 t0=$2
  lab_guest_wait "$name" "LAB-GUEST-READY" "$BOOT_LIMIT"
  lab_say "BOOT $name: console ready $(($(date +%s) - t0)) s after vm-create returned"
  # The guest's getty shares the console with lab-report: its "HOST login: "
  # prompt can land at the start of a report line (run 20261207-105931).
  tr -d '\r' <"$(lab_guest_log "$name")" | sed -E 's/^[^ ]+ login: (LAB-GOLDEN )/\1/' >"$LAB_OUT/console-$name.log"
  grep '^LAB-GOLDEN ' "$LAB_OUT/console-$name.log" | sed 's/^/    | /'
}

# golden NAME KEY: the values of the guest's "LAB-GOLDEN KEY ..." lines.
golden() { sed -n "s/^LAB-GOLDEN $2 //p" "$LAB_OUT/console-$1.log"; }

# expect_line NAME KEY VALUE: the guest printed "LAB-GOLDEN KEY VALUE".
expect_line() {
  golden "$1" "$2" | grep -qxF -- "$3" ||
    lab_fail "$1's console has no 'LAB-GOLDEN $2 $3'; it has: $(golden "$1" "$2" | tr '\n' ';')"
}

# differ A B WHAT: the identities (machine-id, host keys) of A and B share nothing.
differ() {
  local a=$1 b=$2 k common
  for k in machine-id hostkey; do
    common=$(comm -12 <(golden_of "$a" "$k" | sort) <(golden_of "$b" "$k" | sort))
    [[ -z $common ]] || lab_fail "$a and $b share their $k: $common"
  done
  lab_say "$a and $b: different machine-ids and SSH host keys"
}
# golden_of NAME KEY: like golden, and for "golden" the image's own identity
# (identity.txt, written when the image was built).
golden_of() {
  if [[ $1 == golden ]]; then sed -n "s/^$2 //p" "$golden_dir/identity.txt"; else golden "$1" "$2"; fi
}

has_hostkeys() {
  local n
  n=$(golden "$1" hostkey | wc -l)
  ((n >= 2)) || lab_fail "$1 printed $n SSH host keys; the golden image has $(grep -c ^hostkey "$golden_dir/identity.txt")"
  expect_line "$1" sshd active
}

lab_thin_pool
lab_thin_pool_config "$LAB_OUT/xenctld.toml"
# Only the key: the [images] policy is the shipped default (set-id files
# and the standard /dev nodes kept), which a Debian root needs.
printf '\n[images]\ntrusted_keys = ["%s"]\n' "$golden_dir/golden.pub" >>"$LAB_OUT/xenctld.toml"
lab_xenctld_start libxl --config "$LAB_OUT/xenctld.toml"

# --- the golden image: signed import, a clone boots as it is -------------
t0=$(date +%s)
lab_run -t "${PROVISION_IMPORT_LIMIT:-1800}" -o "$LAB_OUT/import.out" vm-image --connect "$LAB_CONNECT" import "$image" \
  "file://$golden_dir/$image.tar.zst" --pool thin --json || lab_fail "vm-image import of the golden image failed"
lab_say "IMPORT $image: $(($(date +%s) - t0)) s ($(du -h "$golden_dir/$image.tar.zst" | cut -f1) tar.zst)"
lab_cli images vm-image list --json
key_id=$(sed -n 's/^untrusted comment: minisign public key \(.*\)$/\1/p' "$golden_dir/golden.pub")
lab_json_has "$LAB_OUT/images.out" "any(.[]; .name == \"$image\" and (.signed_by | ascii_upcase) == (\"$key_id\" | ascii_upcase))" \
  "vm-image list does not show $image as signed by the golden key $key_id"

if [[ ${PROVISION_GOLDEN_BOOT:-1} == 1 ]]; then
  lab_cli clone-gold vm-volume clone "$image" "$gold-root" --pool thin --json
  rm -f "$(lab_guest_log "$gold")"
  lab_cli create-gold vm-create "$gold" --type pv --kernel "$golden_dir/vmlinux" --ramdisk "$golden_dir/initrd.img" \
    --cmdline "$cmdline" --memory "$memory" --vcpus 1 --disk "vol:thin/$gold-root,xvda,w" --json
  wait_ready "$gold" "$(date +%s)"
  expect_line "$gold" hostname debian-golden
  expect_line "$gold" file "/etc/lab/marker.txt golden marker: debian-12 as built"
  has_hostkeys "$gold"
  [[ $(golden "$gold" machine-id) == "$(golden_of golden machine-id)" ]] ||
    lab_fail "a plain clone's machine-id $(golden "$gold" machine-id) is not the image's $(golden_of golden machine-id)"
  lab_cli destroy-gold vm-destroy "$gold"
  lab_cli delete-gold vm-delete "$gold" --delete-volumes
  lab_say "the golden image boots under Xen from a thin clone, as built"
fi

# --- provisioning ---------------------------------------------------------
# The guests' network: a Dom0 bridge with an address in their subnet.
lab_run ip link add "$bridge" type bridge || lab_fail "cannot create the bridge $bridge"
lab_run ip addr add 10.0.0.1/24 dev "$bridge"
lab_run ip link set "$bridge" up
lab_run ssh-keygen -q -t ed25519 -N '' -C lab-user@dom0 -f "$work/id" || lab_fail "ssh-keygen failed"
user_key=$(cat "$work/id.pub")

have() { "$LAB_BIN/$1" "${@:2}" --help 2>&1; }
can_vm_create_image=0
# The help is read whole, not piped to grep -q: under pipefail grep's early
# exit can kill the help's writer with SIGPIPE, and the part would wrongly
# be left WAITING (seen once in a full lab run).
[[ $(have vm-create) == *--image* ]] && can_vm_create_image=1
can_container=0
"$LAB_BIN/vmm" container --help >/dev/null 2>&1 && can_container=1

started=()
if ((can_vm_create_image)); then
  echo "web1 marker, replaced by vm-create --file" >"$work/marker-web1.txt"
  rm -f "$(lab_guest_log "$web1")"
  lab_cli create-web1 vm-create "$web1" --image "$image" --pool thin --hostname "$web1" \
    --ssh-key "$work/id.pub" --file "/etc/lab/marker.txt=@$work/marker-web1.txt" \
    --vif "bridge=$bridge" --ip 10.0.0.5/24 \
    --type pv --kernel "$golden_dir/vmlinux" --ramdisk "$golden_dir/initrd.img" --cmdline "$cmdline" \
    --memory "$memory" --vcpus 1 --json
  t_web1=$(date +%s)
  started+=("$web1")
else
  waiting+=("web1: vm-create --image/--hostname/--ssh-key/--file/--ip (prov: Provisioner, vm-create flags)")
fi

if ((can_container)); then
  lab_cli clone-web2 vm-volume clone "$image" "$web2-root" --pool thin --json
  cat >"$work/web2.patch" <<'EOF'
--- a/etc/lab/patch-me.conf
+++ b/etc/lab/patch-me.conf
@@ -1,4 +1,4 @@
 # patched by the lab
-name = golden
-mode = plain
+name = prov-web2
+mode = patched
 level = 1
EOF
  cat >"$work/$web2.cfg" <<EOF
# $web2: an xl config with container expressions (vm-container(1))
name    = "$web2"
type    = "pv"
kernel  = "$golden_dir/vmlinux"
ramdisk = "$golden_dir/initrd.img"
extra   = "$cmdline"
memory  = ${memory%M}
vcpus   = 1
disk    = [ 'vol:thin/$web2-root,raw,xvda,w' ]
vif     = [ 'bridge=$bridge,mac=00:16:3e:4c:41:02' ]
on_poweroff = "destroy"

[reset-identity archive vol:thin/$web2-root ][end]
[hostname $web2 archive vol:thin/$web2-root ][end]
[ssh-key root archive vol:thin/$web2-root
$user_key
] [end]
[network 00:16:3e:4c:41:02 10.0.0.6/24 archive vol:thin/$web2-root ][end]
[replace /etc/lab/marker.txt
archive vol:thin/$web2-root

web2 marker, replaced by the container file

] [end]
[patch vol:thin/$web2-root file://$work/web2.patch 1 ][end]
EOF
  cp "$work/$web2.cfg" "$LAB_OUT/"
  rm -f "$(lab_guest_log "$web2")"
  lab_cli create-web2 vmm create "$work/$web2.cfg" --json
  t_web2=$(date +%s)
  started+=("$web2")
else
  waiting+=("web2: vmm create CONTAINER-FILE (lang: the container language; cust/ext4: its edits)")
fi

# Both boot at once (TCG: a systemd boot is minutes; two cost little more than one).
for g in "${started[@]}"; do
  if [[ $g == "$web1" ]]; then wait_ready "$g" "$t_web1"; else wait_ready "$g" "$t_web2"; fi
done

if ((can_vm_create_image)); then
  expect_line "$web1" hostname "$web1"
  expect_line "$web1" etc-hostname "$web1"
  golden "$web1" hosts-127.0.1.1 | grep -qw "$web1" || lab_fail "$web1's /etc/hosts has no 127.0.1.1 line naming it"
  expect_line "$web1" authorized-key "/root/.ssh/authorized_keys $user_key"
  expect_line "$web1" authorized-keys-file "/root/.ssh/authorized_keys 600 root:root dir 700 root:root"
  expect_line "$web1" file "/etc/lab/marker.txt web1 marker, replaced by vm-create --file"
  golden "$web1" ipv4 | grep -q ' 10\.0\.0\.5/24$' || lab_fail "$web1 has not got 10.0.0.5/24: $(golden "$web1" ipv4)"
  has_hostkeys "$web1"
  differ "$web1" golden
  lab_run -t 120 ssh -i "$work/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=60 \
    -o BatchMode=yes root@10.0.0.5 cat /etc/hostname /etc/machine-id ||
    lab_fail "cannot log in to $web1 as root over ssh with the injected key"
fi
if ((can_container)); then
  expect_line "$web2" hostname "$web2"
  expect_line "$web2" authorized-key "/root/.ssh/authorized_keys $user_key"
  expect_line "$web2" file "/etc/lab/marker.txt web2 marker, replaced by the container file"
  expect_line "$web2" file "/etc/lab/patch-me.conf name = prov-web2"
  expect_line "$web2" file "/etc/lab/patch-me.conf mode = patched"
  expect_line "$web2" file "/etc/lab/patch-me.conf level = 1"
  golden "$web2" ipv4 | grep -q ' 10\.0\.0\.6/24$' || lab_fail "$web2 has not got 10.0.0.6/24: $(golden "$web2" ipv4)"
  has_hostkeys "$web2"
  differ "$web2" golden
fi
((can_vm_create_image && can_container)) && differ "$web1" "$web2"

# --- a container file with a syntax error changes nothing ------------------
if ((can_container)); then
  cat >"$work/$web3.cfg" <<EOF
name    = "$web3"
type    = "pv"
kernel  = "$golden_dir/vmlinux"
memory  = 128
vcpus   = 1
disk    = [ 'vol:thin/$web3-scratch,raw,xvda,w' ]
[image vol:thin/$web3-scratch 64MB $web3 ][end]
[hostname $web3 archive vol:thin/$web3-scratch ][end]
[bogus-expression vol:thin/$web3-scratch ][end]
EOF
  cp "$work/$web3.cfg" "$LAB_OUT/"
  rc=0
  lab_say "+ vmm create $work/$web3.cfg"
  timeout 300 "$LAB_BIN/vmm" --connect "$LAB_CONNECT" create "$work/$web3.cfg" >"$LAB_OUT/web3.out" 2>"$LAB_OUT/web3.err" || rc=$?
  sed 's/^/    | /' "$LAB_OUT/web3.err"
  ((rc != 0)) || lab_fail "vmm create of a container file with a syntax error succeeded"
  # FILE:LINE:COLUMN, the line of the unknown expression
  grep -qE "$web3\.cfg:9:[0-9]+: .*bogus-expression" "$LAB_OUT/web3.err" ||
    lab_fail "the refusal does not name $web3.cfg, line 9 and a column: $(cat "$LAB_OUT/web3.err")"
  ! lvs "$LAB_VG/$web3-scratch" >/dev/null 2>&1 || lab_fail "a refused container file left the volume $web3-scratch"
  ! xl domid "$web3" >/dev/null 2>&1 || lab_fail "a refused container file left the domain $web3 in Xen"
  lab_cli list vm-list --json
  lab_json_has "$LAB_OUT/list.out" "all(.[]; .name != \"$web3\")" "vm-list shows $web3 from a refused container file"
  lab_cli volumes vm-volume list --pool thin --json
  lab_json_has "$LAB_OUT/volumes.out" "all(.[]; .name != \"$web3-scratch\")" "vm-volume list shows $web3-scratch"
  lab_say "a container file with a syntax error was refused (exit $rc) with its line and column; no volume, no domain"
else
  waiting+=("web3: a container file with a syntax error (lang)")
fi

for g in "${started[@]}"; do
  lab_cli "destroy-$g" vm-destroy "$g"
  lab_cli "delete-$g" vm-delete "$g" --delete-volumes
done
lab_cli delete-image vm-image delete "$image"
lab_xenctld_stop
rm -rf "$work"
if ((${#waiting[@]} > 0)); then
  for w in "${waiting[@]}"; do lab_say "WAITING: $w"; done
  [[ ${PROVISION_REQUIRE_ALL:-0} != 1 ]] || lab_fail "${#waiting[@]} part(s) of provision could not run (WAITING above)"
  lab_say "provision passed the parts that can run; ${#waiting[@]} waiting"
else
  lab_say "provision passed"
fi
# Explicitly: a script that ends without `exit` ends with its EXIT trap's status.
exit 0
