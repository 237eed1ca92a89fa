#!/usr/bin/env bash
# quickstart.sh - set-up (launch/setup.sh), then the main job: 1 server + 7 workers under
# mpirun on the default config, training an MLP on Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
source launch/env.sh
# all 8 ranks on this machine: messages through shared memory (cluster.transport = SHM;
# AUTO, the default, means MPI under mpirun)
exec mpirun -np 8 build/trainer --set cluster.transport=SHM "$@" build/examples/quickstart.pb
