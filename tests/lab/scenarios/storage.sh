#!/bin/bash
# lab-timeout: 1500
# storage: xenctld's LVM pools on real LVM. lvm-thin (its own thin pool
# vg0/xcthin): an ext4 base with a marker, a golden snapshot of it (read-only,
# inactive, activation skip), 20 roots cloned from it, a clone of a clone,
# a write into a clone that the base never sees, snapshot + write + rollback,
# resize (LV and ext4), delete, a guard-rail refusal (over-commit) and a
# delete refused while clones exist. lvm-snapshot (plain LVs in vg0): the same
# basics with classic COW snapshots, a clone of a clone refused, and rollback
# refused onto a snapshot past its watermark. It also keeps lvm2's JSON
# reports (the unit tests' fixtures) and measures the lvm2 tools' latency per
# call, as a tool and through liblvm2cmd (xenctld runs them in lvm shells;
# bench/clone, scenario clone-bench, measures that). No guest boots here:
# the images scenario boots one from a clone.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

THIN=xcthin
MNT=/mnt/storage-lab
FIELDS=lv_name,vg_name,lv_attr,lv_size,segtype,origin,origin_size,pool_lv,data_percent,metadata_percent,lv_tags,lv_time
N_CLONES=${STORAGE_CLONES:-20}

cleanup() {
  set +e
  mountpoint -q "$MNT" && umount "$MNT"
  lab_xenctld_kill
  # Everything this scenario made: the thin pool (and its thin LVs), and the
  # classic pool's tagged LVs.
  lvs --noheadings -o lv_name,lv_tags "$LAB_VG" 2>/dev/null | awk '$2 ~ /xenctl.pool=snap/ { print $1 }' |
    while read -r lv; do lvremove -y "$LAB_VG/$lv" >/dev/null 2>&1; done
  lvs "$LAB_VG/$THIN" >/dev/null 2>&1 && lvremove -y "$LAB_VG/$THIN" >/dev/null 2>&1
  lvs -a "$LAB_VG" >"$LAB_OUT/lvs-after.txt" 2>&1
}
trap cleanup EXIT

now() { date +%s.%N; }
# stats NAME FILE: prints n, mean, p50, p95, min, max of the seconds in FILE (one per line).
stats() {
  sort -n "$2" | awk -v name="$1" '{ v[NR] = $1; s += $1 } END {
    if (NR == 0) { print name ": no samples"; exit }
    p50 = v[int((NR + 1) * 0.50)]; i95 = int(NR * 0.95 + 0.999); if (i95 > NR) i95 = NR
    printf "%s: n=%d mean=%.3fs p50=%.3fs p95=%.3fs min=%.3fs max=%.3fs\n", name, NR, s / NR, p50, v[i95], v[1], v[NR] }'
}
vol() { # vol NAME ARGS...: vm-volume ARGS --json, kept as NAME.out; fails the scenario on error
  local name=$1
  shift
  lab_cli "$name" vmm volume "$@" --json
}
# vol_refused NAME PATTERN ARGS...: vm-volume ARGS must fail, saying PATTERN (grep -E).
vol_refused() {
  local name=$1 pattern=$2 rc=0
  shift 2
  lab_say "+ vmm volume $* (must be refused: /$pattern/)"
  timeout -k 5 300 "$LAB_BIN/vmm" --connect "$LAB_CONNECT" volume "$@" >"$LAB_OUT/$name.out" 2>&1 </dev/null || rc=$?
  sed 's/^/    | /' "$LAB_OUT/$name.out"
  ((rc != 0)) || lab_fail "vm-volume $* succeeded; it should have been refused (/$pattern/)"
  ((rc != 124)) || lab_fail "vm-volume $* timed out"
  grep -qE "$pattern" "$LAB_OUT/$name.out" || lab_fail "vm-volume $* failed (exit $rc) without saying /$pattern/"
  lab_say "  refused, exit $rc"
}
read_marker() { # read_marker DEV: prints marker.txt of the ext4 on DEV (mounted read-only)
  mount -o ro "$1" "$MNT" || lab_fail "cannot mount $1"
  cat "$MNT/marker.txt" 2>/dev/null || echo "<no marker>"
  umount "$MNT"
}
write_marker() { # write_marker DEV TEXT
  mount "$1" "$MNT" || lab_fail "cannot mount $1"
  echo "$2" >"$MNT/marker.txt"
  umount "$MNT"
}
attr_of() { lvs --noheadings -o lv_attr "$LAB_VG/$1" 2>/dev/null | tr -d ' '; }

