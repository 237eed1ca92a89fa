#!/usr/bin/env bash
# it_outputs.sh - a run's outputs are never lost or mixed:
# - a second run with the same run.name while the first runs is refused (exit 2, naming the
#   holder's process) and the first finishes untouched;
# - a run killed midway leaves an earlier complete run's metrics.jsonl and params.npy byte for
#   byte (its own lines are in metrics.jsonl.partial);
# - a resumed run's metrics continue the killed run's: every step once, in order, done line last;
# - a metrics write that fails (/dev/full) ends the run with exit 1 naming the file; a
#   metrics_path in directories that do not exist yet creates them.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
q=(--set logging.progress=QUIET)

"$TRAINER" "${q[@]}" --set schedule.steps=4000 --set run.name=busy "$EX/tiny.pb" >busy.log 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -s runs/busy/.lock ] && break; sleep 0.05; done
expect_exit 2 "is in use by process $pid" "$TRAINER" "${q[@]}" --set run.name=busy "$EX/tiny.pb"
wait $pid || { cat busy.log; fail "the first run failed"; }
grep -q '"event":"done"' runs/busy/metrics.jsonl || fail "the first run's metrics lack the done line"
echo "ok: a second run of run.name busy was refused while the first ran; the first completed"

C=(--set schedule.steps=800 --set checkpoint.every=50 "${q[@]}")
"$TRAINER" "${C[@]}" --set run.name=keep "$EX/tiny.pb" >keep1.log 2>&1 || { cat keep1.log; fail "first run failed"; }
before=$(sha256sum runs/keep/metrics.jsonl runs/keep/params.npy)
"$TRAINER" "${C[@]}" --set run.name=keep --set checkpoint.dir=runs/keep/ck2 "$EX/tiny.pb" >keep2.log 2>&1 &
pid=$!
for _ in $(seq 1 400); do ls runs/keep/ck2 2>/dev/null | grep -q '^step_' && break; sleep 0.05; done
sleep 0.2
kill -9 $pid
wait $pid || true
after=$(sha256sum runs/keep/metrics.jsonl runs/keep/params.npy)
[ "$before" = "$after" ] || fail "the killed rerun changed the earlier run's outputs"
[ -s runs/keep/metrics.jsonl.partial ] || fail "the killed run's lines are not in metrics.jsonl.partial"
echo "ok: a rerun killed midway left the earlier metrics.jsonl and params.npy byte for byte"

"$TRAINER" "${C[@]}" --set run.name=keep --set checkpoint.dir=runs/keep/ck2 --resume latest \
  "$EX/tiny.pb" >keep3.log 2>&1 || { cat keep3.log; fail "resume failed"; }
steps=$(grep -o '^{"step":[0-9]*' runs/keep/metrics.jsonl | cut -d: -f2 | tr '\n' ' ')
want=$(seq 10 10 800 | tr '\n' ' ')
[ "$steps" = "$want" ] || fail "resumed metrics steps: $steps"
tail -n 1 runs/keep/metrics.jsonl | grep -q '"event":"done"' || fail "no done line last"
[ ! -e runs/keep/metrics.jsonl.partial ] || fail "a partial file is left after the resumed run completed"
echo "ok: the resumed run's metrics hold every step once, in order, and the done line"

expect_exit 1 "/dev/full" "$TRAINER" "${q[@]}" --set run.name=full --set logging.metrics_path=/dev/full "$EX/tiny.pb"
"$TRAINER" "${q[@]}" --set run.name=nested --set schedule.steps=20 \
  --set logging.metrics_path="$WORK/a/b/c/m.jsonl" "$EX/tiny.pb" >nested.log 2>&1 || { cat nested.log; fail "nested metrics path"; }
grep -q '"event":"done"' a/b/c/m.jsonl || fail "no metrics in a/b/c/m.jsonl"
echo "ok: a metrics path in new directories creates them"
echo PASS
