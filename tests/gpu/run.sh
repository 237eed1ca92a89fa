#!/usr/bin/env bash
# tests/gpu/run.sh - every device check, in one command, on a machine with a GPU:
#   bash tests/gpu/run.sh            (from the repository root; about 5-10 minutes)
# 1. builds build-gpu/ with CUDA and NCCL forced on (PX_CUDA=ON; CUDA_ARCHS overrides 80;90)
# 2. test_device: the device abstraction's round trips on the CUDA backend
# 3. gpu_check: each kernel against its CPU twin (relative-error limit per tensor), the
#    aggregators and codecs against the CPU (codec wire bytes bit for bit)
# 4. gpu_models: each model's whole training step (MLP, CNN, GPT) through the trainer's device
#    path (model_device.h), CPU vs CUDA: the first gradient within 1e-4, 50 SGD steps' loss
#    curves within 1e-3, the parameters after them within 1e-3; and the GPU step's samples/s
#    against one CPU thread and as a share of the SGEMM rate measured in the run
# 5. split_check nccl under mpirun -np (GPUs, at most 4; needs 2: NCCL takes one GPU per rank):
#    the NCCL transport (headers over MPI, payloads GPU to GPU), every byte of every message
#    checked, a lagging rank, hostile sizes refused
# 6. the trainer: examples/quickstart_cuda.pb (300 steps) under mpirun -np 2 with the workers on
#    the GPU, and the same config with cluster.device = CPU (both with transport AUTO: one GPU
#    suffices): both finish, and their test accuracies agree within 2 points; with 2 GPUs or more
#    also over transport NCCL, whose parameters must equal the AUTO run's (a transport moves
#    bytes: GPU workers over AUTO and over NCCL compute the same steps)
# Prints a summary. Exit 0 when everything that ran passed, 1 when something failed, 77 when
# this machine has no usable GPU (nothing was run: a skip, not a pass).
set -uo pipefail
cd "$(dirname "$0")/../.."
SRC=$(pwd)
START=$(date +%s)

gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
fi
if [ "$gpus" -lt 1 ]; then
  echo "tests/gpu/run.sh: no GPU on this machine (nvidia-smi finds none, or no driver):"
  echo "  nothing was built, run or verified; exit 77 (skip)"
  exit 77
fi
[ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null ||
  { echo "tests/gpu/run.sh: $gpus GPU(s) but no CUDA toolkit (nvcc): cannot build; exit 77"; exit 77; }

source launch/env.sh
BUILD=${PX_GPU_BUILD_DIR:-build-gpu}
declare -a NAMES RESULTS
record() { NAMES+=("$1"); RESULTS+=("$2"); echo "== $1: $2"; }

echo "== building $BUILD (PX_CUDA=ON) on $gpus GPU(s): $(nvidia-smi -L | head -1)"
arch_flag=()
[ -n "${CUDA_ARCHS:-}" ] && arch_flag=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS")
if cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPX_CUDA=ON -DPX_WERROR=OFF "${arch_flag[@]}" \
     >"$BUILD.configure.log" 2>&1 &&
   cmake --build "$BUILD" -j "$(nproc)" --target trainer examples test_device gpu_check gpu_models split_check \
     >"$BUILD.build.log" 2>&1; then
  record build "ok ($(( $(date +%s) - START )) s)"
else
  tail -30 "$BUILD.configure.log" "$BUILD.build.log" 2>/dev/null
  record build FAILED
  echo "tests/gpu/run.sh: the build failed; nothing else can run"
  exit 1
fi

run_step() { # run_step NAME TIMEOUT_S CMD...: records ok / FAILED (rc) / SKIPPED (77)
  local name=$1 limit=$2
  shift 2
  local rc=0
  timeout -k 10 "$limit" "$@" 2>&1 | tee "$BUILD/$name.log" || rc=${PIPESTATUS[0]}
  case $rc in
    0) record "$name" ok ;;
    77) record "$name" "SKIPPED (nothing verified)" ;;
    124 | 137) record "$name" "FAILED (timed out after $limit s)" ;;
    *) record "$name" "FAILED (exit $rc)" ;;
  esac
}

