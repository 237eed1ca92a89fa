#!/usr/bin/env bash
# it_train_mpi.sh - real training under Open MPI: `mpirun -np 4 trainer tiny.pb` (1 server, 5
# workers on 3 ranks) reaches 82% test accuracy on Fashion-MNIST (it reaches about 85% in 300
# steps; chance is 10%), writes well-formed metrics, and 15 workers run on 4 ranks.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

timeout -k 10 300 mpirun -np 4 "$TRAINER" "$EX/tiny.pb" >out.txt 2>&1 || { cat out.txt; fail "mpirun -np 4 tiny.pb failed"; }
cat out.txt
M=runs/tiny/metrics.jsonl
[ -s "$M" ] || fail "no metrics at $M"
tail -n 1 "$M" | grep -q '"event":"done"' || fail "the last metrics line is not the done line"
acc=$(json_num "$M" test_acc)
ge "$acc" 0.82 || fail "test accuracy $acc below 0.82"
echo "ok: test_acc $acc >= 0.82"
for key in step epoch train_loss step_ms agg_ms comm_ms bytes_up bytes_down dropped; do
  head -n 1 "$M" | grep -q "\"$key\":" || fail "metrics line lacks $key"
done
for key in steps wall_s test_loss train_loss bytes_up_total bytes_down_total; do
  tail -n 1 "$M" | grep -q "\"$key\":" || fail "done line lacks $key"
done
grep -q '"world":4' "$M" || fail "the run did not use 4 ranks"
[ "$(json_num "$M" dropped_total)" = 0 ] || fail "messages were dropped in a clean run"
# each of the 300 steps moves 5 gradients up; the header is 48 bytes, the payload 50890 floats
[ "$(json_num "$M" bytes_up_total)" = $((300 * 5 * (48 + 50890 * 4))) ] || fail "bytes_up_total"
[ -s runs/tiny/params.npy ] || fail "no params.npy"

# 15 logical workers on 3 worker ranks (round-robin)
timeout -k 10 300 mpirun -np 4 "$TRAINER" --set cluster.workers=15 --set schedule.steps=60 \
  --set run.name=w15 "$EX/tiny.pb" >out15.txt 2>&1 || { cat out15.txt; fail "15 workers on -np 4"; }
grep -q "15 logical workers on ranks 1..3" out15.txt || fail "no round-robin mapping line"
grep -q '"workers_used":15' runs/w15/metrics.jsonl || fail "not every worker contributed"
echo "PASS"
