#!/usr/bin/env bash
# it_state.sh - the run state round trip: a run saves its state after step k
# (logging.save_state_step), a fresh process loads it (trainer --load-state) and continues;
# its final parameters are bit-identical to the uninterrupted run's -- one process and MPI, and
# across rank counts (the state belongs to the server and to logical workers, not to ranks).
# The config exercises every section: momentum (optimizer state), an int8 uplink with error
# feedback (worker residuals), an int8 downlink (the server's replica), and the Flag Aggregator
# with warm start (the rule's state). A state of another run, or a corrupt one, is refused.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
cfg=(--set schedule.steps=40 --set schedule.eval_every=0 --set schedule.log_every=10
  --set compression.uplink=INT8 --set compression.error_feedback=true
  --set compression.downlink=INT8 --set aggregator.rule=flag --set aggregator.warm_start=true
  --set logging.progress=QUIET)

run() { # name, launcher..., then extra trainer arguments after --
  local name=$1
  shift
  local launcher=()
  while [ "$1" != -- ]; do launcher+=("$1"); shift; done
  shift
  "${launcher[@]}" "$TRAINER" "${cfg[@]}" --set run.name="$name" "$@" "$EX/tiny.pb" \
    >"$name.log" 2>&1 || { cat "$name.log"; fail "run $name failed"; }
  [ -s "runs/$name/params.npy" ] || fail "run $name wrote no parameters"
}
MPI=(timeout -k 10 300 mpirun)

run whole env -- --set logging.save_state_step=17
[ -s runs/whole/state_step17/server.pxs ] || fail "no server state written"
for w in 0 1 2 3 4; do
  [ -s runs/whole/state_step17/worker_$w.pxs ] || fail "no state of worker $w"
done
grep -q '"event":"done"' runs/whole/metrics.jsonl || fail "no done line"

run resumed env -- --load-state runs/whole/state_step17
cmp runs/whole/params.npy runs/resumed/params.npy || fail "one process: resumed != uninterrupted"
grep -q '"resumed_at":17' runs/resumed/metrics.jsonl || fail "the done line lacks resumed_at"
echo "ok: one process, saved at step 17 and resumed: bit-identical"

run mpi_whole "${MPI[@]}" -np 4 -- --set logging.save_state_step=23
cmp runs/whole/params.npy runs/mpi_whole/params.npy || fail "MPI run != one-process run"
run mpi_resumed "${MPI[@]}" -np 4 -- --load-state runs/mpi_whole/state_step23
cmp runs/whole/params.npy runs/mpi_resumed/params.npy || fail "MPI 4 ranks: resumed differs"
echo "ok: mpirun -np 4, saved at step 23 and resumed: bit-identical"
run mpi3_resumed "${MPI[@]}" -np 3 -- --load-state runs/mpi_whole/state_step23
cmp runs/whole/params.npy runs/mpi3_resumed/params.npy || fail "resumed on 3 ranks differs"
run local_from_mpi env -- --load-state runs/mpi_whole/state_step23
cmp runs/whole/params.npy runs/local_from_mpi/params.npy || fail "MPI state resumed alone differs"
echo "ok: a state saved on 4 ranks resumes on 3 ranks and in one process, bit-identical"

# a GPT with LISA and AdamW: the per-group moments and step counts, and the plan (a function
# of seed and step) continue as if never interrupted
gpt=(--set model.kind=GPT --set model.blocks=3 --set model.width=16 --set model.heads=2
  --set model.context=16 --set data.dataset=FORTUNES --set data.path= --set data.batch_size=4
  --set data.test_limit=16 --set optimizer.kind=ADAMW --set optimizer.lr=0.003
  --set lisa.enabled=true --set lisa.gamma=1 --set lisa.period=5 --set compression.uplink=FP32
  --set compression.error_feedback=false --set compression.downlink=FP32)
run gpt_whole env -- "${gpt[@]}" --set logging.save_state_step=13
run gpt_resumed "${MPI[@]}" -np 3 -- "${gpt[@]}" --load-state runs/gpt_whole/state_step13
cmp runs/gpt_whole/params.npy runs/gpt_resumed/params.npy || fail "GPT + LISA + AdamW: resumed differs"
echo "ok: a GPT with LISA and AdamW saved at step 13 and resumed under MPI: bit-identical"

# refusals: another shape of run, a corrupt section, a missing worker file
expect_exit 2 "seed" "$TRAINER" "${cfg[@]}" --set run.name=bad --set run.seed=8 \
  --load-state runs/whole/state_step17 "$EX/tiny.pb"
expect_exit 2 "parameters" "$TRAINER" "${cfg[@]}" --set run.name=bad --set model.hidden=32 \
  --load-state runs/whole/state_step17 "$EX/tiny.pb"
cp -r runs/whole/state_step17 corrupt
size=$(stat -c %s corrupt/server.pxs)
printf '\x55' | dd of=corrupt/server.pxs bs=1 seek=$((size / 2)) conv=notrunc status=none
expect_exit 2 "corrupt (CRC-32C mismatch)" "$TRAINER" "${cfg[@]}" --set run.name=bad \
  --load-state corrupt "$EX/tiny.pb"
cp -r runs/whole/state_step17 partial
rm partial/worker_3.pxs
expect_exit 2 "worker_3.pxs" "$TRAINER" "${cfg[@]}" --set run.name=bad --load-state partial \
  "$EX/tiny.pb"
head -c 100 runs/whole/state_step17/server.pxs >partial/server.pxs
expect_exit 2 "truncated" "$TRAINER" "${cfg[@]}" --set run.name=bad --load-state partial \
  "$EX/tiny.pb"
echo PASS
