# xenctl's Ganeti hooks: what the ExtStorage provider (extstorage/xenctl)
# and the OS definition (os/xenctl) share. Each hook is a thin call into
# xenctld through `vmm`: it waits for the daemon's operation, and on failure
# vmm's message (the daemon's, naming the object and what to do) goes to
# stderr, which Ganeti keeps in its log and shows in the job's error, and
# the hook exits with vmm's code (1 failed, 2 usage, 3 not found, 4 no
# daemon). See ganeti-extstorage-interface(7), ganeti-os-interface(7) and
# docs/ganeti.md.
#
# Ganeti cleans the environment and runs hooks as root with
# PATH=/sbin:/bin:/usr/sbin:/usr/bin; settings come from
# $XENCTL_GANETI_CONF (default /etc/xenctl/ganeti.conf), a shell fragment
# that may set:
#   XENCTL_CONNECT   how vmm reaches xenctld (default: its local socket)
#   XENCTL_POOL      the pool of blank volumes (default: xenctld's first pool)
#   XENCTL_GANETI_STATE  where variants.list and volume metadata are kept
#                    (default /var/lib/xenctl/ganeti)
#   VMM              the vmm binary (default: vmm on PATH)

# The XC_* variables are set here for the hooks that source this file.
# shellcheck disable=SC2034
set -eu

XENCTL_GANETI_CONF=${XENCTL_GANETI_CONF:-/etc/xenctl/ganeti.conf}
if [ -r "$XENCTL_GANETI_CONF" ]; then
  # shellcheck disable=SC1090
  . "$XENCTL_GANETI_CONF"
fi
VMM=${VMM:-vmm}
XENCTL_POOL=${XENCTL_POOL:-}
XENCTL_GANETI_STATE=${XENCTL_GANETI_STATE:-/var/lib/xenctl/ganeti}
if [ -n "${XENCTL_CONNECT:-}" ]; then export XENCTL_CONNECT; fi

XC_HOOK="xenctl $(basename "$(dirname "$(readlink -f "$0")")")/$(basename "$0")"

xc_die() {
  echo "$XC_HOOK: $*" >&2
  exit 1
}

# `xc_require VAR...`: each must be set and not empty.
xc_require() {
  for var in "$@"; do
    eval "value=\${$var:-}"
    # shellcheck disable=SC2154
    [ -n "$value" ] || xc_die "$var is not set; Ganeti sets it for this hook (is it run by hand?)"
  done
}

# `xc_vmm ARGS...`: runs vmm; its stdout is left in $XC_OUT. On failure the
# hook exits with vmm's code, vmm's own message already on stderr.
xc_vmm() {
  xc_rc=0
  XC_OUT=$("$VMM" "$@") || xc_rc=$?
  if [ "$xc_rc" -ne 0 ]; then
    echo "$XC_HOOK: \`vmm $*\` failed (exit $xc_rc)" >&2
    exit "$xc_rc"
  fi
}

# `xc_vmm_status ARGS...`: as xc_vmm, but returns vmm's code instead of
# exiting (for a caller that accepts NOT_FOUND, 3).
xc_vmm_status() {
  xc_rc=0
  xc_err=$(mktemp)
  XC_OUT=$("$VMM" "$@" 2>"$xc_err") || xc_rc=$?
  if [ "$xc_rc" -ne 0 ] && [ "$xc_rc" -ne 3 ]; then cat "$xc_err" >&2; fi
  rm -f "$xc_err"
  return "$xc_rc"
}

# `xc_json PYTHON-EXPR [ARG...]`: evaluates EXPR over the JSON on stdin
# (bound to `j`, the ARGs to `a`) and prints the result (a list one item a
# line; None as nothing). Values go in as ARGs, never into EXPR's text.
xc_json() {
  python3 -c '
import json, os, sys
j = json.load(sys.stdin)
a = sys.argv[2:]
r = eval(sys.argv[1])
if isinstance(r, (list, tuple)):
    for x in r: print(x)
elif r is not None:
    print(r)
' "$@"
}

# `xc_image NAME`: sets XC_IMAGE_POOL, XC_IMAGE_VOLUME and XC_IMAGE_MIB from
# the catalog (vm-image list), or fails naming the images there.
xc_image() {
  xc_vmm --json image list
  found=$(printf '%s' "$XC_OUT" |
    xc_json "[' '.join(i['base_volume'].split('/', 1) + [str(int(i.get('size_bytes', '0')) >> 20)]) for i in j if i['name'] == a[0]]" "$1")
  if [ -z "$found" ]; then
    names=$(printf '%s' "$XC_OUT" | xc_json "', '.join(i['name'] for i in j) or '(none)'")
    xc_die "image '$1' is not in xenctld's catalog (images: $names); import it on this node with \`vm-image import $1 URI\`"
  fi
  # shellcheck disable=SC2086  # the fields are names without blanks
  set -- $found
  XC_IMAGE_POOL=$1 XC_IMAGE_VOLUME=$2 XC_IMAGE_MIB=$3
}

# `xc_volume_of DEVICE`: sets XC_POOL and XC_VOLUME to the xenctld volume
# whose block device (or backing path) DEVICE is, and XC_ORIGIN to what it
# was cloned from; fails when it is none.
xc_volume_of() {
  dev=$(readlink -f "$1")
  xc_vmm --json volume list
  found=$(printf '%s' "$XC_OUT" | xc_json "
[' '.join((v['pool'], v['name'], v['origin'] or '-')) for v in j
 if a[0] in [os.path.realpath(p) for p in (v.get('host_device', ''), v['path']) if p]][:1]" "$dev")
  [ -n "$found" ] || xc_die "disk '$1' is not a xenctld volume on this node; give the instance a disk from the xenctl ExtStorage provider (-t ext --disk 0:size=SIZE,provider=xenctl,image=IMAGE)"
  # shellcheck disable=SC2086  # the fields are names without blanks
  set -- $found
  XC_POOL=$1 XC_VOLUME=$2 XC_ORIGIN=$3
}

# `xc_set_pool`: XC_PO, the pool of the volume named by $VOL_NAME: the
# EXTP_POOL parameter, else the pool of the EXTP_IMAGE it was cloned from,
# else the configured pool, else "" (xenctld's first). Used as
# ${XC_PO:+--pool "$XC_PO"}.
xc_set_pool() {
  if [ -n "${EXTP_POOL:-}" ]; then
    XC_PO=$EXTP_POOL
  elif [ -n "${EXTP_IMAGE:-}" ]; then
    xc_image "$EXTP_IMAGE"
    XC_PO=$XC_IMAGE_POOL
  else
    XC_PO=$XENCTL_POOL
  fi
}
