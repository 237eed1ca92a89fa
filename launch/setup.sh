#!/usr/bin/env bash
# setup.sh - installs what is missing (Debian packages), then configures and builds into build/.
#
# Idempotent: a second run installs nothing, reconfigures nothing that is current, and rebuilds
# only what changed. Needs root (or sudo) only when a package is missing.
#   launch/setup.sh            install + build (Release)
#   PX_WERROR=ON launch/setup.sh   warnings as errors (what CI uses)
#   PX_CUDA=OFF launch/setup.sh    without the CUDA/NCCL code even where the toolkit exists
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config
  openmpi-bin libopenmpi-dev
  libopenblas-dev liblapacke-dev
  libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libcmocka-dev zlib1g-dev
  clang libclang-rt-14-dev llvm valgrind # the sanitizer stage (launch/sanitize.sh)
  dataset-fashion-mnist fortunes
  python3-numpy # tests/adaptive_ref.py: the attacks' independent reference
  python3-matplotlib # bench/robustness's plots
  # launch/slurm/ and tests/it_slurm.sh: a one-node Slurm (slurmctld, slurmd, clients, munge);
  # Slurm's mpi/pmix plugin loads libpmix.so, which only libpmix-dev provides
  slurm-wlm munge libpmix-dev
  # tests/cluster/: simulated hosts (ip netns, veth, bridge, tc), sysctl and pgrep
  iproute2 procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null
  $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD=${PX_BUILD_DIR:-build}
WERROR=${PX_WERROR:-OFF}
# The CUDA and NCCL code is built wherever the toolkit is installed (ON: a broken toolkit is an
# error, not a silent CPU-only build), and left out where it is not; PX_CUDA=OFF skips it.
# Building it needs no GPU; the CPU tests run either way.
if [ -z "${PX_CUDA:-}" ]; then
  PX_CUDA=AUTO
  [ -x /usr/local/cuda/bin/nvcc ] && PX_CUDA=ON
fi
if [ ! -f "$BUILD/CMakeCache.txt" ] || ! grep -q "^PX_WERROR:BOOL=$WERROR$" "$BUILD/CMakeCache.txt" ||
  ! grep -q "^PX_CUDA:STRING=$PX_CUDA$" "$BUILD/CMakeCache.txt"; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPX_WERROR="$WERROR" -DPX_CUDA="$PX_CUDA" >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" 2>&1 | grep -v -E "^\[ *[0-9]+%\]|^gmake|^make" || true
test -x "$BUILD/trainer" || { echo "setup: build failed (no $BUILD/trainer)" >&2; exit 1; }
echo "setup: built into $BUILD/"
