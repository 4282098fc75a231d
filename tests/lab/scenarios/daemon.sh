#!/bin/bash
# lab-timeout: 240
# daemon: xenctld, built on the host, starts in Dom0, answers the CLIs over
# its Unix socket (list, host info, create, list again) and stops cleanly on
# SIGTERM: exit status 0 and its socket removed.
# shellcheck source=../guest/lab-lib.sh
source "${LAB_LIB:?run scenarios through tests/lab/run}"

# The hypervisor backend: libxl, real Xen; `-e XENCTLD_HYPERVISOR=test` runs
# the same checks on the in-memory one.
hypervisor=${XENCTLD_HYPERVISOR:-libxl}
trap lab_xenctld_kill EXIT
lab_xenctld_start "$hypervisor"

lab_cli list-empty vm-list --json
lab_json_has "$LAB_OUT/list-empty.out" 'type == "array"' "vm-list --json did not print a JSON array"
lab_json_has "$LAB_OUT/list-empty.out" '[.. | strings] | any(. == "lab1") | not' "vm-list shows lab1 before it was created"

lab_cli host vmm host --json
lab_json_has "$LAB_OUT/host.out" 'type == "object" and has("hypervisor")' "vmm host --json has no \"hypervisor\" key"
lab_say "host: $(jq -c . "$LAB_OUT/host.out" | head -c 300)"

lab_cli create vm-create lab1 --memory 128M --vcpus 1 --define-only

lab_cli list vm-list --json
lab_json_has "$LAB_OUT/list.out" 'type == "array" and ([.. | strings] | any(. == "lab1"))' "vm-list --json does not show lab1 after vm-create"
lab_say "vm-list: $(jq -c . "$LAB_OUT/list.out" | head -c 300)"

lab_xenctld_stop
