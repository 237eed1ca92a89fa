#!/usr/bin/env bash
# it_federated.sh - federated rounds on Fashion-MNIST:
# - FedAvg with one local step, every client and equal IID parts is distributed SGD with the mean
#   (the same batches: a client's data order continues across rounds as a worker's does), up to
#   float rounding (update = global - local, then theta - 1 x update);
# - one process and mpirun -np 4 give the same final model bit for bit (fl_dirichlet);
# - FedLD's aggregation with partial participation (which the reference code cannot run);
# - Byzantine clients: 2 of 10 send their update reversed x10: the mean collapses, the median
#   and the Flag Aggregator keep training.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
q=(--set logging.progress=QUIET)
maxdiff() { # the largest |a - b| over two float32 .npy files
  paste <(od -A n -t f4 -v -j 128 "$1" | tr -s ' ' '\n' | grep .) \
    <(od -A n -t f4 -v -j 128 "$2" | tr -s ' ' '\n' | grep .) |
    awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { printf "%g\n", m }'
}

eq=(--set data.train_limit=12000 --set model.hidden=64 --set schedule.steps=50
  --set schedule.eval_every=0 --set optimizer.momentum=0 --set optimizer.schedule=CONSTANT
  --set data.partition=IID "${q[@]}")
"$TRAINER" "${eq[@]}" --set run.name=dist --set optimizer.lr=0.05 "$EX/tiny.pb" >dist.log 2>&1 ||
  { cat dist.log; fail "distributed run failed"; }
"$TRAINER" "${eq[@]}" --set run.name=fed --set federated.enabled=true --set federated.clients=5 \
  --set federated.sample_fraction=1 --set federated.local_steps=1 --set federated.local_lr=0.05 \
  --set optimizer.lr=1 "$EX/tiny.pb" >fed.log 2>&1 || { cat fed.log; fail "federated run failed"; }
d=$(maxdiff runs/dist/params.npy runs/fed/params.npy)
ge 1e-5 "$d" || fail "FedAvg (1 local step) and distributed SGD differ by $d"
cmp -s runs/dist/params.npy runs/fed/params.npy && fail "identical bytes: the federated path was not taken"
grep -q '"round":50' runs/fed/metrics.jsonl || fail "no round key in the federated metrics"
echo "ok: FedAvg with one local step = distributed SGD with the mean (largest difference $d)"

fl=(--set schedule.steps=3 "${q[@]}")
"$TRAINER" "${fl[@]}" "$EX/fl_dirichlet.pb" >fl1.log 2>&1 || { cat fl1.log; fail "fl_dirichlet alone failed"; }
timeout -k 10 300 mpirun -np 4 "$TRAINER" "${fl[@]}" --set run.name=fl4 "$EX/fl_dirichlet.pb" \
  >fl4.log 2>&1 || { cat fl4.log; fail "fl_dirichlet under MPI failed"; }
cmp runs/fl_dirichlet/params.npy runs/fl4/params.npy || fail "one process and MPI differ"
for k in test_acc test_loss train_loss; do
  [ "$(json_num runs/fl_dirichlet/metrics.jsonl $k)" = "$(json_num runs/fl4/metrics.jsonl $k)" ] ||
    fail "$k differs between one process and MPI"
done
[ -s runs/fl_dirichlet/partition.csv ] || fail "no partition.csv"
[ "$(wc -l <runs/fl_dirichlet/partition.csv)" = 21 ] || fail "partition.csv lacks the 20 clients"
echo "ok: fl_dirichlet: one process == mpirun -np 4, bit for bit; the label histogram written"

"$TRAINER" "${q[@]}" --set run.name=partial --set federated.sample_fraction=0.3 \
  --set schedule.steps=6 --set data.alpha=0.5 "$EX/fl_dirichlet.pb" >partial.log 2>&1 ||
  { cat partial.log; fail "FedLD with 6 of 20 clients a round failed"; }
grep -q '"clients":6' runs/partial/metrics.jsonl || fail "not 6 clients a round"
a=$(json_num runs/partial/metrics.jsonl test_acc)
ge "$a" 0.6 || fail "FedLD with partial participation reaches $a"
echo "ok: FedLD aggregates 6 of 20 clients a round: test_acc $a"

byz=(--set federated.clients=10 --set federated.sample_fraction=1 --set data.partition=IID
  --set federated.objective=FEDAVG --set byzantine.count=2 --set byzantine.mode=LOCAL
  --set byzantine.attack=REVERSE --set byzantine.scale=10 --set aggregator.f=2
  --set schedule.steps=4 "${q[@]}")
for rule in mean median flag; do
  "$TRAINER" "${byz[@]}" --set aggregator.rule=$rule --set run.name="byz_$rule" \
    "$EX/fl_dirichlet.pb" >"byz_$rule.log" 2>&1 || { cat "byz_$rule.log"; fail "$rule failed"; }
done
m=$(json_num runs/byz_mean/metrics.jsonl test_acc)
ge 0.3 "$m" || fail "the mean under 2 reversed clients still reaches $m"
for rule in median flag; do
  a=$(json_num "runs/byz_$rule/metrics.jsonl" test_acc)
  ge "$a" 0.7 || fail "$rule under 2 reversed clients reaches $a"
  echo "ok: $rule keeps training with 2 of 10 clients Byzantine: $a (the mean: $m)"
done
# the same partitioners in distributed mode: heterogeneous workers, each on its own part
"$TRAINER" "${q[@]}" --set run.name=hetero --set data.partition=DIRICHLET --set data.alpha=0.1 \
  --set schedule.steps=100 "$EX/tiny.pb" >hetero.log 2>&1 || { cat hetero.log; fail "distributed Dirichlet run failed"; }
[ "$(wc -l <runs/hetero/partition.csv)" = 6 ] || fail "no partition.csv for the 5 workers"
a=$(json_num runs/hetero/metrics.jsonl test_acc)
ge "$a" 0.5 || fail "5 workers on Dirichlet(0.1) parts reach $a"
echo "ok: distributed mode with Dirichlet(0.1) parts per worker: test_acc $a"
expect_exit 2 "federated.sample_fraction = 0" "$TRAINER" --set federated.sample_fraction=0 "$EX/fl_dirichlet.pb"
echo PASS
