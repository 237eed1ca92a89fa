#!/usr/bin/env bash
# it_quickstart.sh - the main job as the README runs it: `mpirun -np 8 trainer quickstart.pb`
# (1 server + 7 workers, 2 of them sending their gradient reversed and scaled by 10, the Flag
# Aggregator) reaches 85% test accuracy; the one --set that switches to the mean makes it
# diverge (the attack bites, and the Flag Aggregator is what stops it).
source "$(dirname "$0")/lib.sh"
cd "$WORK"
t0=$SECONDS
timeout -k 10 600 mpirun -np 8 "$TRAINER" "$EX/quickstart.pb" >fa.log 2>&1 || { cat fa.log; fail "the quickstart failed"; }
took=$((SECONDS - t0))
grep -q "MPI job of 8 ranks: server on rank 0, 7 logical workers" fa.log || fail "not 1 server + 7 workers"
acc=$(json_num runs/quickstart/metrics.jsonl test_acc)
ge "$acc" 0.85 || fail "the quickstart reaches $acc < 0.85"
grep -q '"aggregator":"flag","attack":"reverse","byzantine":2' runs/quickstart/metrics.jsonl || fail "the done line does not show flag under reverse"
echo "ok: quickstart (flag, 2 of 7 workers reversed x10): test_acc $acc in $took s"
timeout -k 10 600 mpirun -np 8 "$TRAINER" --set aggregator.rule=mean --set run.name=qs_mean \
  "$EX/quickstart.pb" >mean.log 2>&1 || { cat mean.log; fail "the quickstart with the mean failed"; }
acc=$(json_num runs/qs_mean/metrics.jsonl test_acc)
ge 0.3 "${acc:-0}" || fail "with the mean the quickstart still reaches $acc"
echo "ok: the same job with --set aggregator.rule=mean collapses: test_acc ${acc:-null}"
echo "PASS"
