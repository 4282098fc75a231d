#!/bin/bash
# lab-timeout: 900
# xlfidelity: for every config of the xl config corpus (tests/xlcfg: Xen
# 4.17's xlexample.* and a config for every key and value form of xl.cfg(5)),
# the libxl domain configuration xenctld builds (xenctl-xl-json: the code of
# CreateDomain and StartDomain, nothing created) is the one `xl -N create
# FILE` (xl's dry run) prints, field by field. Prints "N of N identical" and
# every difference; fails on any. The refused-*.cfg files must be refused by
# xenctld naming the key; what xl does with each is printed beside it (xl
# takes some of them: it ignores or drops what they hold).
#
# Fields that differ by design and are not compared: c_info.uuid when the
# file gives none (xl draws one, xenctld assigns one), a nic's mac when the
# file gives none (xl prints 00:00:00:00:00:00 and leaves it to libxl at
# create; xenctld derives a stable one from the uuid), and
# b_info.type.hvm.ms_vm_genid for ms_vm_genid = "generate" (new for every
# create, in xl too). One field of xl is excused, and printed when it is:
# b_info.type.hvm.rdm.policy for an rdm = "strategy=host" without policy=:
# xl copies it from an uninitialised stack variable (xl_parse.c declares
# `libxl_rdm_reserve rdm;` and xlu_rdm_parse sets only what the string
# gives), so its dry run prints whatever was there (null: no valid policy);
# xenctld leaves libxl's default (invalid, which libxl makes relaxed).
#
# Cost: under TCG every process start is most of a second, so xl runs once
# per file (it takes one), and xenctl-xl-json, jq and awk once for the corpus.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

corpus=$(dirname "$LAB_LIB")/xlcfg
tool=$LAB_BIN/xenctl-xl-json
[[ -x $tool ]] || lab_fail "xenctl-xl-json not found at $tool (build it: cmake --build build --target xenctl-xl-json)"
[[ -d $corpus ]] || lab_fail "the xl config corpus is not at $corpus (tests/lab/run shares tests/xlcfg there)"
command -v jq >/dev/null || lab_fail "jq is missing in Dom0"

work=$LAB_OUT
failures=()
accepted=() refused_cfgs=()
for cfg in "$corpus"/*; do
  if [[ ${cfg##*/} == refused-* ]]; then refused_cfgs+=("$cfg"); else accepted+=("$cfg"); fi
done

