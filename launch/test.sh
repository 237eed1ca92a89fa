#!/usr/bin/env bash
# test.sh - set-up (launch/setup.sh), then every test through ctest, then the sanitizer stage
# (launch/sanitize.sh: ASan + UBSan, fuzzing, valgrind), which is what CI runs.
#   launch/test.sh                 all tests, then the sanitizer stage
#   launch/test.sh -L unit         only the unit tests (any ctest arguments pass through; with
#                                  arguments the sanitizer stage is skipped)
#   PX_SANITIZE=0 launch/test.sh   the main suite only
#   PX_SANITIZE=full launch/test.sh   every integration test under ASan too
set -euo pipefail
cd "$(dirname "$0")/.."
PX_WERROR=${PX_WERROR:-ON} bash launch/setup.sh
source launch/env.sh
(cd "${PX_BUILD_DIR:-build}" && ctest --output-on-failure -j 2 "$@")
if (($# == 0)) && [ "${PX_SANITIZE:-1}" != 0 ]; then
  PX_WERROR=${PX_WERROR:-ON} bash launch/sanitize.sh
fi
