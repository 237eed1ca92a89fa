#!/usr/bin/env bash
# test.sh - set-up (launch/setup.sh), then every test through ctest.
#   launch/test.sh                 all tests
#   launch/test.sh -L unit         only the unit tests (any ctest arguments pass through)
set -euo pipefail
cd "$(dirname "$0")/.."
PX_WERROR=${PX_WERROR:-ON} bash launch/setup.sh
source launch/env.sh
cd "${PX_BUILD_DIR:-build}"
ctest --output-on-failure -j 2 "$@"
