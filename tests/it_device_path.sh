#!/usr/bin/env bash
# it_device_path.sh - the workers' device path (model_device.h: parameters and batch copied to a
# device, the model's executor pass there, the gradient copied back) through the whole engine,
# on the CPU backend of base/device.h (PX_DEVICE_BACKEND=cpu): the code cluster.device = CUDA
# runs, minus the kernels.
# Independent reasons: CNN and GPT compute their CPU step with the same executor pass, so the
# final parameters must be the plain run's bit for bit, alone and under mpirun; the MLP's device
# pass is a second formulation of its fused CPU pass (test_exec_models checks the two agree to
# rounding), so the quickstart must reach the plain run's accuracy within a point.
# The server's side (server_device.h): the Gram matrix formed over device memory by another
# formulation (double loops) and handed to the rule's sharded form: Krum outputs one input
# verbatim, so its run is the plain run's bit for bit; FA's weights move by rounding only (within
# a point of accuracy); the coordinate-wise rules (below) give the plain run's params; a rule
# without a sharded form stays on the CPU and the trainer says so.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

params_sha() { sha256sum "$1/$2/params.npy" | cut -d' ' -f1; }

same_params() { # same_params NAME NP SETTINGS...: plain run vs device path, params bit for bit
  local name=$1 np=$2
  shift 2
  local launch=()
  ((np > 1)) && launch=(mpirun -np "$np")
  "${launch[@]}" "$TRAINER" "$@" --set run.output_dir=plain "$EX/$name.pb" >plain_$name.log 2>&1 ||
    fail "$name: the plain run failed: $(tail -5 plain_$name.log)"
  PX_DEVICE_BACKEND=cpu "${launch[@]}" "$TRAINER" "$@" --set run.output_dir=dev "$EX/$name.pb" \
    >dev_$name.log 2>&1 || fail "$name: the device-path run failed: $(tail -5 dev_$name.log)"
  local a b
  a=$(params_sha plain "$name")
  b=$(params_sha dev "$name")
  [ "$a" = "$b" ] || fail "$name (np $np): device path params $b differ from the plain run's $a"
  echo "ok: $name (np $np, $*): device path params bit-identical to the plain run's (${a:0:16})"
}

same_params cnn 1 --set schedule.steps=60
same_params gpt_lisa 1 --set schedule.steps=30
same_params gpt_full 3 --set schedule.steps=20

# the MLP: another formulation of the same step, the same accuracy
"$TRAINER" --set schedule.steps=600 --set run.output_dir=plain "$EX/tiny.pb" >plain_tiny.log 2>&1 ||
  fail "tiny: the plain run failed"
PX_DEVICE_BACKEND=cpu "$TRAINER" --set schedule.steps=600 --set run.output_dir=dev "$EX/tiny.pb" \
  >dev_tiny.log 2>&1 || fail "tiny: the device-path run failed: $(tail -5 dev_tiny.log)"
a=$(json_num plain/tiny/metrics.jsonl test_acc)
b=$(json_num dev/tiny/metrics.jsonl test_acc)
awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }' ||
  fail "tiny: device path test_acc $b vs plain $a (more than a point apart)"
ge "$b" 0.70 || fail "tiny: device path test_acc $b below 0.70"
echo "ok: tiny (MLP): device path test_acc $b, plain $a"

# the server's Gram matrix on the device path
same_params cnn 1 --set schedule.steps=60 --set aggregator.rule=krum
grep -q "the server aggregates on cpu (the Gram matrix" dev_cnn.log ||
  fail "krum: the trainer does not say the server's Gram matrix is on the device: $(grep '^phalanx' dev_cnn.log)"
same_params cnn 3 --set schedule.steps=40 --set aggregator.rule=multi_krum
# coordinate-wise rules: the device path computes each coordinate with px_cw_coordinate, the
# function the CPU rules are checked against bit for bit (test_coord_math): the same params; a
# step with NaN inputs goes to the CPU path (it drops them and lowers f), the same params again
same_params cnn 1 --set schedule.steps=40 --set aggregator.rule=median
grep -q "the server aggregates on cpu (the coordinate-wise rule" dev_cnn.log ||
  fail "median: the trainer does not say the device computes it: $(grep '^phalanx' dev_cnn.log)"
same_params cnn 1 --set schedule.steps=40 --set aggregator.rule=trimmed_mean --set aggregator.f=2
same_params cnn 3 --set schedule.steps=40 --set aggregator.rule=meamed --set aggregator.f=2
same_params cnn 1 --set schedule.steps=40 --set aggregator.rule=median --set byzantine.count=2 \
  --set byzantine.attack=NAN
# a sharded server: each shard's device computes its slice, from the flags summed over shards
same_params cnn 4 --set schedule.steps=30 --set cluster.server_shards=2 --set aggregator.rule=median
for rule in bulyan cclip; do
  PX_DEVICE_BACKEND=cpu "$TRAINER" --set schedule.steps=5 --set aggregator.rule=$rule --set aggregator.f=1 \
    --set run.output_dir=dev "$EX/cnn.pb" >dev_$rule.log 2>&1 || fail "$rule: $(tail -5 dev_$rule.log)"
  grep "the server aggregates on the CPU (" dev_$rule.log | grep -q "$rule" ||
    fail "$rule: the trainer does not say the server aggregates on the CPU and why: $(grep '^phalanx' dev_$rule.log)"
  echo "ok: $rule: $(grep 'the server aggregates' dev_$rule.log)"
done
for mode in plain dev; do
  backend=
  [ $mode = dev ] && backend=cpu
  PX_DEVICE_BACKEND=$backend "$TRAINER" --set schedule.steps=60 --set aggregator.rule=flag \
    --set run.output_dir=$mode "$EX/cnn.pb" >${mode}_flag.log 2>&1 ||
    fail "flag ($mode): $(tail -5 ${mode}_flag.log)"
done
a=$(json_num plain/cnn/metrics.jsonl test_acc)
b=$(json_num dev/cnn/metrics.jsonl test_acc)
awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }' ||
  fail "flag: the Gram matrix on the device path gives test_acc $b vs the plain run's $a"
echo "ok: flag (FA): Gram matrix on the device path test_acc $b, plain $a"
