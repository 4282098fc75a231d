#!/bin/bash
# lab-timeout: 600
# xlfidelity: for every config of the xl config corpus (tests/xlcfg: Xen
# 4.17's xlexample.* and a config for every key and value form of xl.cfg(5)),
# the libxl domain configuration xenctld builds (xenctl-xl-json: the code of
# CreateDomain and StartDomain, nothing created) is the one `xl -N create
# FILE` (xl's dry run) prints, field by field. Prints "N of N identical" and
# every difference; fails on any. The refused-*.cfg files must be refused by
# xenctld naming the key (xl may take them: it ignores what they hold).
#
# Fields that differ by design and are not compared: c_info.uuid when the
# file gives none (xl draws one, xenctld assigns one), a nic's mac when the
# file gives none (xl leaves it to libxl at create; xenctld derives a stable
# one from the uuid), and b_info.type.hvm.ms_vm_genid for
# ms_vm_genid = "generate" (new for every create, in xl too).
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

corpus=$(dirname "$LAB_LIB")/xlcfg
tool=$LAB_BIN/xenctl-xl-json
[[ -x $tool ]] || lab_fail "xenctl-xl-json not found at $tool (build it: cmake --build build --target xenctl-xl-json)"
[[ -d $corpus ]] || lab_fail "the xl config corpus is not at $corpus (tests/lab/run shares tests/xlcfg there)"
command -v jq >/dev/null || lab_fail "jq is missing in Dom0"

work=$LAB_OUT/xlfidelity
mkdir -p "$work"

# flatten FILE CONFIG: one line per leaf of .config, "PATH<TAB>JSON VALUE",
# sorted, with the by-design differences masked for CONFIG's file.
flatten() {
  local json=$1 cfg=$2 mask_uuid=false mask_genid=false
  grep -Eq '^[[:space:]]*uuid[[:space:]]*=' "$cfg" || mask_uuid=true
  grep -Eq '^[[:space:]]*ms_vm_genid[[:space:]]*=[[:space:]]*.generate' "$cfg" && mask_genid=true
  jq -r --argjson mu "$mask_uuid" --argjson mg "$mask_genid" '
    .config | tostream | select(length == 2)
    | [(.[0] | map(tostring) | join("/")), (.[1] | tojson)]
    | select(($mu and .[0] == "c_info/uuid") | not)
    | select(($mg and (.[0] | startswith("b_info/type.hvm/ms_vm_genid"))) | not)
    | select((.[0] | test("^nics/[0-9]+/mac$")) | not)
    | join("\t")' "$json" | LC_ALL=C sort
}

# The macs a file gives (xl's non-zero ones), by nic: compared apart, since
# flatten leaves every mac out.
given_macs() {
  jq -r '.config.nics // [] | to_entries[] | select(.value.mac != "00:00:00:00:00:00") | "\(.key)\t\(.value.mac)"' "$1"
}

total=0 same=0 refused=0 failures=()
for cfg in "$corpus"/*; do
  base=$(basename "$cfg")
  if [[ $base == refused-* ]]; then
    want=$(sed -n 's/^# refused: //p' "$cfg" | head -1)
    rc=0
    "$tool" "$cfg" >"$work/$base.ours" 2>"$work/$base.err" || rc=$?
    if ((rc == 2)) && grep -qF -- "$want" "$work/$base.err"; then
      refused=$((refused + 1))
      lab_say "refused by name: $base: $(cat "$work/$base.err")"
    else
      failures+=("$base: xenctld did not refuse it naming '$want' (exit $rc: $(cat "$work/$base.err"))")
    fi
    continue
  fi
  total=$((total + 1))
  rc=0
  timeout 60 xl -N create "$cfg" >"$work/$base.xl" 2>"$work/$base.xl.err" </dev/null || rc=$?
  if ((rc != 0)); then
    failures+=("$base: xl -N create failed (exit $rc): $(tr '\n' ' ' <"$work/$base.xl.err")")
    continue
  fi
  rc=0
  "$tool" "$cfg" >"$work/$base.ours" 2>"$work/$base.err" || rc=$?
  if ((rc != 0)); then
    failures+=("$base: xenctld refused what xl takes: $(cat "$work/$base.err")")
    continue
  fi
  flatten "$work/$base.xl" "$cfg" >"$work/$base.xl.flat"
  flatten "$work/$base.ours" "$cfg" >"$work/$base.ours.flat"
  mac_diff=''
  while IFS=$'\t' read -r i mac; do
    [[ -n $i ]] || continue
    ours=$(jq -r ".config.nics[$i].mac" "$work/$base.ours")
    [[ $ours == "$mac" ]] || mac_diff+=" nics/$i/mac: xl $mac, xenctld $ours;"
  done < <(given_macs "$work/$base.xl")
  if [[ -n $mac_diff ]]; then
    lab_say "DIFFERENT: $base:$mac_diff"
    failures+=("$base: a mac the file gives differs:$mac_diff")
    continue
  fi
  if diff -u "$work/$base.xl.flat" "$work/$base.ours.flat" >"$work/$base.diff"; then
    same=$((same + 1))
  else
    lab_say "DIFFERENT: $base (- xl -N create, + xenctld):"
    grep -E '^[-+][^-+]' "$work/$base.diff" | sed 's/^/    | /'
    failures+=("$base: $(grep -cE '^[-+][^-+]' "$work/$base.diff") differing fields")
  fi
done

lab_say "xlfidelity: $same of $total identical; $refused refused by name"
for f in "${failures[@]}"; do lab_say "  - $f"; done
((${#failures[@]} == 0)) || lab_fail "${#failures[@]} corpus configs differ from xl or were not handled as expected"
((total >= 60)) || lab_fail "the corpus has $total accepted configs; issue 15 asks for at least 60"
lab_say "xlfidelity passed"
