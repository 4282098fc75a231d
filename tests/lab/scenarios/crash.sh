#!/bin/bash
# lab-timeout: 1500
# crash: kill -9 at every step of provisioning and of image import, on an
# lvm-thin pool (issue 14). For each crash point of create-domain and
# import-image (XENCTLD_CRASH_AT=list), xenctld is started with
# XENCTLD_CRASH_AT=POINT, the operation is asked for, xenctld aborts there
# (as kill -9: no cleanup), and the next start recovers it before serving.
# After each recovery: no LV in the thin pool that is neither an image's base
# nor a defined domain's disk (lvs), no catalog row or domain without its
# volumes, no domain in Xen that xenctld does not hold running, no domain it
# holds that Xen lost, no image staging left; the operation says what
# recovery did ("at restart"), and a domain or image recovered forward is
# whole (the domain runs in Xen); and no helper process of the dead daemon
# (mkfs, e2fsck, resize2fs, unpackers) ran on after it. Prints "N of N crash
# points recovered".
#
# Cheap by design: images made here, a 16 MiB ext4 image (provisioning's
# golden image) and a cpio.gz of a few files (imported at every import point,
# through mkfs.ext4 -d), one daemon start per point (the start armed
# for the next point is the restart that recovers the last), creates that
# keep the image's identity (the customize step sets the hostname; no SSH
# host keys are made under TCG), and the only guests that start are those of
# the define points (the test guest kernel in 128 MiB, which 64 cannot hold;
# destroyed again at once). `-e CRASH_POINTS=REGEX` walks only the points
# it matches (for debugging one).
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

gold=crash-gold
trap 'lab_cleanup $(xl list 2>/dev/null | awk "NR > 1 && \$1 ~ /^cw[0-9]+\$/ { print \$1 }") -- $(lvs --noheadings -o lv_name "$LAB_VG" 2>/dev/null | grep -E "^ *(cw[0-9]+|ci[0-9]+|crash-gold)" || true)' EXIT

lab_thin_pool
config=$LAB_OUT/xenctld.toml
lab_thin_pool_config "$config"
work=$(mktemp -d)

# image DIR MARKER: a small root tree, as the integration test's, as
# DIR.cpio.gz and DIR.img (ext4).
image() {
  local d=$1
  mkdir -p "$d/etc/ssh" "$d/root"
  echo "$2" >"$d/marker.txt"
  echo golden >"$d/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n' >"$d/etc/hosts"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$d/etc/passwd"
  echo 0123456789abcdef0123456789abcdef >"$d/etc/machine-id"
  (cd "$d" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) >"$d.cpio.gz" || lab_fail "cannot build $d.cpio.gz"
  mkfs.ext4 -q -F -d "$d" "$d.img" 16M || lab_fail "cannot build $d.img"
}
image "$work/gold" "crash gold $RANDOM"
image "$work/imp" "crash import $RANDOM"
gold_sha=$(sha256sum "$work/gold.img" | cut -d' ' -f1)
imp_sha=$(sha256sum "$work/imp.cpio.gz" | cut -d' ' -f1)

