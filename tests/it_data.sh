#!/usr/bin/env bash
# it_data.sh - the data's shapes are checked once, in every mode: a training set of 28 x 28
# images with a test set of 32 x 32 ones is refused (exit 2, naming both shapes) alone and under
# MPI, where the server (test set) and the workers (training set) used to shape the model
# differently and crash.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

# idx FILE DIMS... : an IDX file of unsigned bytes (zeros after the header; labels 0), gzipped
idx() {
  local file=$1
  shift
  local ndim=$# total=1
  {
    printf '\x00\x00\x08'"\\x$(printf %02x "$ndim")"
    for d in "$@"; do
      printf "\\x$(printf %02x $((d >> 24 & 255)))\\x$(printf %02x $((d >> 16 & 255)))"
      printf "\\x$(printf %02x $((d >> 8 & 255)))\\x$(printf %02x $((d & 255)))"
      total=$((total * d))
    done
    head -c "$total" /dev/zero
  } | gzip -c >"$file"
}
mkdir mismatch
idx mismatch/train-images-idx3-ubyte.gz 200 28 28
idx mismatch/train-labels-idx1-ubyte.gz 200
idx mismatch/t10k-images-idx3-ubyte.gz 50 32 32
idx mismatch/t10k-labels-idx1-ubyte.gz 50
args=(--set data.path="$WORK/mismatch" --set schedule.steps=5 --set logging.progress=QUIET)
want="training images are 28 x 28 (784 values) but test images are 32 x 32 (1024 values)"
expect_exit 2 "$want" "$TRAINER" "${args[@]}" "$EX/tiny.pb"
expect_exit 2 "$want" timeout -k 10 120 mpirun -np 3 "$TRAINER" "${args[@]}" "$EX/tiny.pb"

# the same files with matching shapes train (the check does not refuse a good dataset)
idx mismatch/t10k-images-idx3-ubyte.gz 50 28 28
expect_exit 0 "" "$TRAINER" "${args[@]}" --set run.name=ok "$EX/tiny.pb"
expect_exit 0 "" timeout -k 10 120 mpirun -np 3 "$TRAINER" "${args[@]}" --set run.name=ok3 \
  "$EX/tiny.pb"
echo PASS
