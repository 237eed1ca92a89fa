#!/usr/bin/env bash
# it_cli_leaks.sh BUILD_DIR SOURCE_DIR - the trainer frees what it allocated on every way out of
# its command line and config handling (--help, --version, a bad option, a missing value, two
# config files, none, a refused --set, a refused config, --print-config), each with --set given
# so that the list of overrides exists. Runs the real binary with LeakSanitizer preloaded
# (stand-alone LSan, shipped with GCC); skipped (exit 77) where the runtime is absent.
source "$(dirname "$0")/lib.sh"
LSAN=$(gcc -print-file-name=liblsan.so 2>/dev/null || true)
if [ -z "$LSAN" ] || [ ! -e "$LSAN" ]; then
  echo "it_cli_leaks: no liblsan.so (GCC's LeakSanitizer runtime); skipped"
  exit 77
fi
export LSAN_OPTIONS=exitcode=23
CFG=$EX/tiny.pb
[ -f "$CFG" ] || fail "no $CFG (build the examples)"

# leak_free CODE ARGS...: the trainer with LSan exits CODE (LSan's 23 is a leak) and reports none
leak_free() {
  local want=$1 rc=0
  shift
  LD_PRELOAD=$LSAN "$TRAINER" "$@" >"$WORK/out.txt" 2>&1 || rc=$?
  if grep -q "LeakSanitizer" "$WORK/out.txt"; then
    cat "$WORK/out.txt" >&2
    fail "trainer $*: leaks (exit $rc)"
  fi
  [ "$rc" = "$want" ] || { cat "$WORK/out.txt" >&2; fail "trainer $*: exit $rc, expected $want"; }
  echo "ok: trainer $* -> exit $rc, no leak"
}

leak_free 0 --set run.seed=3 --help
leak_free 0 --set run.seed=3 --version
leak_free 2 --set run.seed=3 --bogus "$CFG"
leak_free 2 --set run.seed=3 --set
leak_free 2 --set run.seed=3 --sample
leak_free 2 --set run.seed=3 --load-state
leak_free 2 --set run.seed=3 "$CFG" "$CFG"
leak_free 2 --set run.seed=3
leak_free 2 --set run.seed=x "$CFG"
leak_free 2 --set cluster.workers=0 "$CFG"
leak_free 0 --set run.seed=3 --print-config "$CFG"
# a model over PX_MAX_PARAMS is a config error (exit 2) naming the field, before any allocation
leak_free 2 --set model.hidden=65536,65536 "$CFG"
grep -q "model.hidden" "$WORK/out.txt" && grep -q "PX_MAX_PARAMS" "$WORK/out.txt" ||
  fail "the refusal of model.hidden=65536,65536 does not name the field and the bound: $(cat "$WORK/out.txt")"
# --sample's value is refused when too long for its buffer, not cut (41 blanks and "5" would
# read as 5 once "junk" is cut off)
leak_free 2 --sample "$(printf '%41s' '')5junk" --print-config "$CFG"
grep -q "not a number of characters" "$WORK/out.txt" || fail "--sample: $(cat "$WORK/out.txt")"
