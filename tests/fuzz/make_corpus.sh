#!/usr/bin/env bash
# make_corpus.sh - rewrites the generated seeds of tests/fuzz/corpus/ (run by hand after a format
# changes; CI only reads the corpus). Each target writes its valid examples with the library's
# own writers (PX_FUZZ_WRITE_SEEDS=DIR); the encoded examples/ are added to the config corpus.
# Reproducers of findings (files named finding-*) are kept.
#   tests/fuzz/make_corpus.sh [BUILD_DIR]      (a PX_FUZZ=ON build: build-asan by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-asan}
CORPUS=tests/fuzz/corpus
for t in config wire codec npy idx state; do
  test -x "$BUILD/fuzz/fuzz_$t" || { echo "make_corpus: no $BUILD/fuzz/fuzz_$t (PX_FUZZ=ON build)" >&2; exit 1; }
  mkdir -p "$CORPUS/$t"
  find "$CORPUS/$t" -type f ! -name 'finding-*' ! -name 'edge-*' -delete
  PX_FUZZ_WRITE_SEEDS="$CORPUS/$t" "$BUILD/fuzz/fuzz_$t" 2>/dev/null
done
for pb in "$BUILD"/examples/*.pb; do
  cp "$pb" "$CORPUS/config/example_$(basename "$pb")"
done
du -sh "$CORPUS"/*
