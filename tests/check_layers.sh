#!/usr/bin/env bash
# check_layers.sh SOURCE_DIR - checks every #include of the C and CUDA sources against the
# allowed arrows between layers (DESIGN.md, "Layout and layers"):
#   launch -> runtime -> {runtime/nn, fl, faults, aggregators, comm} -> base
#   fl -> aggregators, faults -> aggregators
# A layer may include its own headers and those of the layers it points to, nothing else;
# base/ includes nothing of Phalanx. The generated config schema (config.pb-c.h) belongs to
# runtime/. tests/, bench/ and cmake/ may include anything. Prints one line per forbidden
# include (file:line: layer -> target) and exits 1 if there is any.
set -euo pipefail
cd "$1"

# the layer a path belongs to ("" for paths outside the layered tree)
layer_of() {
  case "$1" in
    base/*) echo base ;;
    aggregators/*) echo aggregators ;;
    comm/*) echo comm ;;
    faults/*) echo faults ;;
    fl/*) echo fl ;;
    runtime/nn/*) echo nn ;;
    runtime/*) echo runtime ;;
    launch/*) echo launch ;;
    config.pb-c.h) echo runtime ;; # the generated schema
    *) echo "" ;;
  esac
}

# allowed FROM TO: may layer FROM include layer TO?
allowed() {
  [ "$1" = "$2" ] && return 0
  case "$1:$2" in
    aggregators:base | comm:base | faults:base | fl:base | nn:base) return 0 ;;
    faults:aggregators | fl:aggregators) return 0 ;;
    runtime:base | runtime:aggregators | runtime:comm | runtime:faults | runtime:fl | runtime:nn)
      return 0 ;;
    launch:*) return 0 ;;
  esac
  return 1
}

bad=0
while IFS= read -r file; do
  from=$(layer_of "$file")
  [ -n "$from" ] || continue
  dir=$(dirname "$file")
  while IFS=: read -r line target; do
    # an include without a directory is the file's own directory, as the compiler looks first
    case "$target" in
      ./* | ../*) path=$dir/$target ;;
      *) if [ -e "$dir/$target" ]; then path=$dir/$target; else path=$target; fi ;;
    esac
    path=$(realpath -m --relative-to=. "$path")
    to=$(layer_of "$path")
    [ -n "$to" ] || continue # a system header, or generated code of the same layer
    if ! allowed "$from" "$to"; then
      echo "$file:$line: $from may not include $target ($to)"
      bad=1
    fi
  done < <(grep -n -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]' "$file" |
             sed -E 's/^([0-9]+):[^"<]*["<]([^">]*)[">].*/\1:\2/')
done < <(find base aggregators comm faults fl runtime launch -type f \
           \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) 2>/dev/null | sort)
exit $bad
