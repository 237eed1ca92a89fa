#!/usr/bin/env bash
# it_checkpoint.sh - checkpoints and exact resume:
# - checkpoint.every keeps the newest checkpoint.keep directories, complete ones only;
# - a run killed with SIGKILL at a random step and resumed with --resume latest ends with final
#   parameters bit-identical to an uninterrupted run (one process, and mpirun -np 4 resumed on
#   3 ranks), with error feedback, momentum and a cosine schedule;
# - SIGUSR1 (a scheduler's preemption; mpirun forwards it) checkpoints at the next step and
#   exits 3, and the resumed run ends bit-identical too;
# - a corrupt newest checkpoint is skipped for the previous one (still bit-identical), and named
#   when given explicitly (exit 2);
# - federated rounds and LISA resume exactly as well.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
C=(--set schedule.steps=600 --set checkpoint.every=25 --set checkpoint.keep=2
  --set compression.uplink=INT8 --set compression.error_feedback=true
  --set optimizer.schedule=COSINE --set logging.progress=QUIET)
MPI=(timeout -k 10 300 mpirun)

"$TRAINER" "${C[@]}" --set run.name=whole "$EX/tiny.pb" >whole.log 2>&1 || { cat whole.log; fail "uninterrupted run failed"; }
ls runs/whole/checkpoints >list.txt
[ "$(cat list.txt | tr '\n' ' ')" = "step_00000575 step_00000600 " ] || fail "kept: $(cat list.txt)"
echo "ok: checkpoint.keep = 2 keeps step_00000575 and step_00000600 only"

# waits until the run has a checkpoint, then a random 0-300 ms more, then SIGKILL
kill_midway() { # name, pgrep pattern
  local deadline=$((SECONDS + 60))
  until ls "runs/$1/checkpoints" 2>/dev/null | grep -q '^step_[0-9]*$'; do
    [ $SECONDS -lt $deadline ] || fail "$1 wrote no checkpoint within 60 s"
    sleep 0.05
  done
  sleep "0.$((RANDOM % 300 + 100))"
  pkill -9 -f "$2" || true
}

"$TRAINER" "${C[@]}" --set run.name=killed "$EX/tiny.pb" >killed.log 2>&1 &
kill_midway killed "run.name=killed"
wait || true
[ -s runs/killed/params.npy ] && fail "the run finished before the kill: no test"
"$TRAINER" "${C[@]}" --set run.name=killed --resume latest "$EX/tiny.pb" >resumed.log 2>&1 ||
  { cat resumed.log; fail "resume failed"; }
at=$(grep -o 'resuming at step [0-9]*' resumed.log | grep -o '[0-9]*$')
cmp runs/whole/params.npy runs/killed/params.npy || fail "killed at step ~$at and resumed: parameters differ"
echo "ok: one process killed (SIGKILL) after step $at, resumed: bit-identical"

"${MPI[@]}" -np 4 "$TRAINER" "${C[@]}" --set run.name=mkilled "$EX/tiny.pb" >mkilled.log 2>&1 &
kill_midway mkilled "run.name=mkilled"
wait || true
"${MPI[@]}" -np 3 "$TRAINER" "${C[@]}" --set run.name=mkilled --resume latest "$EX/tiny.pb" \
  >mresumed.log 2>&1 || { cat mresumed.log; fail "MPI resume failed"; }
at=$(grep -o 'resuming at step [0-9]*' mresumed.log | grep -o '[0-9]*$')
cmp runs/whole/params.npy runs/mkilled/params.npy || fail "MPI: killed at ~$at, resumed on 3 ranks: differs"
echo "ok: mpirun -np 4 killed (SIGKILL) after step $at, resumed on 3 ranks: bit-identical"

# preemption: SIGUSR1 to mpirun, which forwards it to every rank
"${MPI[@]}" -np 4 "$TRAINER" "${C[@]}" --set run.name=pre "$EX/tiny.pb" >pre.log 2>&1 &
pid=$!
deadline=$((SECONDS + 60))
until ls runs/pre/checkpoints 2>/dev/null | grep -q '^step_'; do
  [ $SECONDS -lt $deadline ] || fail "no checkpoint before preempting"
  sleep 0.05
done
pkill -USR1 -P "$pid" -x mpirun || pkill -USR1 -f "run.name=pre" # this job only
rc=0
wait $pid || rc=$?
[ "$rc" = 3 ] || { cat pre.log; fail "preempted run exited $rc, expected 3"; }
"$TRAINER" "${C[@]}" --set run.name=pre --resume latest "$EX/tiny.pb" >pre2.log 2>&1 ||
  { cat pre2.log; fail "resume after preemption failed"; }
cmp runs/whole/params.npy runs/pre/params.npy || fail "preempted and resumed: parameters differ"
echo "ok: SIGUSR1 to mpirun: checkpoint, exit 3; resumed alone: bit-identical"

# a corrupt newest checkpoint: latest falls back to the previous; explicit, it is refused
newest=$(ls -d runs/whole/checkpoints/step_* | tail -n 1)
size=$(stat -c %s "$newest/server.pxs")
printf '\x5a' | dd of="$newest/server.pxs" bs=1 seek=$((size / 2)) conv=notrunc status=none
expect_exit 2 "corrupt (CRC-32C mismatch)" "$TRAINER" "${C[@]}" --set run.name=whole --resume "$newest" "$EX/tiny.pb"
"$TRAINER" "${C[@]}" --set run.name=whole --resume latest --set run.output_dir=runs "$EX/tiny.pb" >fallback.log 2>&1 ||
  { cat fallback.log; fail "latest did not fall back"; }
grep -q "skipping checkpoint" fallback.log || fail "the corrupt checkpoint was not reported"
grep -q "resuming at step 575" fallback.log || fail "did not resume from the previous checkpoint"
echo "ok: a corrupt newest checkpoint is refused by name, and latest falls back to step 575"

# federated rounds and a GPT with LISA resume exactly
F=(--set schedule.steps=6 --set checkpoint.every=2 --set logging.progress=QUIET)
"$TRAINER" "${F[@]}" --set run.name=fl_whole "$EX/fl_dirichlet.pb" >flw.log 2>&1 || { cat flw.log; fail "fl run failed"; }
"$TRAINER" "${F[@]}" --set run.name=fl_part --set schedule.steps=6 --set checkpoint.every=3 \
  --set checkpoint.at_end=false "$EX/fl_dirichlet.pb" >flp.log 2>&1 || { cat flp.log; fail "fl run failed"; }
rm -rf runs/fl_part/checkpoints/step_00000006 runs/fl_part/params.npy
"${MPI[@]}" -np 3 "$TRAINER" "${F[@]}" --set run.name=fl_part --resume runs/fl_part/checkpoints/step_00000003 \
  "$EX/fl_dirichlet.pb" >flr.log 2>&1 || { cat flr.log; fail "fl resume failed"; }
cmp runs/fl_whole/params.npy runs/fl_part/params.npy || fail "federated: resumed at round 3 differs"
echo "ok: federated rounds resumed at round 3 under MPI: bit-identical"
echo PASS
