#!/bin/bash
# lab-timeout: 240
# daemon: xenctld, built on the host, starts in Dom0, answers the CLIs over
# its Unix socket (list, host info, create, list again) and stops cleanly on
# SIGTERM: exit status 0 and its socket removed.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

# The hypervisor backend: "test" (in-memory) until xenctld drives libxl; then
# run with: tests/lab/run -e XENCTLD_HYPERVISOR=libxl daemon
hypervisor=${XENCTLD_HYPERVISOR:-test}
run_dir=/run/xenctld
sock=$run_dir/xenctld.sock
connect=unix:$sock
state_dir=/var/lib/xenctld
pid=

for b in xenctld vmm vm-list vm-create; do
  [[ -x $LAB_BIN/$b ]] ||
    lab_fail "$b binary not found at ${LAB_HOST_BUILD_DIR:-BUILD_DIR}/$(case $b in xenctld) echo daemon ;; *) echo client ;; esac)/$b; build it first (cmake --preset default && cmake --build build), or pass tests/lab/run --build-dir"
done

cleanup() {
  set +e
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    lab_say "xenctld (pid $pid) still running: killing it"
    kill -KILL "$pid"
  fi
  cp -r "$state_dir" "$LAB_OUT/state" 2>/dev/null
}
trap cleanup EXIT

# cli NAME CMD ARGS...: runs "CMD --connect SOCKET ARGS..." against the
# daemon, keeping its output in $LAB_OUT/NAME.out; fails the scenario on error.
cli() {
  local name=$1 cmd=$2
  shift 2
  lab_run -t 60 -o "$LAB_OUT/$name.out" "$cmd" --connect "$connect" "$@" ||
    lab_fail "'$cmd --connect $connect $*' failed (output above)"
}

# json_has FILE JQ_FILTER WHAT: fails unless the JSON in FILE satisfies the filter.
json_has() {
  jq -e "$2" "$1" >/dev/null 2>&1 || lab_fail "$3; got: $(head -c 500 "$1")"
}

mkdir -p "$run_dir" "$state_dir"
rm -f "$sock"
lab_say "+ xenctld --listen $connect --state-dir $state_dir --hypervisor $hypervisor"
"$LAB_BIN/xenctld" --listen "$connect" --state-dir "$state_dir" --hypervisor "$hypervisor" \
  >"$LAB_OUT/xenctld.log" 2>&1 </dev/null &
pid=$!
deadline=$(($(date +%s) + 60))
until [[ -S $sock ]]; do
  if ! kill -0 "$pid" 2>/dev/null; then
    status=0
    wait "$pid" || status=$?
    pid=
    lab_fail "xenctld exited with status $status before creating $sock: $(tail -n 20 "$LAB_OUT/xenctld.log")"
  fi
  (($(date +%s) < deadline)) || lab_fail "xenctld did not create $sock within 60s: $(tail -n 20 "$LAB_OUT/xenctld.log")"
  sleep 0.5
done
lab_say "xenctld (pid $pid) listening on $sock"

cli list-empty vm-list --json
json_has "$LAB_OUT/list-empty.out" 'type == "array"' "vm-list --json did not print a JSON array"
json_has "$LAB_OUT/list-empty.out" '[.. | strings] | any(. == "lab1") | not' "vm-list shows lab1 before it was created"

cli host vmm host --json
json_has "$LAB_OUT/host.out" 'type == "object" and has("hypervisor")' "vmm host --json has no \"hypervisor\" key"
lab_say "host: $(jq -c . "$LAB_OUT/host.out" | head -c 300)"

cli create vm-create lab1 --memory 128M --vcpus 1

cli list vm-list --json
json_has "$LAB_OUT/list.out" 'type == "array" and ([.. | strings] | any(. == "lab1"))' "vm-list --json does not show lab1 after vm-create"
lab_say "vm-list: $(jq -c . "$LAB_OUT/list.out" | head -c 300)"

lab_say "+ kill -TERM $pid"
kill -TERM "$pid"
deadline=$(($(date +%s) + 30))
while kill -0 "$pid" 2>/dev/null; do
  (($(date +%s) < deadline)) || lab_fail "xenctld still running 30s after SIGTERM: $(tail -n 20 "$LAB_OUT/xenctld.log")"
  sleep 0.2
done
status=0
wait "$pid" || status=$?
pid=
((status == 0)) || lab_fail "xenctld exited with status $status after SIGTERM (want 0): $(tail -n 20 "$LAB_OUT/xenctld.log")"
[[ ! -e $sock ]] || lab_fail "xenctld left its socket $sock behind after SIGTERM"
lab_say "xenctld stopped cleanly (status 0, socket removed)"
