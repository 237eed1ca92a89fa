#!/usr/bin/env bash
# it_layers.sh - the layers are a build fact: no source includes a header of a layer it may not
# use (tests/check_layers.sh), and the check really fails on a forbidden include.
source "$(dirname "$0")/lib.sh"

bash "$SRC/tests/check_layers.sh" "$SRC" || fail "forbidden includes in the tree (above)"
echo "ok: every #include follows the allowed arrows"

# the check can fail: copies of the tree with one deliberate violation each
for case in "aggregators/mean.c|#include \"runtime/run.h\"|aggregators may not include runtime/run.h" \
            "base/log.c|#include \"comm/wire.h\"|base may not include comm/wire.h" \
            "comm/wire.c|#include \"../runtime/nn/mlp.h\"|comm may not include ../runtime/nn/mlp.h" \
            "runtime/nn/mlp.c|#include <runtime/server.h>|nn may not include runtime/server.h" \
            "faults/byzantine.c|#include \"launch/x.h\"|faults may not include launch/x.h"; do
  IFS='|' read -r file line want <<<"$case"
  rm -rf "$WORK/tree" && mkdir "$WORK/tree"
  (cd "$SRC" && cp -r base aggregators comm faults runtime launch "$WORK/tree/")
  printf '%s\n' "$line" >>"$WORK/tree/$file"
  rc=0
  out=$(bash "$SRC/tests/check_layers.sh" "$WORK/tree") || rc=$?
  [ "$rc" = 1 ] || fail "a violation in $file was not found (exit $rc)"
  grep -qF "$file:" <<<"$out" && grep -qF "$want" <<<"$out" || fail "unexpected report: $out"
  echo "ok: found $out"
done
echo PASS
