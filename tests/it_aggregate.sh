#!/usr/bin/env bash
# it_aggregate.sh - drives build/aggregate on .npy files written here with printf (no numpy):
# good inputs for every rule and chain, exact results checked byte by byte, and every kind of
# bad input (dtype, shape, order, truncated or corrupt header or data, unknown rule or key,
# invalid (n, f)) refused with exit 2 and a message naming the problem.
# Usage: tests/it_aggregate.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
BUILD=${1:?build dir}
AGG="$BUILD/aggregate"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
passes=0

ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# npy FILE DICT DATA_HEX: a version 1.0 .npy with the given header dict, padded to 64 bytes
npy() {
  local file=$1 dict=$2 hex=$3
  local len=$(( ${#dict} + 1 ))
  local pad=$(( (64 - (10 + len) % 64) % 64 ))
  local hlen=$(( len + pad ))
  {
    printf '\x93NUMPY\x01\x00'
    printf "\\x$(printf %02x $((hlen & 255)))\\x$(printf %02x $((hlen >> 8)))"
    printf '%s' "$dict"
    printf '%*s' "$pad" ''
    printf '\n'
    printf "$hex"
  } > "$file"
}

# little-endian float32 bytes as printf escapes
F1='\x00\x00\x80\x3f'; F2='\x00\x00\x00\x40'; F3='\x00\x00\x40\x40'; F4='\x00\x00\x80\x40'
F100='\x00\x00\xc8\x42'; FNAN='\x00\x00\xc0\x7f'; F0='\x00\x00\x00\x00'

# expect_exit CODE PATTERN ARGS...: runs aggregate, checks the exit code and that stderr
# matches PATTERN (grep -E)
expect_exit() {
  local code=$1 pat=$2
  shift 2
  "$AGG" "$@" > "$TMP/stdout" 2> "$TMP/stderr"
  local rc=$?
  if [ "$rc" != "$code" ]; then
    bad "aggregate $* exited $rc, expected $code ($(cat "$TMP/stderr"))"
  elif [ -n "$pat" ] && ! grep -Eq "$pat" "$TMP/stderr"; then
    bad "aggregate $*: stderr '$(cat "$TMP/stderr")' does not match '$pat'"
  else
    ok
  fi
}

# rows (1,2) (3,4) (100,1): column medians 3 and 2, means 104/3 and 7/3
npy "$TMP/good.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }" \
  "$F1$F2$F3$F4$F100$F1"
line=$("$AGG" --rule median "$TMP/good.npy" "$TMP/out.npy")
rc=$?
[ $rc = 0 ] && ok || bad "median on a good file exited $rc"
[[ "$line" =~ ^rule=median\ n=3\ d=2\ time_ms=[0-9]+\.[0-9]+$ ]] && ok || bad "output line '$line'"
got=$(tail -c 8 "$TMP/out.npy" | od -An -tx1 | tr -d ' \n')
[ "$got" = "0000404000000040" ] && ok || bad "median result bytes $got, expected 3.0 2.0"
head -c 6 "$TMP/out.npy" | od -An -c | grep -q 'N   U   M   P   Y' && ok || bad "output magic"
size=$(stat -c %s "$TMP/out.npy")
[ $(( (size - 8) % 64 )) = 0 ] && ok || bad "output header not padded to 64 bytes ($size bytes)"
grep -aq "'descr': '<f4', 'fortran_order': False, 'shape': (2,)" "$TMP/out.npy" && ok \
  || bad "output header dict"

# every rule and a chain run on a 7 x 5 file (values 0..34 with one NaN row dropped)
hex=""
for i in $(seq 0 34); do
  bits=$(printf '%08x' "$(( i == 0 ? 0 : 0x3f800000 + i * 0x10000 ))")
  hex="$hex\\x${bits:6:2}\\x${bits:4:2}\\x${bits:2:2}\\x${bits:0:2}"
done
npy "$TMP/seven.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (7, 5), }" "$hex"
for rule in mean median trimmed_mean krum multi_krum bulyan geomed cclip meamed flag fedld; do
  expect_exit 0 "" --rule "$rule" --set f=1 "$TMP/seven.npy" "$TMP/o.npy"
  grep -q "^rule=$rule n=7 d=5 time_ms=" "$TMP/stdout" && ok || bad "$rule: no output line"
done
expect_exit 0 "" --rule krum --pre clip,nnm --set f=1 --set clip_norm=1.5 "$TMP/seven.npy" "$TMP/o.npy"
expect_exit 0 "" --rule fedld --set layers=2,3 --set kappa=0.5 "$TMP/seven.npy" "$TMP/o.npy"
expect_exit 0 "" --rule flag --set m=2 --set iters=0 --set init=random --set seed=7 \
  --threads 1 "$TMP/seven.npy" "$TMP/o.npy"
expect_exit 2 "layer sizes add up to 4" --rule fedld --set layers=2,2 "$TMP/seven.npy" "$TMP/o.npy"

# a NaN row is dropped and reported
npy "$TMP/nan.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }" \
  "$F1$F2$FNAN$F4$F3$F4"
expect_exit 0 "dropped 1 of 3 rows" --rule mean "$TMP/nan.npy" "$TMP/o.npy"
got=$(tail -c 8 "$TMP/o.npy" | od -An -tx1 | tr -d ' \n')
[ "$got" = "0000004000004040" ] && ok || bad "mean without the NaN row: bytes $got, expected 2.0 3.0"
npy "$TMP/allnan.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }" "$FNAN$F0"
expect_exit 2 "none of the 1 inputs is finite" --rule median "$TMP/allnan.npy" "$TMP/o.npy"

# bad inputs: exit 2 with a message
npy "$TMP/f8.npy" "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }" "$F1$F1"
expect_exit 2 "dtype '<f8' is not float32" --rule mean "$TMP/f8.npy" "$TMP/o.npy"
npy "$TMP/be.npy" "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1), }" "$F1"
expect_exit 2 "not float32" --rule mean "$TMP/be.npy" "$TMP/o.npy"
npy "$TMP/i4.npy" "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1), }" "$F1"
expect_exit 2 "not float32" --rule mean "$TMP/i4.npy" "$TMP/o.npy"
npy "$TMP/1d.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" "$F1$F2"
expect_exit 2 "1 dimensions, expected 2" --rule mean "$TMP/1d.npy" "$TMP/o.npy"
npy "$TMP/3d.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2), }" "$F1$F2"
expect_exit 2 "3 dimensions" --rule mean "$TMP/3d.npy" "$TMP/o.npy"
npy "$TMP/empty.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2), }" ""
expect_exit 2 "empty" --rule mean "$TMP/empty.npy" "$TMP/o.npy"
npy "$TMP/fortran.npy" "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1), }" "$F1$F2"
expect_exit 2 "Fortran" --rule mean "$TMP/fortran.npy" "$TMP/o.npy"
npy "$TMP/short.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }" "$F1$F2$F3"
expect_exit 2 "truncated" --rule mean "$TMP/short.npy" "$TMP/o.npy"
npy "$TMP/long.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }" "$F1$F2"
expect_exit 2 "needs 4" --rule mean "$TMP/long.npy" "$TMP/o.npy"
npy "$TMP/garbage.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (1, x), }" "$F1"
expect_exit 2 "corrupt .npy header" --rule mean "$TMP/garbage.npy" "$TMP/o.npy"
npy "$TMP/nokey.npy" "{'descr': '<f4', 'shape': (1, 1), }" "$F1"
expect_exit 2 "missing" --rule mean "$TMP/nokey.npy" "$TMP/o.npy"
npy "$TMP/extra.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), 'x': 1}" "$F1"
expect_exit 2 "unknown key" --rule mean "$TMP/extra.npy" "$TMP/o.npy"
head -c 20 "$TMP/good.npy" > "$TMP/cut.npy"
expect_exit 2 "truncated .npy header" --rule mean "$TMP/cut.npy" "$TMP/o.npy"
head -c 5 "$TMP/good.npy" > "$TMP/tiny.npy"
expect_exit 2 "not a .npy file" --rule mean "$TMP/tiny.npy" "$TMP/o.npy"
{ printf 'XNUMPY'; tail -c +7 "$TMP/good.npy"; } > "$TMP/magic.npy"
expect_exit 2 "not a .npy file" --rule mean "$TMP/magic.npy" "$TMP/o.npy"
{ head -c 6 "$TMP/good.npy"; printf '\x09\x00'; tail -c +9 "$TMP/good.npy"; } > "$TMP/ver.npy"
expect_exit 2 "unsupported .npy version 9.0" --rule mean "$TMP/ver.npy" "$TMP/o.npy"
{ head -c 8 "$TMP/good.npy"; printf '\xff\xff'; tail -c +11 "$TMP/good.npy"; } > "$TMP/hlen.npy"
expect_exit 2 "truncated .npy header" --rule mean "$TMP/hlen.npy" "$TMP/o.npy"
expect_exit 2 "No such file" --rule mean "$TMP/missing.npy" "$TMP/o.npy"

# bad command lines and parameters
expect_exit 2 "unknown aggregation rule 'nope'.*known: mean" --rule nope "$TMP/good.npy" "$TMP/o.npy"
expect_exit 2 "krum: needs n >= 2f\+3, got n = 3 with f = 1" --rule krum --set f=1 "$TMP/good.npy" "$TMP/o.npy"
expect_exit 2 "bulyan: needs n >= 4f\+3, got n = 7 with f = 2" --rule bulyan --set f=2 "$TMP/seven.npy" "$TMP/o.npy"
expect_exit 2 "trimmed_mean: needs n >= 2f\+1" --rule trimmed_mean --set f=2 "$TMP/good.npy" "$TMP/o.npy"
expect_exit 2 "7 inputs became 4" --rule krum --set f=1 --pre bucketing "$TMP/seven.npy" "$TMP/o.npy"
expect_exit 2 "unknown aggregator parameter 'zz'" --rule mean --set zz=1 "$TMP/good.npy" "$TMP/o.npy"
expect_exit 2 "parameter f" --rule mean --set f=-1 "$TMP/good.npy" "$TMP/o.npy"
expect_exit 2 "expected key=value" --rule mean --set f "$TMP/good.npy" "$TMP/o.npy"
expect_exit 2 "unknown step 'zip'" --rule mean --pre clip,zip "$TMP/good.npy" "$TMP/o.npy"
expect_exit 2 "init: expected pca or random" --rule flag --set init=svd "$TMP/good.npy" "$TMP/o.npy"
expect_exit 2 "required" --rule mean "$TMP/good.npy"
expect_exit 2 "required" "$TMP/good.npy" "$TMP/o.npy"
expect_exit 2 "unknown option" --rule mean --bogus "$TMP/good.npy" "$TMP/o.npy"

# --help lists every rule, every step and every key with its default
"$AGG" --help > "$TMP/help" 2>&1 && ok || bad "--help exit code"
for word in mean median trimmed_mean krum multi_krum bulyan geomed cclip meamed flag fedld \
  clip nnm bucketing f seed m iters lambda init warm_start rescale q geomed_nu geomed_iters \
  geomed_tol tau cclip_iters kappa fedld_history layers pre clip_norm bucket_size; do
  grep -Eq "^  $word +" "$TMP/help" && ok || bad "--help does not list '$word'"
done
grep -Eq "^  iters +default 4 " "$TMP/help" && ok || bad "--help: iters default"
"$AGG" --version | grep -q "^aggregate (phalanx)" && ok || bad "--version"

echo "it_aggregate: $passes passed, $fails failed"
[ "$fails" = 0 ]
