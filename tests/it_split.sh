#!/usr/bin/env bash
# it_split.sh - the NCCL transport's protocol (comm/transport_split.c: headers over MPI, each
# payload over a channel once both sides agreed on it) on its CPU channel (comm/bulk_mpi.c),
# the code cluster.transport = NCCL runs, minus NCCL itself:
# - split_check (PX_SPLIT_PART=check: ctest it_split_check, also under ASan): every byte of
#   every message checked against its sender's pattern, varied lengths, a lagging rank skipped
#   and sent the full message, hostile sizes refused;
# - the trainer with PX_DEVICE_BACKEND=cpu, cluster.device = CUDA, transport NCCL vs MPI: a
#   transport moves bytes and decides nothing, so the final parameters must be bit-identical
#   (MLP, CNN, GPT with LISA's changing message sizes, the INT8 uplink and the delta downlink);
# - a straggler with cluster.f_wait: its messages arrive late, counted so, and it goes on;
# - a worker rank killed: the job ends within the timeout, naming the rank, with exit 1.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
if [ "${PX_SPLIT_PART:-}" = check ]; then # ctest it_split_check: the protocol, in every build
  for np in 3 5; do
    out=$(timeout 120 mpirun -np $np "$BUILD/tests/split_check" mpi 2>&1) || fail "split_check -np $np: $out"
    grep -q "split_check: ok on $np ranks over mpi" <<<"$out" || fail "split_check -np $np: $out"
    echo "ok: $out"
  done
  echo PASS
  exit 0
fi
if ! "$TRAINER" --version | grep -q "nccl: built in"; then
  echo "SKIPPED: this trainer was built without NCCL (cluster.transport = NCCL is refused)"
  exit 77
fi

DEV=(--set cluster.device=CUDA)
same_as_mpi() { # same_as_mpi NAME NP SETTINGS...: transport NCCL (CPU channel) vs MPI, bit for bit
  local name=$1 np=$2
  shift 2
  local t
  for t in MPI NCCL; do
    PX_DEVICE_BACKEND=cpu timeout 300 mpirun -np "$np" "$TRAINER" "${DEV[@]}" "$@" \
      --set cluster.transport=$t --set run.output_dir=$t "$EX/$name.pb" >${t}_$name.log 2>&1 ||
      fail "$name over $t: $(tail -5 ${t}_$name.log)"
  done
  grep -q "the NCCL transport's protocol with its payloads through MPI" NCCL_$name.log ||
    fail "$name: the trainer does not say how its messages travel: $(grep '^phalanx: MPI' NCCL_$name.log)"
  local a b
  a=$(sha256sum MPI/$name/params.npy | cut -d' ' -f1)
  b=$(sha256sum NCCL/$name/params.npy | cut -d' ' -f1)
  [ "$a" = "$b" ] || fail "$name (np $np, $*): params over NCCL's protocol $b differ from MPI's $a"
  echo "ok: $name (np $np, $*): params over the NCCL transport's protocol bit-identical to MPI's (${a:0:16})"
}
same_as_mpi tiny 4
same_as_mpi cnn 3 --set schedule.steps=30
same_as_mpi gpt_lisa 3 --set schedule.steps=30
same_as_mpi tiny 3 --set compression.uplink=INT8 --set compression.downlink=INT8 --set schedule.steps=200

# a straggler (30 ms late every step), the server going on without the slowest gradient: the
# straggler's message arrives late and is counted so, and its rank computes again after each
# (a worker's send waits until the server takes its message: if a late message were never taken,
# the straggler would send once and then stop, and late would stay at most 1)
PX_DEVICE_BACKEND=cpu timeout 300 mpirun -np 6 "$TRAINER" "${DEV[@]}" --set cluster.transport=NCCL \
  --set byzantine.count=1 --set byzantine.attack=STRAGGLER --set byzantine.mode=LOCAL \
  --set byzantine.delay_ms=30 --set cluster.f_wait=1 --set schedule.steps=2000 \
  --set schedule.log_every=100 --set run.output_dir=strag "$EX/tiny.pb" >strag.log 2>&1 ||
  fail "straggler: $(tail -5 strag.log)"
late=$(grep -o '"late":[0-9]*' strag/tiny/metrics.jsonl | cut -d: -f2 | awk '{s += $1} END {print s + 0}')
dropped=$(grep -o '"dropped":[0-9]*' strag/tiny/metrics.jsonl | cut -d: -f2 | awk '{s += $1} END {print s + 0}')
((late >= 3)) || fail "straggler: $late late messages over 2000 steps, expected at least 3"
((dropped == late)) || fail "straggler: $dropped drops, but only $late of them late"
echo "ok: a 30 ms straggler with f_wait over the NCCL transport's protocol: $late late messages, no other drop"

# a worker rank killed: no hang, the rank named, exit 1
SECONDS=0
PX_DEVICE_BACKEND=cpu timeout -k 10 120 bash "$SRC/launch/mpirun.sh" -np 4 "$TRAINER" "${DEV[@]}" \
  --set cluster.transport=NCCL --set schedule.steps=100000 --set cluster.timeout_ms=3000 \
  --set logging.progress=QUIET --set run.name=split$$ --set run.output_dir=runs "$EX/tiny.pb" \
  >dead.log 2>&1 &
job=$!
for _ in $(seq 1 300); do
  [ -s "runs/split$$/metrics.jsonl.partial" ] && break
  sleep 0.1
done
p=$(pid_of_rank split$$ 2 || true)
[ -n "$p" ] || fail "no rank 2 found"
kill -9 "$p"
rc=0
wait $job || rc=$?
[ "$rc" = 1 ] || { cat dead.log; fail "a killed worker rank: exit $rc, expected 1"; }
grep -qE "rank 2" dead.log || { cat dead.log; fail "the dead rank is not named"; }
echo "ok: worker rank 2 killed: exit 1 after $SECONDS s naming rank 2: $(grep -m1 -E 'rank 2' dead.log)"
echo PASS