mkdir -p "$MNT"
lab_thin_pool
lab_run lvcreate -y --type thin-pool -L 1G -n "$THIN" "$LAB_VG" || lab_fail "cannot create thin pool $LAB_VG/$THIN"
lab_run lvs --version

# --- lvm2 latency per call, as a tool (what an administrator runs) ---------
lab_run lvcreate -y -V 64M -T "$LAB_VG/$THIN" -n lat-base || lab_fail "cannot create lat-base"
: >"$LAB_OUT/lat-lvs.txt"
: >"$LAB_OUT/lat-lvcreate.txt"
: >"$LAB_OUT/lat-lvremove.txt"
for i in $(seq 1 10); do
  t0=$(now)
  lvs --reportformat json --units b --nosuffix --config 'report {time_format="%s"}' -o "$FIELDS" "$LAB_VG" >/dev/null ||
    lab_fail "lvs --reportformat json failed"
  awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }' >>"$LAB_OUT/lat-lvs.txt"
done
for i in $(seq 1 5); do
  t0=$(now)
  lvcreate -y -s -kn -n "lat-snap$i" "$LAB_VG/lat-base" >/dev/null || lab_fail "lvcreate -s lat-snap$i failed"
  awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }' >>"$LAB_OUT/lat-lvcreate.txt"
done
for i in $(seq 1 5); do
  t0=$(now)
  lvremove -y "$LAB_VG/lat-snap$i" >/dev/null || lab_fail "lvremove lat-snap$i failed"
  awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }' >>"$LAB_OUT/lat-lvremove.txt"
done
# The same through liblvm2cmd (lvm2_run in one warm process), when built.
if [[ -x $LAB_BIN/lvm2cmd_latency ]]; then
  if lab_run -o "$LAB_OUT/lvm2cmd.txt" "$LAB_BIN/lvm2cmd_latency" "$LAB_VG" lat-base 5; then
    while read -r line; do lab_say "LATENCY $line"; done <"$LAB_OUT/lvm2cmd.txt"
  else
    lab_say "lvm2cmd_latency failed (see above); no liblvm2cmd figures"
  fi
else
  lab_say "no lvm2cmd_latency binary (liblvm2-dev missing on the host): no liblvm2cmd figures"
fi
lab_run lvremove -y "$LAB_VG/lat-base"
lab_say "LATENCY $(stats 'lvs --reportformat json' "$LAB_OUT/lat-lvs.txt")"
lab_say "LATENCY $(stats 'lvcreate -s (thin)' "$LAB_OUT/lat-lvcreate.txt")"
lab_say "LATENCY $(stats 'lvremove (thin snapshot)' "$LAB_OUT/lat-lvremove.txt")"

# --- xenctld with both pools ---------------------------------------------
cat >"$LAB_OUT/xenctld.toml" <<EOF
[[pool]]
name = "thin"
driver = "lvm-thin"
vg = "$LAB_VG"
thinpool = "$THIN"
max_overcommit = 20
data_watermark = 90
metadata_watermark = 90

[[pool]]
name = "snap"
driver = "lvm-snapshot"
vg = "$LAB_VG"
snapshot_size = "16M"
snapshot_watermark = 60
EOF
# (a crash of xenctld leaves a core and its backtraces in the results: lab_xenctld_start, lab_xenctld_kill)
lab_xenctld_start test --config "$LAB_OUT/xenctld.toml"

vol pools pools
lab_json_has "$LAB_OUT/pools.out" 'any(.[]; .name == "thin" and .driver == "lvm-thin")' "vm-volume pools does not show the lvm-thin pool"
lab_json_has "$LAB_OUT/pools.out" 'any(.[]; .name == "snap" and .driver == "lvm-snapshot")' "vm-volume pools does not show the lvm-snapshot pool"

# --- lvm-thin ------------------------------------------------------------
marker="storage-marker-$(date +%s)-$RANDOM"
vol base create base 64M --ext4 --label root --pool thin
lab_json_has "$LAB_OUT/base.out" '(.size_bytes | tonumber) == 67108864 and .read_only == false' "base is not a writable 64 MiB volume"
write_marker "/dev/$LAB_VG/base" "$marker"

vol golden snapshot base golden --pool thin
lab_json_has "$LAB_OUT/golden.out" '.name == "base@golden" and .read_only == true' "base@golden is not a read-only snapshot"
a=$(attr_of base+golden)
[[ ${a:1:1} == r && ${a:4:1} != a && ${a:9:1} == k ]] ||
  lab_fail "base@golden (LV base+golden) should be read-only, inactive, activation-skip; lv_attr is '$a'"
