# lib.sh - shared by the integration tests (tests/it_*.sh): paths, MPI environment, helpers.
# Each test is run by ctest as: bash tests/it_NAME.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
TRAINER=$BUILD/trainer
EX=$BUILD/examples
source "$SRC/launch/env.sh"
WORK=$(mktemp -d /tmp/px_it.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# pid_of_rank NAME R: the trainer process of MPI rank R in the job running run.name=NAME (read
# from its environment; the run name on the command line keeps other tests' jobs out)
pid_of_rank() {
  local p
  for p in $(pgrep -f "run.name=$1 " || true); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# json_num FILE KEY: the number after "KEY": on the last line of FILE that has it
json_num() {
  grep -o "\"$2\":[-0-9.eE+]*" "$1" | tail -n 1 | cut -d: -f2
}

# expect_exit CODE MESSAGE_PART CMD...: runs CMD, checks its exit status and that stderr or
# stdout mention MESSAGE_PART
expect_exit() {
  local want=$1 part=$2
  shift 2
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want; output: $out"
  if [ -n "$part" ]; then
    grep -qF -- "$part" <<<"$out" || fail "'$*': output lacks '$part'; output: $out"
  fi
  echo "ok: exit $rc from: $* ${part:+(says '$part')}"
}

# ge A B: A >= B as decimals
ge() {
  awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'
}