# xl's dry runs, every file (the refused ones too, to say what xl does).
t0=$(date +%s)
declare -A xl_ok=()
for cfg in "${accepted[@]}" "${refused_cfgs[@]}"; do
  base=${cfg##*/}
  rc=0
  timeout 60 xl -N create "$cfg" >"$work/$base.xl" 2>"$work/$base.xl.err" </dev/null || rc=$?
  if ((rc == 0)); then
    xl_ok[$base]=1
  elif [[ $base != refused-* ]]; then
    failures+=("$base: xl -N create failed (exit $rc): $(tr '\n' ' ' <"$work/$base.xl.err")")
  fi
done
lab_say "xl -N create of ${#accepted[@]} + ${#refused_cfgs[@]} files: $(($(date +%s) - t0)) s"

# xenctld's, one run for the corpus: BASE.json, or BASE.err when refused.
t0=$(date +%s)
rc=0
"$tool" --out-dir "$work" "${accepted[@]}" "${refused_cfgs[@]}" >"$work/xl-json.out" 2>&1 || rc=$?
((rc == 0 || rc == 2)) || lab_fail "xenctl-xl-json failed (exit $rc): $(cat "$work/xl-json.out")"
lab_say "xenctl-xl-json of the corpus: $(($(date +%s) - t0)) s"

refused=0
for cfg in "${refused_cfgs[@]}"; do
  base=${cfg##*/}
  want=''
  while IFS= read -r line; do
    if [[ $line == '# refused: '* ]]; then want=${line#'# refused: '}; break; fi
  done <"$cfg"
  if [[ -n ${xl_ok[$base]:-} ]]; then xl_says="xl takes it"; else xl_says="xl refuses it too: $(grep -v '^Parsing config' "$work/$base.xl.err" | tr '\n' ' ' || true)"; fi
  err=''
  [[ ! -f $work/$base.err ]] || err=$(<"$work/$base.err")
  if [[ -n $want && -n $err && ! -f $work/$base.json && $err == *"$want"* ]]; then
    refused=$((refused + 1))
    lab_say "refused by name: $base: $err [$xl_says]"
  else
    failures+=("$base: xenctld did not refuse it naming '$want': ${err:-it built $work/$base.json}")
  fi
done

# Both sides flattened by one jq: "SIDE<TAB>BASE<TAB>PATH<TAB>JSON VALUE" per
# leaf, for the files both took.
compared=()
for cfg in "${accepted[@]}"; do
  base=${cfg##*/}
  [[ -n ${xl_ok[$base]:-} ]] || continue
  if [[ ! -f $work/$base.json ]]; then
    failures+=("$base: xenctld refused what xl takes: $(<"$work/$base.err")")
    continue
  fi
  compared+=("$work/$base.xl" "$work/$base.json")
done
total=$((${#compared[@]} / 2))
t0=$(date +%s)
((total == 0)) || jq -r '
  input_filename as $f
  | ($f | sub(".*/"; "")) as $name
  | (if ($name | endswith(".json")) then ["ours", ($name | sub("\\.json$"; ""))] else ["xl", ($name | sub("\\.xl$"; ""))] end) as $side
  | (if has("config") and has("domid") then .config else . end)
  | tostream | select(length == 2)
  | ($side + [(.[0] | map(tostring) | join("/")), (.[1] | tojson)]) | join("\t")' "${compared[@]}" >"$work/leaves.tsv" ||
  lab_fail "jq could not read the JSON of xl or xenctld (files in $work)"

# The files that give a uuid or a fixed ms_vm_genid: those are compared.
# One awk for the corpus: "uuid|genid<TAB>BASE" per such file.
awk '/^[[:space:]]*uuid[[:space:]]*=/ { f = FILENAME; sub(/.*\//, "", f); print "uuid\t" f }
     /^[[:space:]]*ms_vm_genid[[:space:]]*=[[:space:]]*.generate/ { f = FILENAME; sub(/.*\//, "", f); print "genid\t" f }' \
  "${accepted[@]}" | sort -u >"$work/masks.tsv"

# One awk compares every file's two sides and prints the differences, a
# line per field: "BASE<TAB>-|+<TAB>PATH<TAB>VALUE" (- xl, + xenctld).
awk -F'\t' -v excused="$work/excused.tsv" '
  FILENAME == ARGV[1] { given[$1, $2] = 1; next }
  {
    side = $1; base = $2; path = $3; value = $4
    if (path == "c_info/uuid" && !given["uuid", base]) next
    if (path ~ /^b_info\/type\.hvm\/ms_vm_genid/ && given["genid", base]) next
    seen[base] = 1
    if (path ~ /^nics\/[0-9]+\/mac$/) { mac[side, base, path] = value; macs[base, path] = 1; next }
    if (path == "b_info/type.hvm/rdm/policy") { rdmpol[side, base] = value; rdmpols[base] = 1; next }
    leaf[side, base, path] = value; paths[base, path] = 1
  }
  END {
    for (k in macs) {
      split(k, p, SUBSEP); b = p[1]; q = p[2]
      x = ((("xl", b, q) in mac) ? mac["xl", b, q] : "")
      # xl leaves a mac the file does not give to libxl at create.
      if (x == "" || x == "\"00:00:00:00:00:00\"") continue
      o = ((("ours", b, q) in mac) ? mac["ours", b, q] : "(none)")
      if (o != x) { print b "\t-\t" q "\t" x; print b "\t+\t" q "\t" o }
    }
    for (b in rdmpols) {
      x = (("xl", b) in rdmpol) ? rdmpol["xl", b] : ""; o = (("ours", b) in rdmpol) ? rdmpol["ours", b] : ""
      if (x == o) continue
      # xl: stack garbage, printed null; xenctld: libxl default, not printed.
      if (x == "null" && o == "") { print b "\tb_info/type.hvm/rdm/policy: xl null (uninitialised in xl), xenctld libxl default" >excused; continue }
      if (x != "") print b "\t-\tb_info/type.hvm/rdm/policy\t" x
      if (o != "") print b "\t+\tb_info/type.hvm/rdm/policy\t" o
    }
    for (k in paths) {
      split(k, p, SUBSEP); b = p[1]; q = p[2]
      hx = (("xl", b, q) in leaf); ho = (("ours", b, q) in leaf)
      if (hx && ho && leaf["xl", b, q] == leaf["ours", b, q]) continue
      if (hx) print b "\t-\t" q "\t" leaf["xl", b, q]
      if (ho) print b "\t+\t" q "\t" leaf["ours", b, q]
    }
    for (b in seen) print b "\t=\t\t" >"/dev/stderr"
  }' "$work/masks.tsv" "$work/leaves.tsv" 2>"$work/seen.tsv" | LC_ALL=C sort -t$'\t' -k1,1 -k3,3 -k2,2r >"$work/differences.tsv"
lab_say "comparison of $total pairs: $(($(date +%s) - t0)) s"
seen=$(wc -l <"$work/seen.tsv")
((seen == total)) || failures+=("only $seen of the $total compared pairs had any field (see $work/leaves.tsv)")

different=$(cut -f1 "$work/differences.tsv" | sort -u)
for base in $different; do
  lab_say "DIFFERENT: $base (- xl -N create, + xenctld):"
  awk -F'\t' -v b="$base" '$1 == b && ++n <= 40 { printf "    | %s%s\t%s\n", $2, $3, $4 }
    END { if (n > 40) printf "    | ... %d lines in all (differences.tsv)\n", n }' "$work/differences.tsv"
  failures+=("$base: $(awk -F'\t' -v b="$base" '$1 == b' "$work/differences.tsv" | cut -f3 | sort -u | wc -l) differing fields")
done
ndiff=0
[[ -z $different ]] || ndiff=$(wc -l <<<"$different")
same=$((total - ndiff))

touch "$work/excused.tsv"
while IFS=$'\t' read -r base what; do lab_say "excused (see the header): $base: $what"; done <"$work/excused.tsv"
lab_say "xlfidelity: $same of $total identical; $refused of ${#refused_cfgs[@]} refused by name"
for f in "${failures[@]}"; do lab_say "  - $f"; done
((${#failures[@]} == 0)) || lab_fail "${#failures[@]} corpus configs differ from xl or were not handled as expected"
((total >= 60)) || lab_fail "the corpus has $total accepted configs; issue 15 asks for at least 60"
lab_say "xlfidelity passed"
