#!/usr/bin/env bash
# it_cluster_cut.sh - a host cut off mid-run on the simulated cluster (tests/cluster/cluster.sh):
# 3 hosts, worker rank 3 alone on host 2; once the job trains, host 2's cable is pulled (the
# switch's port goes down). The job must end, non-zero, within cluster.timeout_ms (plus Open
# MPI's own teardown), with rank 0 naming rank 3; nothing may hang, and the cluster's
# namespaces and processes must be gone afterwards. Also: the cluster script, interrupted, still
# removes everything it made. Skipped (77) where network namespaces cannot be made.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
CLUSTER=$SRC/tests/cluster/cluster.sh
TIMEOUT_MS=3000
RUN=cut$$

# leftovers of cluster NAME: its namespaces and the processes of this test's job
leftovers() {
  ip netns list | awk '{print $1}' | grep -E "^$1-" || true
  pgrep -f "run.name=$RUN " || true
}

cat >job.sh <<JOB
# on host 0 of the cluster: a long run, cut once it trains
echo "\$PXC_NAME" >name
mpirun -np 4 "$TRAINER" --set run.name=$RUN --set schedule.steps=10000000 \\
  --set schedule.eval_every=0 --set schedule.log_every=1 --set cluster.timeout_ms=$TIMEOUT_MS \\
  "$EX/quickstart.pb" >job.log 2>&1 &
job=\$!
for _ in \$(seq 1 600); do
  [ -s runs/$RUN/metrics.jsonl.partial ] && [ \$(wc -l <runs/$RUN/metrics.jsonl.partial) -ge 5 ] && break
  sleep 0.1
done
[ -s runs/$RUN/metrics.jsonl.partial ] || { echo "the job did not start training"; exit 90; }
t0=\$(date +%s.%N)
"\$PXC_CTL" link "\$PXC_NAME" h2 down
rc=0
wait \$job || rc=\$?
echo "\$rc \$(date +%s.%N) \$t0" >ended
exit 0
JOB
rc=0
timeout -k 10 120 bash "$CLUSTER" --hosts 3 --slots 2,1,1 -- bash job.sh >cluster.log 2>&1 || rc=$?
if [ "$rc" = 77 ]; then
  cat cluster.log
  echo "SKIP: no network namespaces here"
  exit 77
fi
[ "$rc" != 124 ] && [ "$rc" != 137 ] || { grep -v "^|" job.log; fail "the cut job hung (killed by the test's timeout)"; }
[ "$rc" = 0 ] && [ -s ended ] || { cat cluster.log; grep -v "^|" job.log; fail "the cluster script exited $rc"; }
read -r job_rc t_end t_cut <ended
took=$(awk -v a="$t_end" -v b="$t_cut" 'BEGIN { printf "%.1f", a - b }')
[ "$job_rc" != 0 ] || fail "the job exited 0 after its host 2 was cut off"
# rank 0 waits timeout_ms for a gradient, or for the rest of a message cut mid-way (then up
# to twice); Open MPI then needs a few seconds to give up on the lost host's daemon
limit=$((2 * TIMEOUT_MS / 1000 + 10))
ge "$limit" "$took" || fail "the job took $took s to end after the cut (limit $limit s)"
line=$(grep -E "^trainer: rank 0: .*rank 3" job.log) || { grep -v "^|" job.log; fail "rank 0 does not name rank 3"; }
left=$(leftovers "$(cat name)")
[ -z "$left" ] || fail "the cluster script left behind: $left"
echo "ok: host 2 cut off: exit $job_rc after $took s: $line"

# interrupted while its command runs, the cluster script still removes what it made
bash "$CLUSTER" --hosts 2 -- sleep 1000 >int.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  ip netns list | grep -q "^pxc$pid-h1" && break
  sleep 0.1
done
ip netns list | grep -q "^pxc$pid-h1" || { cat int.log; fail "the cluster did not come up"; }
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 143 ] || fail "interrupted, the cluster script exited $rc, not 143"
[ -z "$(leftovers "pxc$pid")" ] || fail "interrupted, the cluster script left: $(leftovers "pxc$pid")"
[ ! -e "/etc/netns/pxc$pid-h0" ] && [ ! -e "/tmp/pxc$pid.d" ] || fail "interrupted, files left behind"
echo "ok: interrupted (SIGTERM), the cluster script removed its namespaces and files"
echo "PASS"
