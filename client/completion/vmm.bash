# bash completion for vmm and the vm-* commands (installed as
# share/bash-completion/completions/vmm; each vm-NAME is a link to it).
# Commands and flags are read from `vmm ... --help`, so they follow the
# binary; domain, volume and image names come from the daemon through the
# `--json` list calls (with the --connect given on the line, if any), and
# complete to nothing when xenctld does not answer within two seconds.

# Prints the names of the objects of one kind (domains, volumes, images).
_vmm_names() {
  local kind=$1 cmd
  case $kind in
    domains) cmd=(list) ;;
    volumes) cmd=(volume list) ;;
    images) cmd=(image list) ;;
  esac
  vmm "${_vmm_connect[@]}" --call-timeout 2 --json "${cmd[@]}" 2>/dev/null |
    sed -n 's/^ *"name": *"\([^"]*\)".*/\1/p'
}

# Prints the subcommands, or the flags, listed in the help of `vmm WORDS...`.
_vmm_help() {
  local what=$1
  shift
  vmm "$@" --help 2>/dev/null | awk -v what="$what" '
    /^Subcommands:/ { sub_ = 1; next }
    /^[^ ]/ { sub_ = 0 }
    what == "commands" && sub_ && /^  [a-z]/ { print $1 }
    what == "flags" && /^  -/ {
      n = split($1, f, ",")
      for (i = 1; i <= n; i++) { x = f[i]; sub(/[ =].*/, "", x); if (x ~ /^--/) print x }
    }'
}

_vmm() {
  local cur prev words cword
  _init_completion || return

  # The command path: vm-NAME is `vmm NAME`.
  local -a path=()
  local prog=${words[0]##*/}
  [[ $prog == vm-* ]] && path=("${prog#vm-}")
  _vmm_connect=()
  local i w
  for ((i = 1; i < cword; i++)); do
    w=${words[i]}
    case $w in
      --connect) _vmm_connect=(--connect "${words[i + 1]}") ;;
      --connect=*) _vmm_connect=("$w") ;;
    esac
  done

  # Walk the words before the cursor: subcommands extend the path; the rest
  # are flags, their values and positionals.
  local npos=0 subs
  subs=$(_vmm_help commands "${path[@]}")
  for ((i = 1; i < cword; i++)); do
    w=${words[i]}
    if [[ $w == @(--connect|--cert|--key|--ca|--call-timeout) ]]; then
      i=$((i + 1))  # the global flag's value
    elif [[ $w == -* ]]; then
      continue
    elif [[ -n $subs ]] && grep -qx -- "$w" <<<"$subs"; then
      path+=("$w")
      subs=$(_vmm_help commands "${path[@]}")
    else
      npos=$((npos + 1))
    fi
  done

  case $prev in
    --image) mapfile -t COMPREPLY < <(compgen -W "$(_vmm_names images)" -- "$cur"); return ;;
    --connect | --cert | --key | --ca | --file | --ssh-key | --container | --user-data | --patch | -o | --output)
      _filedir; return ;;
    # Free-text values (vm-create's and vm-volume customize's): no names to offer.
    --hostname | --ip | --mac | --gateway | --dns | --instance-id | --ssh-user | --user) return ;;
  esac

  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_vmm_help flags "${path[@]}")" -- "$cur")
    return
  fi
  if [[ -n $subs && $npos -eq 0 ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
    return
  fi

  # Positionals: which names fit depends on the command.
  local kind=
  case "${path[*]}" in
    create | "volume create" | "image import" | ops | watch | host | list | "volume list" | "volume pools" | "image list") ;;
    "volume "* ) kind=volumes ;;
    "image delete") kind=images ;;
    "image export" | container) _filedir; return ;;
    *) kind=domains ;;
  esac
  [[ ${path[*]} == create ]] && { _filedir; return; }
  [[ -n $kind ]] && mapfile -t COMPREPLY < <(compgen -W "$(_vmm_names "$kind")" -- "$cur")
}

complete -F _vmm vmm vm-create vm-list vm-info vm-start vm-shutdown vm-reboot vm-destroy vm-delete vm-pause \
  vm-unpause vm-set vm-console vm-volume vm-image vm-container vm-fork vm-diff vm-access
