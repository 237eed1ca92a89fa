#!/usr/bin/env bash
# it_shm.sh - the shared-memory transport (cluster.transport = SHM) in real trainer jobs:
#   a. tiny on 4 ranks over SHM ends with parameters bit-identical to the MPI transport's and
#      the one-process run's, with the same message bytes counted (bytes_up/bytes_down totals);
#   b. 15 workers on 4 ranks (several slots per rank) and a delta downlink (int8 deltas, each rank
#      holding its replica): bit-identical to MPI;
#   c. with a straggler worker and cluster.f_wait (messages arriving a step late, dropped as
#      late): the same parameters and drop counts as MPI;
#   d. SHM without mpirun is refused (exit 2), and no job leaves a segment in /dev/shm.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
before=$(ls /dev/shm | grep -c '^phalanx-' || true)

# job NAME TRANSPORT NP ARGS...: one run (NP 1 = without mpirun); prints the params' sha256
job() {
  local name=$1 tr=$2 np=$3
  shift 3
  local cmd=("$TRAINER" "$EX/tiny.pb" --set run.name="$name" --set logging.progress=QUIET "$@")
  if [ "$np" = 1 ]; then
    timeout -k 10 300 "${cmd[@]}" >"$name.log" 2>&1 || { cat "$name.log"; fail "$name failed"; }
  else
    timeout -k 10 300 mpirun -np "$np" "${cmd[@]}" --set cluster.transport="$tr" >"$name.log" 2>&1 \
      || { cat "$name.log"; fail "$name failed"; }
  fi
  sha256sum "runs/$name/params.npy" | cut -d' ' -f1
}
same() { # what A B
  [ "$2" = "$3" ] || fail "$1: $2 != $3"
  echo "ok: $1: $2"
}

# a
one=$(job one LOCAL 1)
mpi=$(job mpi MPI 4)
shm=$(job shm SHM 4)
grep -q "messages through shared memory" shm.log || fail "a: the SHM job does not say it uses shared memory"
same "a, tiny: SHM = MPI" "$shm" "$mpi"
same "a, tiny: SHM = one process" "$shm" "$one"
for k in bytes_up_total bytes_down_total dropped_total; do
  same "a, $k" "$(json_num runs/shm/metrics.jsonl $k)" "$(json_num runs/mpi/metrics.jsonl $k)"
done

# b
b=(--set cluster.workers=15 --set schedule.steps=60 --set compression.downlink=INT8)
same "b, 15 workers on 3 ranks, int8 deltas down: SHM = MPI" "$(job shm15 SHM 4 "${b[@]}")" "$(job mpi15 MPI 4 "${b[@]}")"

# c: worker 1 is 40 ms late on every step; f_wait = 1 goes on without it
c=(--set schedule.steps=40 --set cluster.f_wait=1 --set cluster.step_timeout_ms=20
   --set byzantine.count=1 --set byzantine.attack=STRAGGLER --set byzantine.delay_ms=40)
cs=$(job shm_late SHM 4 "${c[@]}")
cm=$(job mpi_late MPI 4 "${c[@]}")
echo "c, straggler: SHM $(json_num runs/shm_late/metrics.jsonl late_total) late, MPI $(json_num runs/mpi_late/metrics.jsonl late_total) late"
ge "$(json_num runs/shm_late/metrics.jsonl late_total)" 1 || fail "c: no late message counted over SHM"

# d
expect_exit 2 "cluster.transport = SHM needs mpirun" "$TRAINER" "$EX/tiny.pb" --set cluster.transport=SHM
after=$(ls /dev/shm | grep -c '^phalanx-' || true)
[ "$after" -le "$before" ] || { ls -l /dev/shm; fail "d: segments left in /dev/shm ($before before, $after after)"; }
echo "ok: d, no segment left in /dev/shm"
echo PASS
