#!/usr/bin/env bash
# it_hostile_rank.sh - no sender can overflow a receiver's buffer. A hostile MPI program
# (tests/hostile_rank.c) joins a trainer job as rank 3 and sends the server a 1,000,000-byte
# message (five times the largest legal one), an empty one and a 47-byte one (a byte short of
# a header), never a gradient:
#   a. with cluster.f_wait covering its worker the run finishes and counts the three messages as
#      length drops naming rank 3;
#   b. without f_wait the run ends with exit 1 naming rank 3 within the timeout;
#   c. a further message over the transport's drain limit (64 MiB) is counted, not taken in;
#   d. as rank 0 it sends the worker ranks a 1,000,000-byte message in place of the parameters:
#      they end the job with exit 1 naming the server.
# Never a signal, never a hang.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
HOSTILE=$BUILD/tests/hostile_rank
[ -x "$HOSTILE" ] || fail "no $HOSTILE (build the tests)"
DRAIN_MAX=$((64 << 20)) # comm/transport.h PX_MPI_DRAIN_MAX_BYTES

# drops FILE REASON: the count of REASON in the done line's "drops"
drops() {
  grep -o "\"$2\":[0-9]*" "$1" | tail -n 1 | cut -d: -f2
}

# mpi_job NAME MPIRUN_ARGS...: runs mpirun under a timeout, output to NAME.log; sets RC and
# TOOK. The job must end by itself: not killed by the timeout, no rank dead of a signal.
mpi_job() {
  local name=$1 t0=$SECONDS
  shift
  RC=0
  timeout -k 10 180 mpirun "$@" >"$name.log" 2>&1 || RC=$?
  TOOK=$((SECONDS - t0))
  [ "$RC" != 124 ] && [ "$RC" != 137 ] || { cat "$name.log"; fail "$name: the job hung (killed by timeout after $TOOK s)"; }
  [ "$RC" -lt 128 ] || { cat "$name.log"; fail "$name: the job died of a signal (exit $RC)"; }
  if grep -qiE 'exited on signal|segmentation fault|SIGSEGV|signal 11' "$name.log"; then
    cat "$name.log"
    fail "$name: a rank died of a signal"
  fi
}

# hostile_job NAME HOSTILE_ARGS -- TRAINER_ARGS...: ranks 0..2 are trainers, rank 3 the hostile
# program (tiny's 5 workers on ranks 1..3: rank 3 hosts worker 2 alone)
hostile_job() {
  local name=$1 hargs=()
  shift
  while [ "$1" != -- ]; do hargs+=("$1"); shift; done
  shift
  # the hostile program speaks MPI: the trainers must too (AUTO would take shared memory)
  mpi_job "$name" -np 3 "$TRAINER" "$EX/tiny.pb" --set run.name="$name" --set cluster.transport=MPI \
    --set logging.progress=QUIET --set schedule.eval_every=0 --set aggregator.rule=mean "$@" \
    : -np 1 "$HOSTILE" "${hargs[@]}"
}

fwait=(--set cluster.f_wait=1 --set cluster.step_timeout_ms=500 --set cluster.timeout_ms=5000
       --set schedule.steps=40)

# a: f_wait = 1 covers worker 2 (rank 3): the run finishes and counts the three messages
hostile_job hostile_fwait 60000 -- "${fwait[@]}"
[ "$RC" = 0 ] || { cat hostile_fwait.log; fail "a, with f_wait: exit $RC, expected 0"; }
M=runs/hostile_fwait/metrics.jsonl
tail -n 1 "$M" | grep -q '"event":"done"' || fail "a, with f_wait: no done line"
length=$(drops "$M" length)
total=$(json_num "$M" dropped_total)
[ "${length:-0}" = 3 ] || { cat hostile_fwait.log; fail "a, with f_wait: $length length drops, expected 3"; }
[ "${total:-0}" -ge 3 ] || fail "a, with f_wait: dropped_total = $total, expected at least 3"
for bytes in 1000000 0 47; do
  grep -qE "dropped a message from rank 3: length \(rank 3 sent $bytes bytes" hostile_fwait.log \
    || { cat hostile_fwait.log; fail "a, with f_wait: no drop of rank 3's $bytes-byte message logged"; }
done
echo "ok: a, hostile rank with f_wait: exit 0 after $TOOK s, length drops $length, dropped_total $total"
grep -E "dropped a message from rank 3" hostile_fwait.log | sed 's/^/    /'

# b: without f_wait every worker is required: exit 1 naming rank 3, within the timeout
hostile_job hostile_strict 60000 -- --set cluster.timeout_ms=3000 --set schedule.steps=1000
[ "$RC" = 1 ] || { cat hostile_strict.log; fail "b, without f_wait: exit $RC, expected 1"; }
grep -q "no gradient from rank 3" hostile_strict.log \
  || { cat hostile_strict.log; fail "b, without f_wait: no message naming rank 3"; }
[ "$TOOK" -le 60 ] || fail "b, without f_wait: the job took $TOOK s to end"
echo "ok: b, hostile rank without f_wait: exit 1 after $TOOK s: $(grep -o 'step [0-9]*: no gradient from rank 3[^:]*' hostile_strict.log | head -n 1)"

# c: one more message, a byte over the drain limit: counted and named, never taken in
hostile_job hostile_huge 60000 $((DRAIN_MAX + 1)) -- "${fwait[@]}"
[ "$RC" = 0 ] || { cat hostile_huge.log; fail "c, over the drain limit: exit $RC, expected 0"; }
length=$(drops runs/hostile_huge/metrics.jsonl length)
[ "${length:-0}" = 4 ] || { cat hostile_huge.log; fail "c, over the drain limit: $length length drops, expected 4"; }
grep -qF "rank 3 sent $((DRAIN_MAX + 1)) bytes, more than the largest legal message" hostile_huge.log \
  && grep -qF "not taken in" hostile_huge.log \
  || { cat hostile_huge.log; fail "c, over the drain limit: the message is not reported as not taken in"; }
echo "ok: c, a message over the drain limit: exit 0 after $TOOK s, length drops $length"

# d: a hostile server: each worker rank refuses the oversized message and the job ends, exit 1
mpi_job hostile_server -np 1 "$HOSTILE" 60000 : -np 2 "$TRAINER" "$EX/tiny.pb" \
  --set run.name=hostile_server --set cluster.transport=MPI --set logging.progress=QUIET \
  --set cluster.timeout_ms=3000
[ "$RC" = 1 ] || { cat hostile_server.log; fail "d, hostile server: exit $RC, expected 1"; }
grep -qE "rank [12]: a broken message from the server \(rank 0\): rank 0 sent 1000000 bytes, more than" \
  hostile_server.log || { cat hostile_server.log; fail "d, hostile server: no message naming it"; }
echo "ok: d, hostile server: exit 1 after $TOOK s: $(grep -o 'rank [12]: a broken message.*' hostile_server.log | head -n 1)"
echo "PASS"
