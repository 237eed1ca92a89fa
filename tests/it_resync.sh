#!/usr/bin/env bash
# it_resync.sh - parameter messages relative to the previous step (the int8 downlink's deltas,
# LISA's changed groups) reach a worker rank that missed one only as full parameters: a worker
# rank frozen (SIGSTOP) for a while under f_wait misses steps; the server skips it and, once it
# takes messages again, sends it the full parameters. The run must finish (a worker that got a
# relative message after a gap refuses it and ends the run, naming both steps), and the done
# line must count full parameter messages beyond the first step's.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

# freeze NAME STEPS ARGS...: an mpirun -np 4 job; rank 2 frozen for 0.8 s once it trains
freeze() {
  local name=$1 steps=$2
  shift 2
  timeout -k 10 180 mpirun -np 4 "$TRAINER" --set run.name="$name" --set schedule.steps="$steps" \
    --set schedule.eval_every=0 --set schedule.log_every=1 --set cluster.workers=3 \
    --set cluster.f_wait=1 --set cluster.step_timeout_ms=100 --set cluster.timeout_ms=20000 \
    --set logging.progress=QUIET "$@" "$EX/tiny.pb" >"$name.log" 2>&1 &
  local job=$!
  for _ in $(seq 1 300); do
    [ -s "runs/$name/metrics.jsonl.partial" ] && [ "$(wc -l <"runs/$name/metrics.jsonl.partial")" -ge 5 ] && break
    sleep 0.1
  done
  local pid
  pid=$(pid_of_rank "$name" 2) || { cat "$name.log"; fail "$name: no rank 2 training"; }
  kill -STOP "$pid"
  sleep 0.8
  kill -CONT "$pid" 2>/dev/null || true # (the job may have ended meanwhile: its exit tells)
  # the run must go on after the freeze, or there is no one to resynchronise
  [ -s "runs/$name/metrics.jsonl.partial" ] ||
    fail "$name: the run ended while rank 2 was frozen: give it more steps"
  local rc=0
  wait "$job" || rc=$?
  [ "$rc" = 0 ] || { grep -v '^|' "$name.log"; fail "$name: exit $rc after rank 2 was frozen"; }
  # the done line counts the full parameter messages: one per worker rank at the start, and
  # more for every rank that missed a message
  local full
  full=$(json_num "runs/$name/metrics.jsonl" full_params_sent)
  [ -n "$full" ] && [ "$full" -gt 3 ] ||
    fail "$name: $full full parameter messages sent: none after the first step's 3"
  echo "ok: $name: rank 2 frozen 0.8 s: exit 0, $full full parameter messages (3 at the start)"
}

freeze int8_down 3000 --set compression.downlink=INT8 --set cluster.transport=MPI
freeze int8_down_shm 3000 --set compression.downlink=INT8 --set cluster.transport=SHM
freeze lisa_down 6000 --set model.kind=GPT --set model.blocks=4 --set model.width=16 \
  --set model.heads=2 --set model.context=16 --set data.dataset=FORTUNES --set data.path= \
  --set data.batch_size=4 --set data.test_limit=16 --set optimizer.kind=ADAMW \
  --set optimizer.lr=0.003 --set lisa.enabled=true --set lisa.gamma=1 --set lisa.period=10
echo PASS
