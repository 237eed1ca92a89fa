#!/usr/bin/env bash
# sanitize.sh - the sanitizer stage of CI, run by launch/test.sh after the main suite:
#   asan      build-asan/ (clang, AddressSanitizer + UndefinedBehaviorSanitizer, leak checks;
#             suppressions: launch/lsan.supp, Open MPI's libraries only): every unit test and
#             the integration tests labelled sanitize (tests/tests.cmake)
#   fuzz      the libFuzzer targets of tests/fuzz/ (same build): each replays its corpus
#             tests/fuzz/corpus/<target>/, then fuzzes for PX_FUZZ_SECONDS
#   valgrind  build-valgrind/ (clang, no -march=native: valgrind does not decode AVX-512):
#             memcheck on a short one-process training run (launch/valgrind_train.sh)
# A failure of any test fails the stage; a crashing fuzz input is written to
# build-asan/fuzz/<target>-crash-<sha1> (reproduce: build-asan/fuzz/fuzz_<target> FILE).
#
#   launch/sanitize.sh                  all three (needs the packages of launch/setup.sh)
#   launch/sanitize.sh fuzz             some of them
#   PX_SANITIZE=full launch/sanitize.sh every integration test under ASan, not only the
#                                       sanitize-labelled ones (about 10 more minutes)
#   PX_FUZZ_SECONDS=300 launch/sanitize.sh fuzz    a longer fuzzing session
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/env.sh

stages=("$@")
((${#stages[@]})) || stages=(asan fuzz valgrind)
want() {
  local s
  for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}
for s in "${stages[@]}"; do
  case $s in asan | fuzz | valgrind) ;; *) echo "sanitize: unknown stage '$s' (asan, fuzz, valgrind)" >&2; exit 2 ;; esac
done

WERROR=${PX_WERROR:-ON}
JOBS=$(nproc)
build() { # build DIR [TARGET...]: warnings and errors shown, progress lines not
  local dir=$1 targets=()
  shift
  (($#)) && targets=(--target "$@")
  cmake --build "$dir" -j "$JOBS" "${targets[@]}" 2>&1 | grep -v -E "^\[ *[0-9]+%\]|^gmake|^make" || true
}

if want asan || want fuzz; then
  command -v clang >/dev/null || { echo "sanitize: clang is missing (run launch/setup.sh)" >&2; exit 1; }
  cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPX_FUZZ=ON -DPX_CUDA=OFF -DPX_WERROR="$WERROR" -DPX_FUZZ_SECONDS="${PX_FUZZ_SECONDS:-20}" \
    >/dev/null
  build build-asan
  test -x build-asan/fuzz/fuzz_state || { echo "sanitize: build-asan failed" >&2; exit 1; }
  labels=()
  if want asan; then
    labels+=(unit)
    if [ "${PX_SANITIZE:-1}" = full ]; then labels+=(integration); else labels+=(sanitize); fi
  fi
  want fuzz && labels+=(fuzz)
  regex=$(IFS='|'; echo "^(${labels[*]})\$")
  echo "sanitize: ASan + UBSan tests ($regex) in build-asan/"
  (cd build-asan && ctest --output-on-failure -j "$JOBS" -L "$regex")
fi

if want valgrind; then
  command -v valgrind >/dev/null || { echo "sanitize: valgrind is missing (run launch/setup.sh)" >&2; exit 1; }
  # clang: gcc needs minutes for aggregators/sortnet.c on a target without AVX-512; DWARF 4:
  # valgrind 3.19 does not read clang 14's default DWARF 5
  cmake -S . -B build-valgrind -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS=-gdwarf-4 -DPX_NATIVE=OFF -DPX_VALGRIND=ON -DPX_CUDA=OFF \
    -DPX_WERROR="$WERROR" >/dev/null
  build build-valgrind trainer examples
  echo "sanitize: valgrind memcheck in build-valgrind/"
  (cd build-valgrind && ctest --output-on-failure -L '^valgrind$')
fi
echo "sanitize: ${stages[*]}: clean"
