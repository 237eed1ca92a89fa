#!/usr/bin/env bash
# it_adaptive.sh - the adaptive attacks (ALGORITHMS.md 4.1) and heterogeneous workers (4.2):
# - every adaptive attack against an independent NumPy computation (tests/adaptive_ref.py, on
#   tests/attack_probe): the factor chosen, the vector sent, the line search against a grid;
# - through the trainer: each attack runs from the config, the mean collapses under optimal IPM,
#   bad values of the new fields exit 2 naming the field and the value;
# - workers on Dirichlet(0.1) parts under an adaptive attack: one process and mpirun give the
#   same parameters bit for bit, and a second run with the same seed too.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
PY=/usr/bin/python3 # Debian's, with python3-numpy (launch/setup.sh installs it)
"$PY" -c 'import numpy' 2>/dev/null || fail "$PY lacks numpy (apt-get install python3-numpy)"
"$PY" "$SRC/tests/adaptive_ref.py" "$BUILD/tests/attack_probe" "$WORK/ref" || fail "NumPy reference"

common=(--set cluster.workers=7 --set byzantine.count=2 --set aggregator.f=2
        --set schedule.eval_every=0 --set logging.progress=QUIET --set logging.save_params=false)
acc_of() { # name rule attack [extra...]
  local name=$1 rule=$2 attack=$3
  shift 3
  "$TRAINER" "${common[@]}" --set aggregator.rule="$rule" --set byzantine.attack="$attack" \
    --set run.name="$name" "$@" "$EX/tiny.pb" >"$name.log" 2>&1 || { cat "$name.log" >&2; fail "$name failed"; }
  json_num "runs/$name/metrics.jsonl" test_acc
}
a=$(acc_of ipm_mean mean OPTIMAL_IPM --set schedule.steps=100)
ge 0.3 "$a" || fail "the mean under OPTIMAL_IPM still reaches $a"
echo "ok: the mean collapses under OPTIMAL_IPM: test_acc $a"
for spec in "OPTIMAL_ALIE median" "MIN_MAX trimmed_mean --set byzantine.perturbation=UNIT" \
            "MIN_SUM krum --set byzantine.perturbation=SIGN" "MIMIC flag --set byzantine.mimic_farthest=true" \
            "OPTIMAL_IPM cclip" "OPTIMAL_ALIE geomed --set aggregator.pre=nnm"; do
  read -r attack rule extra <<<"$spec"
  # shellcheck disable=SC2086
  a=$(acc_of "${attack}_$rule" "$rule" "$attack" --set schedule.steps=30 $extra)
  [ -n "$a" ] || fail "$attack vs $rule: no test_acc"
  echo "ok: $attack vs $rule ${extra:+($extra) }runs: test_acc $a"
done

expect_exit 2 "byzantine.search_ratio = 1.5" "$TRAINER" --set byzantine.attack=OPTIMAL_IPM \
  --set byzantine.count=1 --set byzantine.search_ratio=1.5 "$EX/tiny.pb"
expect_exit 2 "byzantine.search_evals = 0" "$TRAINER" --set byzantine.attack=OPTIMAL_ALIE \
  --set byzantine.count=1 --set byzantine.search_evals=0 "$EX/tiny.pb"
expect_exit 2 "byzantine.search_delta = 0" "$TRAINER" --set byzantine.attack=OPTIMAL_ALIE \
  --set byzantine.count=1 --set byzantine.search_delta=0 "$EX/tiny.pb"
expect_exit 2 "byzantine.mode must be OMNISCIENT" "$TRAINER" --set byzantine.attack=MIN_MAX \
  --set byzantine.count=1 --set byzantine.mode=LOCAL "$EX/tiny.pb"
expect_exit 2 "byzantine.perturbation" "$TRAINER" --set byzantine.attack=MIN_SUM \
  --set byzantine.count=1 --set byzantine.perturbation=DOWN "$EX/tiny.pb"

# heterogeneous workers under an adaptive attack: deterministic, one process == MPI
het=(--set cluster.workers=5 --set byzantine.count=1 --set aggregator.f=1 --set aggregator.rule=median
     --set byzantine.attack=OPTIMAL_ALIE --set data.partition=DIRICHLET --set data.alpha=0.1
     --set schedule.steps=40 --set schedule.eval_every=0 --set logging.progress=QUIET)
"$TRAINER" "${het[@]}" --set run.name=het_one "$EX/tiny.pb" >het_one.log 2>&1 || { cat het_one.log; fail "one process"; }
"$TRAINER" "${het[@]}" --set run.name=het_again "$EX/tiny.pb" >het_again.log 2>&1 || { cat het_again.log; fail "again"; }
mpirun -np 3 "$TRAINER" "${het[@]}" --set run.name=het_mpi "$EX/tiny.pb" >het_mpi.log 2>&1 || { cat het_mpi.log; fail "mpirun"; }
cmp runs/het_one/params.npy runs/het_again/params.npy || fail "the same seed gave other parameters"
cmp runs/het_one/params.npy runs/het_mpi/params.npy || fail "one process and mpirun -np 3 differ"
[ "$(wc -l <runs/het_mpi/partition.csv)" = 6 ] || fail "no partition.csv for the 5 workers"
echo "ok: Dirichlet(0.1) workers under OPTIMAL_ALIE vs median: same parameters twice and under mpirun"
echo PASS
