#!/usr/bin/env bash
# it_determinism.sh - with a fixed seed the final parameters are bit-identical from run to run,
# and the one-process run equals the MPI runs (the random streams belong to logical workers,
# not to ranks or threads), on any thread count: a lone worker on 1 and 2 threads (its GEMMs
# are not split across threads), and MPI ranks with cluster.threads = 2.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
steps=(--set schedule.steps=120 --set schedule.eval_every=0)

run() { # name, the launcher and its arguments, then -- and the trainer's own arguments
  local name=$1
  shift
  local launcher=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do launcher+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  "${launcher[@]}" "$TRAINER" "${steps[@]}" --set run.name="$name" "$@" "$EX/tiny.pb" \
    >"$name.log" 2>&1 || { cat "$name.log"; fail "run $name failed"; }
  [ -s "runs/$name/params.npy" ] || fail "run $name wrote no parameters"
}
run local_a env
run local_b env
run local_t1 env
"$TRAINER" "${steps[@]}" --set run.name=local_t1 --set cluster.threads=1 "$EX/tiny.pb" >local_t1.log 2>&1
run mpi4 timeout -k 10 300 mpirun -np 4
run mpi3 timeout -k 10 300 mpirun -np 3
run mpi6 timeout -k 10 300 mpirun -np 6
run mpi8 timeout -k 10 300 mpirun -np 8 # 5 workers on 7 ranks: two ranks host none

run mpi4_t2 timeout -k 10 300 mpirun -np 4 -- --set cluster.threads=2
# one logical worker: every thread would be free for its GEMMs
one=(--set cluster.workers=1)
run one_t1 env -- "${one[@]}" --set cluster.threads=1
run one_t2 env -- "${one[@]}" --set cluster.threads=2
run one_mpi_t2 timeout -k 10 300 mpirun -np 2 -- "${one[@]}" --set cluster.threads=2

cmp runs/local_a/params.npy runs/local_b/params.npy || fail "two one-process runs differ"
echo "ok: one-process runs are bit-identical"
cmp runs/local_a/params.npy runs/local_t1/params.npy || fail "1 thread and several threads differ"
echo "ok: thread count does not change the result"
cmp runs/one_t1/params.npy runs/one_t2/params.npy || fail "1 worker: 1 and 2 threads differ"
cmp runs/one_t1/params.npy runs/one_mpi_t2/params.npy || fail "1 worker: alone != MPI, 2 threads"
echo "ok: one worker on 1 thread == on 2 threads == under MPI with 2 threads"
for m in mpi4 mpi3 mpi6 mpi8 mpi4_t2; do
  cmp runs/local_a/params.npy runs/$m/params.npy || fail "one-process and $m differ"
  echo "ok: one-process == $m"
done
# a different seed gives different parameters (the comparison can fail)
"$TRAINER" "${steps[@]}" --set run.name=seed2 --set run.seed=8 "$EX/tiny.pb" >seed2.log 2>&1
if cmp -s runs/local_a/params.npy runs/seed2/params.npy; then fail "seed has no effect"; fi
echo "PASS"