run_step test_device 60 "$BUILD/tests/test_device"
run_step gpu_check 300 "$BUILD/tests/gpu_check"
run_step gpu_models 300 "$BUILD/tests/gpu_models"
if [ "$gpus" -ge 2 ]; then
  np=$((gpus < 4 ? gpus : 4))
  run_step "split_check_nccl_np$np" 120 mpirun -np "$np" "$BUILD/tests/split_check" nccl
else
  record split_check_nccl "SKIPPED (needs 2 GPUs: NCCL takes one GPU per rank; this machine has 1)"
fi
# the trainer: the quickstart with its workers on the GPU, and on the CPU, same seed
acc_of() { grep -o '"test_acc":[0-9.]*' "$1" | tail -1 | cut -d: -f2; }
for dev in CUDA CPU; do
  rc=0
  timeout -k 10 240 mpirun -np 2 "$BUILD/trainer" --set schedule.steps=300 --set schedule.eval_every=100 \
    --set cluster.device=$dev --set cluster.transport=AUTO --set run.output_dir="$BUILD/runs_$dev" \
    "$BUILD/examples/quickstart_cuda.pb" >"$BUILD/trainer_$dev.log" 2>&1 || rc=$?
  tail -3 "$BUILD/trainer_$dev.log"
  [ "$rc" = 0 ] || { tail -20 "$BUILD/trainer_$dev.log"; record "trainer_quickstart_$dev" "FAILED (exit $rc)"; }
done
a_gpu=$(acc_of "$BUILD/runs_CUDA/quickstart_cuda/metrics.jsonl" 2>/dev/null || true)
a_cpu=$(acc_of "$BUILD/runs_CPU/quickstart_cuda/metrics.jsonl" 2>/dev/null || true)
if [ -n "$a_gpu" ] && [ -n "$a_cpu" ] &&
   awk -v a="$a_gpu" -v b="$a_cpu" 'BEGIN { d = a - b; exit !(d < 0.02 && d > -0.02) }'; then
  record trainer_quickstart_cuda "ok (test_acc GPU workers $a_gpu, CPU workers $a_cpu)"
else
  record trainer_quickstart_cuda "FAILED (test_acc GPU workers '${a_gpu}', CPU workers '${a_cpu}')"
fi

# the same GPU run over NCCL (one GPU per rank)
if [ "$gpus" -ge 2 ]; then
  rc=0
  timeout -k 10 240 mpirun -np 2 "$BUILD/trainer" --set schedule.steps=300 --set schedule.eval_every=100 \
    --set run.output_dir="$BUILD/runs_NCCL" "$BUILD/examples/quickstart_cuda.pb" \
    >"$BUILD/trainer_NCCL.log" 2>&1 || rc=$?
  tail -3 "$BUILD/trainer_NCCL.log"
  p_auto=$(sha256sum "$BUILD/runs_CUDA/quickstart_cuda/params.npy" 2>/dev/null | cut -d' ' -f1)
  p_nccl=$(sha256sum "$BUILD/runs_NCCL/quickstart_cuda/params.npy" 2>/dev/null | cut -d' ' -f1)
  if [ "$rc" = 0 ] && grep -q "payloads GPU to GPU through NCCL" "$BUILD/trainer_NCCL.log" &&
     [ -n "$p_nccl" ] && [ "$p_nccl" = "$p_auto" ]; then
    record trainer_quickstart_nccl "ok (params identical to the AUTO run's, ${p_nccl:0:16})"
  else
    record trainer_quickstart_nccl "FAILED (exit $rc; params ${p_nccl:-none} vs AUTO ${p_auto:-none})"
  fi
else
  record trainer_quickstart_nccl "SKIPPED (needs 2 GPUs: NCCL takes one GPU per rank; this machine has 1)"
fi

echo
echo "==== tests/gpu/run.sh summary ($(( $(date +%s) - START )) s, $(nvidia-smi -L | head -1))"
fail=0
for i in "${!NAMES[@]}"; do
  printf '  %-26s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}"
  case ${RESULTS[$i]} in FAILED* | UNEXPECTED*) fail=1 ;; esac
done
grep -h "^bench" "$BUILD/gpu_models.log" 2>/dev/null | sed 's/^/  /'
exit $fail
