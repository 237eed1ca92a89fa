#!/usr/bin/env bash
# it_stall.sh - a rank that stalls or dies ends the job with a clear error naming it, within the
# configured timeout; nothing hangs. Real processes: a worker rank is frozen with SIGSTOP, the
# server rank is frozen, a worker rank is killed with SIGKILL.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

# start_job NAME: a long run (it would take hours) with a 2 s timeout, in the background
start_job() {
  timeout -k 10 120 mpirun -np 4 "$TRAINER" --set run.name="$1" --set schedule.steps=10000000 \
    --set schedule.eval_every=0 --set schedule.log_every=1 --set cluster.timeout_ms=2000 \
    "$EX/tiny.pb" >"$1.log" 2>&1 &
  JOB=$!
  # wait until it trains (a running job's lines are in metrics.jsonl.partial)
  for _ in $(seq 1 200); do
    [ -s "runs/$1/metrics.jsonl.partial" ] && [ "$(wc -l <"runs/$1/metrics.jsonl.partial")" -ge 5 ] && return 0
    sleep 0.1
  done
  cat "$1.log"
  fail "$1: the job did not start training"
}

# finish_job NAME MESSAGE: the job must end non-zero within 30 s and say MESSAGE
finish_job() {
  local t0=$SECONDS rc=0
  wait "$JOB" || rc=$?
  local took=$((SECONDS - t0))
  [ "$rc" != 0 ] || fail "$1: the job exited 0"
  [ "$rc" != 124 ] || fail "$1: the job hung (killed by timeout)"
  [ "$took" -le 30 ] || fail "$1: the job took $took s to end"
  grep -qF "$2" "$1.log" || { cat "$1.log"; fail "$1: no message '$2'"; }
  echo "ok: $1 ended with exit $rc after $took s: $(grep -F "$2" "$1.log" | head -n 1)"
}

start_job stall_worker
pid=$(pid_of_rank stall_worker 2) || fail "no rank 2"
kill -STOP "$pid"
finish_job stall_worker "no gradient from rank 2"
kill -CONT "$pid" 2>/dev/null || true

start_job stall_server
pid=$(pid_of_rank stall_server 0) || fail "no rank 0"
kill -STOP "$pid"
finish_job stall_server "no message from the server (rank 0)"
kill -CONT "$pid" 2>/dev/null || true

start_job dead_worker
pid=$(pid_of_rank dead_worker 3) || fail "no rank 3"
kill -KILL "$pid"
finish_job dead_worker "rank 3"
echo "PASS"
