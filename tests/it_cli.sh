#!/usr/bin/env bash
# it_cli.sh - the trainer's command line: help, version, and exit status 2 with a message naming
# the field, the rule and the value for every class of bad input; --print-config round trip.
source "$(dirname "$0")/lib.sh"

expect_exit 0 "usage: trainer" "$TRAINER" --help
expect_exit 0 "median" "$TRAINER" --help
# the aggregator parameters with their defaults, read from the aggregator library
"$TRAINER" --help >"$WORK/help.txt"
grep -Eq "^  iters +default 4 +\[flag\]" "$WORK/help.txt" || fail "trainer --help: aggregator iters default"
grep -Eq "^  kappa +default 0.8 " "$WORK/help.txt" || fail "trainer --help: aggregator kappa default"
grep -Eq "\(in \(0, 1\]\)" "$WORK/help.txt" || fail "trainer --help: kappa's range"
grep -Eq "^  init +default pca " "$WORK/help.txt" || fail "trainer --help: aggregator init default"
grep -Eq "^  (layers|fedld_history) " "$WORK/help.txt" && fail "trainer --help lists a key the config lacks"
echo "ok: trainer --help lists the aggregator defaults"
expect_exit 0 "phalanx trainer" "$TRAINER" --version
expect_exit 2 "no config file" "$TRAINER"
expect_exit 2 "unknown option '--frobnicate'" "$TRAINER" --frobnicate "$EX/tiny.pb"
expect_exit 2 "more than one config" "$TRAINER" "$EX/tiny.pb" "$EX/tiny.pb"

# files that are not a config
expect_exit 2 "cannot open config" "$TRAINER" "$WORK/missing.pb"
: >"$WORK/empty.pb"
expect_exit 2 "is empty" "$TRAINER" "$WORK/empty.pb"
expect_exit 2 "looks like text" "$TRAINER" "$SRC/examples/tiny.txtpb"
head -c 4000 /dev/urandom >"$WORK/random.pb"
expect_exit 2 "not a valid config.pb" "$TRAINER" "$WORK/random.pb"
size=$(stat -c %s "$EX/quickstart.pb")
head -c $((size - 3)) "$EX/quickstart.pb" >"$WORK/truncated.pb"
expect_exit 2 "not a valid config.pb" "$TRAINER" "$WORK/truncated.pb"
expect_exit 2 "is a directory" "$TRAINER" "$WORK"

# overrides that do not parse
expect_exit 2 "optimizer has no field 'lrr'" "$TRAINER" --set optimizer.lrr=1 "$EX/tiny.pb"
expect_exit 2 "expected a finite number, got 'fast'" "$TRAINER" --set optimizer.lr=fast "$EX/tiny.pb"
expect_exit 2 "is not one of AUTO, MPI, LOCAL, SHM, NCCL" "$TRAINER" --set cluster.transport=udp "$EX/tiny.pb"
expect_exit 2 "--set needs" "$TRAINER" "$EX/tiny.pb" --set

# configs that break a rule: each names the field, the rule and the value
expect_exit 2 "cluster.workers = 0 must be in [1, 4096]" "$TRAINER" --set cluster.workers=0 "$EX/tiny.pb"
expect_exit 2 "data.batch_size = 0 must be in [1, 65536]" "$TRAINER" --set data.batch_size=0 "$EX/tiny.pb"
expect_exit 2 "optimizer.lr = -1 must be > 0" "$TRAINER" --set optimizer.lr=-1 "$EX/tiny.pb"
expect_exit 2 "optimizer.momentum = 1 must be in [0, 1)" "$TRAINER" --set optimizer.momentum=1 "$EX/tiny.pb"
expect_exit 2 "unknown aggregation rule 'krum9'" "$TRAINER" --set aggregator.rule=krum9 "$EX/tiny.pb"
expect_exit 2 "aggregator.tau: aggregator parameter tau: expected a number > 0, got -1" "$TRAINER" --set aggregator.tau=-1 "$EX/tiny.pb"
expect_exit 2 "aggregator.bucket_size: aggregator parameter bucket_size: expected an integer in [1, 4294967295], got 0" "$TRAINER" --set aggregator.bucket_size=0 "$EX/tiny.pb"
expect_exit 2 "cluster.device = CUDA" "$TRAINER" --set cluster.device=CUDA "$EX/tiny.pb"
expect_exit 2 "cluster.timeout_ms = 5" "$TRAINER" --set cluster.timeout_ms=5 "$EX/tiny.pb"
expect_exit 2 "schedule.steps = 0" "$TRAINER" --set schedule.steps=0 "$EX/tiny.pb"
expect_exit 2 "run.name = \"../x\"" "$TRAINER" --set run.name=../x "$EX/tiny.pb"
expect_exit 2 "cluster.transport = MPI needs mpirun" "$TRAINER" --set cluster.transport=MPI "$EX/tiny.pb"

# a missing dataset is bad input too, and the message names the Debian package
expect_exit 2 "dataset-fashion-mnist" "$TRAINER" --set data.path="$WORK/nodata" "$EX/tiny.pb"
mkdir -p "$WORK/brokendata"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  head -c 3000 "/usr/share/datasets/fashion-mnist/$f" >"$WORK/brokendata/$f"
done
expect_exit 2 "dataset-fashion-mnist" "$TRAINER" --set data.path="$WORK/brokendata" "$EX/tiny.pb"

# the same refusals under mpirun: every rank stops, exit 2, no hang
expect_exit 2 "optimizer.lr = -1" timeout -k 10 60 mpirun -np 3 "$TRAINER" --set optimizer.lr=-1 "$EX/tiny.pb"
expect_exit 2 "dataset-fashion-mnist" timeout -k 10 60 mpirun -np 3 "$TRAINER" --set data.path="$WORK/nodata" "$EX/tiny.pb"
expect_exit 2 "cluster.transport = LOCAL" timeout -k 10 60 mpirun -np 3 "$TRAINER" --set cluster.transport=LOCAL "$EX/tiny.pb"

# --print-config prints every field; its output encodes back to the same config. The aggregator
# parameters print their effective values: the library's defaults, or what was set (a zero too)
"$TRAINER" --print-config --set optimizer.lr=0.02 --set model.hidden=32,16 \
  --set aggregator.iters=0 "$EX/tiny.pb" >"$WORK/eff.txtpb"
grep -q "lr: 0.02" "$WORK/eff.txtpb" || fail "--print-config lacks the override"
grep -q "momentum: 0.9" "$WORK/eff.txtpb" || fail "--print-config lacks a default"
grep -q "^  iters: 0$" "$WORK/eff.txtpb" || fail "--print-config lacks aggregator.iters = 0"
grep -q "^  geomed_iters: 100$" "$WORK/eff.txtpb" || fail "--print-config lacks a library default"
grep -q "^  clip_norm: 2$" "$WORK/eff.txtpb" || fail "--print-config lacks a library default"
protoc --encode=phalanx.Config -I "$SRC/proto" "$SRC/proto/config.proto" <"$WORK/eff.txtpb" >"$WORK/eff.pb" \
  || fail "--print-config output does not encode"
"$TRAINER" --print-config "$WORK/eff.pb" >"$WORK/eff2.txtpb"
cmp "$WORK/eff.txtpb" "$WORK/eff2.txtpb" || fail "--print-config round trip differs"
echo "ok: --print-config round trip"
echo "PASS"