lab_xenctld_start libxl --config "$config"
XENCTLD_CRASH_AT=list "$LAB_BIN/xenctld" >"$LAB_OUT/points.txt" 2>&1 </dev/null || lab_fail "XENCTLD_CRASH_AT=list failed: $(cat "$LAB_OUT/points.txt")"
mapfile -t points < <(grep -E '^(create-domain|import-image)/' "$LAB_OUT/points.txt" | grep -E -- "${CRASH_POINTS:-.}")
((${#points[@]} >= 15)) || [[ -n ${CRASH_POINTS:-} ]] || lab_fail "xenctld lists ${#points[@]} crash points of create-domain and import-image: $(tr '\n' ' ' <"$LAB_OUT/points.txt")"
lab_say "${#points[@]} crash points: ${points[*]}"
# LVs of the thin pool that were there before (other scenarios'): not ours to judge.
baseline=$(lvs --noheadings -o lv_name,pool_lv "$LAB_VG" 2>/dev/null | awk -v p="$LAB_POOL" '$2 == p { print $1 }' | sort)
[[ -z $baseline ]] || lab_say "thin LVs left by earlier scenarios, not judged here: $(tr '\n' ' ' <<<"$baseline")"
lab_cli import-gold vm-image import "$gold" "file://$work/gold.img" --sha256 "$gold_sha" --pool thin --json

# request KIND N: sets req, the request each point's kind is; N numbers the
# point (names, request id).
request() {
  local kind=$1 n=$2
  case $kind in
    create-domain)
      req=(vm-create "cw$n" --image "$gold" --root-size 32M --hostname "cw$n" --keep-identity --type pv
        --kernel "$LAB_GUEST_DIR/vmlinux" --ramdisk "$LAB_GUEST_DIR/initrd.img"
        --cmdline "console=hvc0 rdinit=/init quiet" --memory 128M --vcpus 1) ;;
    import-image) req=(vm-image import "ci$n" "file://$work/imp.cpio.gz" --sha256 "$imp_sha" --pool thin) ;;
  esac
}

# helpers_left: the daemon's helper processes still running (none should).
helpers_left() {
  ps -eo pid=,ppid=,args= | awk '$3 ~ /(^|\/)(mkfs|mke2fs|mkfs\.ext4|e2fsck|resize2fs|tune2fs|debugfs|tar|bsdtar|cpio|gzip|zstd|xz|lvm|lvcreate|lvremove|lvextend|lvresize)$/' || true
}

wrong=()      # what is wrong after the current point's recovery
# consistent [TARGET]: the invariants after a recovery, appended to wrong;
# what the listings say of TARGET (a domain or an image) in $made. One jq
# for all of it: under TCG every process costs most of a second.
made=0
consistent() {
  local target=${1:-} lvs_ xl_names out tag line
  lab_run -o "$work/vols.json" "$LAB_BIN/vm-volume" --connect "$LAB_CONNECT" list --pool thin --json >/dev/null || { wrong+=("vm-volume list failed"); return; }
  lab_run -o "$work/imgs.json" "$LAB_BIN/vm-image" --connect "$LAB_CONNECT" list --json >/dev/null || { wrong+=("vm-image list failed"); return; }
  lab_run -o "$work/doms.json" "$LAB_BIN/vm-list" --connect "$LAB_CONNECT" --json >/dev/null || { wrong+=("vm-list failed"); return; }
  lvs_=$(lvs --noheadings -o lv_name,pool_lv "$LAB_VG" 2>/dev/null | awk -v p="$LAB_POOL" '$2 == p { print $1 }')
  xl_names=$(xl list 2>/dev/null | awk 'NR > 2 { print $1 }')
  out=$(jq -n -r --slurpfile v "$work/vols.json" --slurpfile i "$work/imgs.json" --slurpfile d "$work/doms.json" \
    --arg base "$baseline" --arg lvs "$lvs_" --arg xl "$xl_names" --arg t "$target" '
    def lines: split("\n") | map(select(length > 0));
    ($v[0]) as $vols | ($i[0]) as $imgs | ($d[0]) as $doms | ($base | lines) as $bl
    | ($vols | map(.name)) as $vn
    | ($imgs | map(.base_volume | sub("^thin/"; ""))) as $bases
    | ([$doms[] | .spec.disks[]?.target | select(startswith("vol:thin/")) | sub("^vol:thin/"; "")]) as $disks
    | ($vols | map(.path | sub(".*/"; "")) | map(select(. as $x | $bl | index([$x]) | not)) | sort) as $paths
    | ($lvs | lines | map(select(. as $x | $bl | index([$x]) | not)) | sort) as $lv
    | ($doms | map(select(.state == "DOMAIN_STATE_RUNNING" or .state == "DOMAIN_STATE_BLOCKED") | .spec.name)) as $running
    | ($xl | lines) as $inxen
    | ( ($bases[] | select(. as $x | $vn | index([$x]) | not) | "WRONG\tcatalog row names the missing volume thin/\(.)"),
        ($disks[] | select(. as $x | $vn | index([$x]) | not) | "WRONG\ta domain names the missing volume thin/\(.)"),
        ($vn[] | select(. as $x | ($bl + $bases + $disks) | index([$x]) | not)
               | "WRONG\tleftover volume thin/\(.) (no catalog row, no domain)"),
        (if $lv != $paths then "WRONG\tlvs shows thin LVs \($lv) but xenctld has volumes \($paths)" else empty end),
        ($inxen[] | select(. as $x | $doms | map(.spec.name) | index([$x]) | not)
                  | "WRONG\tdomain \(.) runs in Xen, unknown to xenctld (half-made)"),
        ($running[] | select(. as $x | $inxen | index([$x]) | not)
                    | "WRONG\txenctld holds \(.) running, Xen has no such domain"),
        "MADE\t\(([$doms[] | .spec.name] + [$imgs[] | .name]) | index([$t]) != null)",
        "RUNS\t\($inxen | index([$t]) != null)" )') || { wrong+=("jq could not read the listings"); return; }
  made=0 runs=0
  while IFS=$'\t' read -r tag line; do
    case $tag in
      WRONG) wrong+=("$line") ;;
      MADE) [[ $line == true ]] && made=1 ;;
      RUNS) [[ $line == true ]] && runs=1 ;;
    esac
  done <<<"$out"
  if [[ -d $LAB_XENCTLD_STATE/images.tmp ]] && [[ -n $(ls -A "$LAB_XENCTLD_STATE/images.tmp") ]]; then
    wrong+=("image staging left: $(ls -A "$LAB_XENCTLD_STATE/images.tmp" | tr '\n' ' ')")
  fi
  return 0
}

