#!/usr/bin/env bash
# quickstart.sh - set-up (launch/setup.sh), then the main job: 1 server + 7 workers under
# mpirun on the default config, training an MLP on Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
source launch/env.sh
exec mpirun -np 8 build/trainer "$@" build/examples/quickstart.pb
