#!/usr/bin/env bash
# valgrind_train.sh - valgrind memcheck on a short one-process training run: the ctest test
# valgrind_train of a PX_VALGRIND=ON build (launch/sanitize.sh builds one without -march=native,
# since valgrind does not decode AVX-512). Any invalid read or write, use of an uninitialised
# value or leak (definite, indirect or possible) fails it; launch/valgrind.supp holds what is not
# ours (Open MPI, OpenBLAS internals), nothing of Phalanx.
#   launch/valgrind_train.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
source "$SRC/launch/env.sh"
command -v valgrind >/dev/null || { echo "valgrind_train: valgrind is not installed" >&2; exit 1; }
WORK=$(mktemp -d /tmp/px_valgrind.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
valgrind --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --num-callers=40 \
  --suppressions="$SRC/launch/valgrind.supp" \
  "$BUILD/trainer" --set schedule.steps=20 "$BUILD/examples/tiny.pb"
test -s runs/tiny/params.npy || { echo "valgrind_train: the run wrote no parameters" >&2; exit 1; }
echo "valgrind_train: clean"