# check POINT N: the outcome of point N's operation, after its recovery; then
# removes what it made so the next point starts from the golden image alone.
check() {
  local point=$1 n=$2 kind=${1%%/*} target state msg op
  wrong=()
  case $kind in create-domain) target=cw$n ;; import-image) target=ci$n ;; esac
  consistent "$target"
  lab_run -o "$work/ops.json" "$LAB_BIN/vmm" --connect "$LAB_CONNECT" ops --all --json >/dev/null || wrong+=("vmm ops failed")
  op=$(jq -r --arg r "crash-$n" '[.[] | select(.request_id == $r)] | if length == 1 then .[0] | "\(.state)\t\(.message)" else "\(length) operations" end' "$work/ops.json")
  if [[ $op != *$'\t'* ]]; then
    wrong+=("expected one operation with request_id crash-$n, found $op")
  else
    state=${op%%$'\t'*} msg=${op#*$'\t'}
    lab_say "RECOVERED? $point: ${state#OPERATION_STATE_}: $msg"
    [[ $state == OPERATION_STATE_SUCCEEDED || $state == OPERATION_STATE_FAILED ]] || wrong+=("the operation was left $state")
    [[ $msg == *"at restart"* ]] || wrong+=("the operation does not say what recovery did: $msg")
    if [[ $state == OPERATION_STATE_SUCCEEDED ]]; then
      ((made)) || wrong+=("$target is missing after a SUCCEEDED $kind")
      [[ $kind != create-domain ]] || ((runs)) || wrong+=("$target, created forward, does not run in Xen")
    else
      ((!made)) || wrong+=("$target exists after a FAILED $kind")
    fi
  fi
  # Back to the golden image alone.
  if ((made)) && [[ $kind == create-domain ]]; then
    ((!runs)) || lab_cli "destroy-$n" vm-destroy "$target"
    lab_cli "delete-$n" vm-delete "$target" --delete-volumes
  fi
  if ((made)) && [[ $kind == import-image ]]; then
    lab_cli "delete-image-$n" vm-image delete "$target"
  fi
  if ((${#wrong[@]})); then
    failed+=("$point")
    lab_say "NOT RECOVERED: $point:"
    printf '    - %s\n' "${wrong[@]}"
  fi
  return 0
}

failed=()
prev='' prev_n=''
t_all=$(date +%s)
for n in "${!points[@]}"; do
  point=${points[$n]}
  t0=$(date +%s)
  if [[ -n $LAB_XENCTLD_PID ]]; then lab_xenctld_stop; fi
  lab_xenctld_start libxl --keep-state --crash-at "$point" --config "$config"
  [[ -z $prev ]] || check "$prev" "$prev_n"
  request "${point%%/*}" "$n"
  timeout 300 "$LAB_BIN/${req[0]}" --connect "$LAB_CONNECT" "${req[@]:1}" --request-id "crash-$n" \
    >"$LAB_OUT/request-$n.out" 2>&1 </dev/null || true
  status=0
  timeout 60 tail --pid="$LAB_XENCTLD_PID" -f /dev/null || kill -KILL "$LAB_XENCTLD_PID" 2>/dev/null || true
  wait "$LAB_XENCTLD_PID" 2>/dev/null || status=$?  # (bash's "Aborted" job line left out)
  LAB_XENCTLD_PID=
  if ((status != 134)) || ! grep -qF "XENCTLD_CRASH_AT=$point: aborting here" "$LAB_OUT/xenctld.log"; then
    failed+=("$point")
    lab_say "NOT RECOVERED: $point: xenctld did not abort there (exit $status): $(tail -n 3 "$LAB_OUT/xenctld.log" | tr '\n' ';')"
    prev='' prev_n=''
    continue
  fi
  sleep 1
  left=$(helpers_left)
  if [[ -n $left ]]; then
    failed+=("$point")
    lab_say "NOT RECOVERED: $point: helper processes ran on after the crash: $left"
  fi
  lab_say "CRASHED at $point ($(($(date +%s) - t0)) s for this point so far)"
  prev=$point prev_n=$n
done
lab_xenctld_start libxl --keep-state --config "$config"
[[ -z $prev ]] || check "$prev" "$prev_n"
wrong=()
consistent
end_ok=1
((${#wrong[@]} == 0)) || { end_ok=0; lab_say "the end state is not clean:"; printf '    - %s\n' "${wrong[@]}"; }
lab_cli delete-gold vm-image delete "$gold"
lab_xenctld_stop

mapfile -t failed < <(printf '%s\n' "${failed[@]}" | grep . | sort -u)
recovered=$((${#points[@]} - ${#failed[@]}))
lab_say "walk of ${#points[@]} crash points: $(($(date +%s) - t_all)) s"
lab_say "$recovered of ${#points[@]} crash points recovered"
((${#failed[@]} == 0)) || lab_fail "not recovered: ${failed[*]}"
((end_ok)) || lab_fail "after the last recovery the pool, the catalog or Xen is not clean (above)"
lab_say "crash passed"
