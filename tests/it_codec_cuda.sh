#!/usr/bin/env bash
# it_codec_cuda.sh BUILD_DIR SOURCE_DIR - the codec's per-element math (comm/codec_math.h) must
# compile as CUDA device code: nvcc builds tests/codec_math_device.cu, whose kernel calls every
# function of the header. Passes with a note when no nvcc is installed (CPU-only machines).
set -euo pipefail
build=$1
src=$2
nvcc=$(command -v nvcc || true)
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
if [ -z "$nvcc" ]; then
  echo "it_codec_cuda: no nvcc found; device compilation not checked"
  exit 0
fi
"$nvcc" -std=c++17 -arch=sm_80 -Werror all-warnings -I"$src" \
  -c "$src/tests/codec_math_device.cu" -o "$build/codec_math_device.o"
echo "it_codec_cuda: comm/codec_math.h compiles as device code ($("$nvcc" --version | tail -1))"
