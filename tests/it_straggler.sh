#!/usr/bin/env bash
# it_straggler.sh - a straggler under cluster.f_wait keeps taking part: the server goes on with
# the first n - f_wait gradients of each step, takes the straggler's message when it comes (a
# step or more late, counted as `late`), and the straggler's rank then computes and sends again.
# Run over every transport: one process (LOCAL), MPI and SHM on 6 ranks (one worker per rank).
#
# What is asserted, and why it tells a rank that rejoins from one that does not: 5 workers,
# f_wait = 1, so a step uses exactly 4 gradients (workers_used never exceeds n - f_wait, so it
# cannot show the straggler). While no message of the straggler is taken, the 4 honest ones
# make each step's quorum and none of them is ever late; each straggler message the server
# takes during the run adds one late message (itself, or an honest one it displaced from the
# quorum by arriving in time). A rank computes its next gradient only once its previous message
# has been taken (worker loop: sends_done; one process: in_flight). So late_total >= 3 means the
# straggler computed and was heard from again at least twice after its first message was taken.
# Expected here: about one late message per delay (2000 steps of tiny last about 1-3 s, 30-100
# delays of 30 ms); the bound of 3 leaves room for a slow, shared machine. A run shorter than a
# few delays could not tell (a 40-step run of tiny ends before a 300 ms straggler's first send
# is due, and its messages are then discarded by the stop): the run length is checked too.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

DELAY_MS=30
args=(--set cluster.workers=5 --set schedule.steps=2000 --set schedule.eval_every=0
      --set schedule.log_every=100 --set byzantine.count=1 --set byzantine.attack=STRAGGLER
      --set byzantine.mode=LOCAL --set byzantine.delay_ms=$DELAY_MS --set cluster.f_wait=1
      --set logging.progress=QUIET)

# check NAME: the done line's counts
check() {
  local name=$1 M=runs/$1/metrics.jsonl
  tail -n 1 "$M" | grep -q '"event":"done"' || fail "$name: no done line"
  local late dropped train_s
  late=$(json_num "$M" late_total)
  dropped=$(json_num "$M" dropped_total)
  train_s=$(json_num "$M" train_s)
  # the premise: the run lasted at least 10 delays, so that the straggler could send often
  ge "$train_s" "$(awk -v d=$DELAY_MS 'BEGIN { print 10 * d / 1000 }')" \
    || fail "$name: the run took $train_s s, too short to judge a $DELAY_MS ms straggler"
  ge "$late" 3 || fail "$name: $late late messages in $train_s s: the straggler was not heard from again after its first message (expected about one per $DELAY_MS ms)"
  [ "$dropped" = "$late" ] || fail "$name: $dropped messages dropped, but only $late were late"
  echo "ok: $name: $late late messages from the straggler's rank in $train_s s (one per $DELAY_MS ms would be $(awk -v t="$train_s" -v d=$DELAY_MS 'BEGIN { printf "%d", t * 1000 / d }'))"
}

timeout -k 10 120 "$TRAINER" "${args[@]}" --set run.name=strag_local "$EX/tiny.pb" \
  >strag_local.log 2>&1 || { cat strag_local.log; fail "LOCAL: the run failed"; }
check strag_local
for tr in MPI SHM; do
  name=strag_$(tr 'A-Z' 'a-z' <<<"$tr")
  timeout -k 10 120 mpirun -np 6 "$TRAINER" "${args[@]}" --set cluster.transport=$tr \
    --set run.name=$name "$EX/tiny.pb" >$name.log 2>&1 || { cat $name.log; fail "$tr: the run failed"; }
  check $name
done
echo PASS