lab_say "golden snapshot: lv_attr $a (read-only, inactive, skip activation)"

# The lvm2 JSON reports, kept as the unit tests' fixtures.
lvs --reportformat json --units b --nosuffix --config 'report {time_format="%s"}' -o "$FIELDS" "$LAB_VG" \
  >"$LAB_OUT/fixture-lvs-thin.json" 2>"$LAB_OUT/fixture-lvs-thin.err"
vgs --reportformat json --units b --nosuffix --config 'report {time_format="%s"}' \
  -o vg_name,vg_size,vg_free,vg_extent_size "$LAB_VG" >"$LAB_OUT/fixture-vgs.json" 2>&1

: >"$LAB_OUT/lat-xenctld-clone.txt"
for i in $(seq 1 "$N_CLONES"); do
  t0=$(now)
  vol "clone$i" clone base@golden "root$i" --pool thin
  awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }' >>"$LAB_OUT/lat-xenctld-clone.txt"
done
lab_say "LATENCY $(stats 'vm-volume clone (lvm-thin, CLI to result)' "$LAB_OUT/lat-xenctld-clone.txt")"
vol list-thin list --pool thin
n=$(jq '[.[] | select(.name | test("^root[0-9]+$"))] | length' "$LAB_OUT/list-thin.out")
((n == N_CLONES)) || lab_fail "vm-volume list shows $n roots, want $N_CLONES"
lab_json_has "$LAB_OUT/list-thin.out" 'all(.[] | select(.name | test("^root[0-9]+$")); .origin == "base@golden" and .read_only == false)' \
  "the roots do not all name base@golden as origin, writable"
a=$(attr_of base+golden)
[[ ${a:4:1} != a ]] || lab_fail "base@golden became active while cloned from (lv_attr $a)"
lab_say "$N_CLONES roots cloned; base@golden still inactive ($a)"

# A write into a clone shows neither in the base nor in another clone.
[[ $(read_marker "/dev/$LAB_VG/root1") == "$marker" ]] || lab_fail "root1 does not hold the base's marker"
write_marker "/dev/$LAB_VG/root1" "changed-in-root1"
[[ $(read_marker "/dev/$LAB_VG/root1") == changed-in-root1 ]] || lab_fail "the write into root1 did not stick"
[[ $(read_marker "/dev/$LAB_VG/base") == "$marker" ]] || lab_fail "the base changed after a write into root1"
[[ $(read_marker "/dev/$LAB_VG/root2") == "$marker" ]] || lab_fail "root2 changed after a write into root1"
lab_say "a write into root1 left base and root2 unchanged"

# Clones of clones.
vol clone-of-clone clone root1 root1-child --pool thin
[[ $(read_marker "/dev/$LAB_VG/root1-child") == changed-in-root1 ]] || lab_fail "root1-child does not hold root1's content"

# Snapshot, write, rollback: the volume holds the snapshot's content again.
vol snap2 snapshot root2 before --pool thin
write_marker "/dev/$LAB_VG/root2" "after-snapshot"
vol rollback2 rollback root2 before --pool thin
[[ $(read_marker "/dev/$LAB_VG/root2") == "$marker" ]] || lab_fail "root2 does not hold the snapshot's content after rollback"
lab_json_has "$LAB_OUT/rollback2.out" '.origin == "base@golden" and (.snapshots | index("before"))' \
  "after rollback root2 lost its origin or its snapshot"
lab_say "rollback of root2 to root2@before restored its content and kept the snapshot"

# Resize: the LV and its ext4 grow.
vol resize3 resize root3 128M --pool thin
lab_json_has "$LAB_OUT/resize3.out" '(.size_bytes | tonumber) == 134217728' "root3 is not 128 MiB after resize"
blocks=$(dumpe2fs -h "/dev/$LAB_VG/root3" 2>/dev/null | awk -F: '/^Block count/ { gsub(/ /, "", $2); print $2 }')
bsize=$(dumpe2fs -h "/dev/$LAB_VG/root3" 2>/dev/null | awk -F: '/^Block size/ { gsub(/ /, "", $2); print $2 }')
((blocks * bsize > 120 * 1024 * 1024)) || lab_fail "root3's ext4 is $((blocks * bsize)) bytes after resize, want ~128 MiB"
[[ $(read_marker "/dev/$LAB_VG/root3") == "$marker" ]] || lab_fail "root3 lost its content in the resize"
lab_say "root3 grew to 128 MiB with its ext4 ($blocks blocks of $bsize)"

