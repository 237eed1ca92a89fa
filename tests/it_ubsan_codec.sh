#!/usr/bin/env bash
# it_ubsan_codec.sh BUILD_DIR SOURCE_DIR - the codec and its unit tests under clang's
# UndefinedBehaviorSanitizer: base/ and the codec sources are compiled with
# -fsanitize=undefined -fno-sanitize-recover=all into a scratch directory, and every codec test
# must pass with no report (a null pointer plus an offset, a float-to-int conversion out of
# range, a shift too far: each aborts the test). GCC's sanitizer misses some of these (a zero
# offset on a null pointer), so clang is required: without it the test is skipped (exit 77).
source "$(dirname "$0")/lib.sh"
CC=$(command -v clang || true)
if [ -z "$CC" ]; then
  echo "it_ubsan_codec: no clang found; skipped"
  exit 77
fi
CMOCKA_FLAGS=$(pkg-config --cflags --libs cmocka)
SRCS=(base/alloc.c base/clock.c base/log.c base/pool.c base/status.c comm/codec.c
  comm/codec_fp8.c comm/codec_half.c comm/codec_int8.c comm/crc32c.c comm/hadamard.c comm/wire.c)
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$SRC"
# one object per source, then one link per test (the sources are compiled once)
mkdir -p "$WORK/obj"
for s in "${SRCS[@]}"; do
  "$CC" -std=gnu11 -O1 -g -fsanitize=undefined -fno-sanitize-recover=all -I. -c "$s" \
    -o "$WORK/obj/$(echo "$s" | tr / _).o" || fail "clang -fsanitize=undefined: $s does not compile"
done
for t in test_codec test_codec_formats test_codec_hostile test_codec_rht test_codec_state test_wire; do
  # shellcheck disable=SC2086
  "$CC" -std=gnu11 -O1 -g -fsanitize=undefined -fno-sanitize-recover=all -I. "tests/$t.c" \
    "$WORK"/obj/*.o -o "$WORK/$t" $CMOCKA_FLAGS -lm -lpthread || fail "$t does not compile"
  rc=0
  "$WORK/$t" >"$WORK/$t.log" 2>&1 || rc=$?
  if grep -q "runtime error" "$WORK/$t.log"; then
    grep -A6 "runtime error" "$WORK/$t.log" >&2
    fail "$t: undefined behaviour under UBSan"
  fi
  [ "$rc" = 0 ] || { tail -20 "$WORK/$t.log" >&2; fail "$t: exit $rc under UBSan"; }
  echo "ok: $t under UBSan: $(grep -c '\[       OK \]' "$WORK/$t.log") tests, no report"
done
