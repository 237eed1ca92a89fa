#!/usr/bin/env bash
# it_faults.sh - the server survives every bad-message class from a real worker under mpirun
# (NaN, Inf, 1e38, wrong length, wrong step, garbage, corrupted bytes): the run finishes, each
# class is counted, and no non-finite value reaches the model. A crashed worker with f_wait
# lets the run finish; without f_wait the run ends with exit 1 within the timeout. A straggler
# with f_wait costs nothing.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

# all_finite FILE: the float32 values of a .npy written by the trainer (128-byte header) hold no
# NaN or Inf
all_finite() { # grep -c reads everything (grep -q would stop early and od die of SIGPIPE)
  [ "$(od -A n -t f4 -v -j 128 "$1" | grep -ciE 'nan|inf')" = 0 ]
}

# drops FILE REASON: the count of REASON in the done line's "drops"
drops() {
  grep -o "\"$2\":[0-9]*" "$1" | tail -n 1 | cut -d: -f2
}

# 5 workers on ranks 1..3 (ranks 1 and 2 host two each); one Byzantine worker misbehaving at
# its own end (LOCAL); the server goes on with the first 4 gradients of each step
base=(--set cluster.workers=5 --set schedule.steps=60 --set schedule.eval_every=0
      --set byzantine.count=1 --set byzantine.mode=LOCAL --set cluster.f_wait=1
      --set cluster.timeout_ms=5000 --set logging.progress=QUIET)
for case in NAN:nonfinite INF:nonfinite LARGE:- WRONG_LENGTH:length WRONG_STEP:step \
            GARBAGE:magic CORRUPT:crc; do
  attack=${case%%:*} reason=${case#*:}
  name=bad_$attack
  timeout -k 10 120 mpirun -np 4 "$TRAINER" "${base[@]}" --set byzantine.attack=$attack \
    --set aggregator.rule=median --set run.name=$name "$EX/tiny.pb" >$name.log 2>&1 \
    || { cat $name.log; fail "$attack: the run failed"; }
  M=runs/$name/metrics.jsonl
  tail -n 1 "$M" | grep -q '"event":"done"' || fail "$attack: no done line"
  all_finite runs/$name/params.npy || fail "$attack: non-finite parameters"
  case $reason in
    -) ;;
    crc) n=$(( $(drops "$M" payload_crc) + $(drops "$M" header_crc) + $(drops "$M" magic) + $(drops "$M" length) )) ;;
    *) n=$(drops "$M" "$reason") ;;
  esac
  if [ "$reason" != - ]; then
    [ "${n:-0}" -gt 0 ] || fail "$attack: nothing counted as $reason"
  fi
  echo "ok: $attack: run finished, parameters finite${n:+, $reason drops $n}"
  n=
done

# the mean aggregator under 1e38 from one worker: the aggregate overflows, the model stays finite
timeout -k 10 120 mpirun -np 4 "$TRAINER" "${base[@]}" --set byzantine.attack=LARGE \
  --set aggregator.rule=mean --set run.name=large_mean "$EX/tiny.pb" >large_mean.log 2>&1 \
  || { cat large_mean.log; fail "LARGE with mean: the run failed"; }
all_finite runs/large_mean/params.npy || fail "LARGE with mean: non-finite parameters"
echo "ok: LARGE with mean: parameters finite"

# a worker that crashes at step 10: with f_wait = 1 the run finishes and reports it dead
crash=(--set cluster.workers=5 --set schedule.eval_every=0 --set byzantine.count=1
       --set byzantine.attack=CRASH --set byzantine.crash_step=10 --set cluster.timeout_ms=1500
       --set logging.progress=QUIET)
t0=$SECONDS
timeout -k 10 120 mpirun -np 6 "$TRAINER" "${crash[@]}" --set cluster.f_wait=1 \
  --set schedule.steps=4000 --set run.name=crash_fwait "$EX/tiny.pb" >crash_fwait.log 2>&1 \
  || { cat crash_fwait.log; fail "crash with f_wait: the run failed"; }
grep -q "treated as dead, 4 workers left" crash_fwait.log || { cat crash_fwait.log; fail "the crash was not reported"; }
grep -q '"workers_alive":4' runs/crash_fwait/metrics.jsonl || fail "workers_alive is not 4"
echo "ok: crash with f_wait: finished in $((SECONDS - t0)) s, $(grep -o 'worker [0-9]* (rank [0-9]*) sent no valid gradient' crash_fwait.log)"

# without f_wait the run ends with exit 1 within the timeout, naming the rank
t0=$SECONDS
rc=0
timeout -k 10 120 mpirun -np 6 "$TRAINER" "${crash[@]}" --set schedule.steps=4000 \
  --set run.name=crash_strict "$EX/tiny.pb" >crash_strict.log 2>&1 || rc=$?
took=$((SECONDS - t0))
[ $rc = 1 ] || { cat crash_strict.log; fail "crash without f_wait: exit $rc, expected 1"; }
[ $took -le 30 ] || fail "crash without f_wait took $took s"
grep -q "step 10: no gradient from rank" crash_strict.log || { cat crash_strict.log; fail "no message naming the rank"; }
echo "ok: crash without f_wait: exit 1 after $took s: $(grep -o 'step 10: no gradient from rank [0-9]*' crash_strict.log)"

# a straggler (1 s per send) with f_wait = 1: 200 steps take far less than 200 s
t0=$SECONDS
timeout -k 10 120 mpirun -np 6 "$TRAINER" --set cluster.workers=5 --set schedule.steps=200 \
  --set byzantine.count=1 --set byzantine.attack=STRAGGLER --set byzantine.delay_ms=1000 \
  --set cluster.f_wait=1 --set cluster.timeout_ms=5000 --set run.name=straggler \
  --set logging.progress=QUIET "$EX/tiny.pb" >straggler.log 2>&1 \
  || { cat straggler.log; fail "straggler: the run failed"; }
took=$((SECONDS - t0))
[ $took -le 30 ] || fail "the straggler slowed the run to $took s"
acc=$(json_num runs/straggler/metrics.jsonl test_acc)
ge "$acc" 0.8 || fail "straggler run: accuracy $acc"
echo "ok: straggler with f_wait: 200 steps in $took s, test_acc $acc"
echo "PASS"