# Guard rail: a clone that would over-commit the 1 GiB pool past 20x is refused.
vol_refused overcommit 'over-committed' clone base@golden huge --size 64G --pool thin
grep -q "max_overcommit" "$LAB_OUT/overcommit.out" || lab_fail "the over-commit refusal does not name max_overcommit: $(cat "$LAB_OUT/overcommit.out")"
! lvs "$LAB_VG/huge" >/dev/null 2>&1 || lab_fail "the refused clone 'huge' exists anyway"
lab_say "over-commit refused: $(head -c 400 "$LAB_OUT/overcommit.out")"

# Delete: refused while clones exist, done for a leaf.
vol_refused delete-base 'cloned from it|snapshots' delete base --pool thin
vol_refused delete-golden 'cloned from it' delete base@golden --pool thin
lab_cli delete20 vmm volume delete "root$N_CLONES" --pool thin
! lvs "$LAB_VG/root$N_CLONES" >/dev/null 2>&1 || lab_fail "root$N_CLONES still exists after delete"
vol pools-after pools
lab_json_has "$LAB_OUT/pools-after.out" 'any(.[]; .name == "thin" and (.size_bytes | tonumber) == 1073741824 and (.used_bytes | tonumber) > 0 and .metadata_percent > 0)' \
  "the thin pool's info does not show its 1 GiB, its data and metadata use"

# --- lvm-snapshot ----------------------------------------------------------
smarker="classic-marker-$RANDOM"
vol sbase create sbase 32M --ext4 --label sroot --pool snap
write_marker "/dev/$LAB_VG/sbase" "$smarker"
for i in 1 2 3; do vol "sclone$i" clone sbase "sroot$i" --pool snap; done
lab_json_has "$LAB_OUT/sclone1.out" '.origin == "sbase" and (.size_bytes | tonumber) == 33554432 and .read_only == false' \
  "sroot1 is not a writable 32 MiB clone of sbase"
write_marker "/dev/$LAB_VG/sroot1" "changed-in-sroot1"
[[ $(read_marker "/dev/$LAB_VG/sbase") == "$smarker" ]] || lab_fail "sbase changed after a write into sroot1"
[[ $(read_marker "/dev/$LAB_VG/sroot2") == "$smarker" ]] || lab_fail "sroot2 changed after a write into sroot1"
vol_refused sclone-of-clone 'classic' clone sroot1 sroot1-child --pool snap

vol svol create svol 32M --ext4 --pool snap
vol sresize resize svol 48M --pool snap
lab_json_has "$LAB_OUT/sresize.out" '(.size_bytes | tonumber) == 50331648' "svol is not 48 MiB after resize"
write_marker "/dev/$LAB_VG/svol" "svol-v1"
vol ssnap snapshot svol v1 --pool snap
write_marker "/dev/$LAB_VG/svol" "svol-v2"
vol srollback rollback svol v1 --pool snap
[[ $(read_marker "/dev/$LAB_VG/svol") == svol-v1 ]] || lab_fail "svol does not hold svol@v1's content after rollback"
lab_json_has "$LAB_OUT/srollback.out" '(.snapshots | index("v1"))' "svol@v1 is gone after rollback"
lab_say "classic rollback restored svol and kept svol@v1"

# Fill svol@v1's 16 MiB COW store past its 60% watermark: rollback onto it is refused.
lab_run dd if=/dev/urandom of="/dev/$LAB_VG/svol" bs=1M count=12 seek=8 oflag=direct conv=fsync
lvs --reportformat json --units b --nosuffix --config 'report {time_format="%s"}' -o "$FIELDS" "$LAB_VG" \
  >"$LAB_OUT/fixture-lvs-classic.json" 2>&1
vol_refused sfull 'snapshot_watermark' rollback svol v1 --pool snap
lab_cli slist vmm volume list --pool snap --json
grep -qE "warn.*svol@v1.* has used .* of its copy-on-write store" "$LAB_OUT/xenctld.log" ||
  lab_fail "xenctld did not warn about svol@v1 nearing full"
lab_say "near-full snapshot: $(grep -m1 -E 'svol@v1.* has used' "$LAB_OUT/xenctld.log")"

for v in svol@v1 svol sroot1 sroot2 sroot3 sbase; do lab_cli "sdel-${v/@/-}" vmm volume delete "$v" --pool snap; done
lvs --reportformat json --units b --nosuffix --config 'report {time_format="%s"}' -o "$FIELDS" "$LAB_VG" \
  >"$LAB_OUT/fixture-lvs-end.json" 2>&1

lab_xenctld_stop
lab_say "storage passed"
