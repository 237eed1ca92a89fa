#!/usr/bin/env bash
# it_cluster_quickstart.sh - the quickstart across 3 simulated hosts (tests/cluster/cluster.sh:
# network namespaces, 1 Gbit/s links, mpirun over TCP only): server and one worker rank on host
# 0, one worker rank on each of hosts 1 and 2, 7 logical workers, 300 steps. The job must end
# with exit 0 and a done line, reach a sane accuracy, and its gradients must really have crossed
# the simulated links (each remote host sent at least its workers' share of the uplink bytes).
# Skipped (77) where network namespaces cannot be made.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
cat >job.sh <<JOB
# on host 0 of the cluster
rc=0
mpirun -np 4 "$TRAINER" --set run.name=cluster --set schedule.steps=300 \\
  --set schedule.eval_every=100 --set schedule.log_every=50 "$EX/quickstart.pb" >job.log 2>&1 || rc=\$?
for h in \$PXC_HOSTS; do
  echo "\$h \$(ip netns exec "\$h" cat /sys/class/net/eth0/statistics/tx_bytes)" >>tx_bytes
done
exit \$rc
JOB
t0=$SECONDS
rc=0
timeout -k 10 300 bash "$SRC/tests/cluster/cluster.sh" --hosts 3 --slots 2,1,1 --bandwidth 1gbit \
  --latency 1ms -- bash job.sh >cluster.log 2>&1 || rc=$?
took=$((SECONDS - t0))
if [ "$rc" = 77 ]; then
  cat cluster.log
  echo "SKIP: no network namespaces here"
  exit 77
fi
[ "$rc" = 0 ] || { cat cluster.log job.log 2>/dev/null | grep -v "^|"; fail "the job on 3 hosts exited $rc"; }
done_line=$(grep '"event":"done"' runs/cluster/metrics.jsonl) || fail "no done line in the metrics"
grep -q '"steps":300,' <<<"$done_line" || fail "the done line does not say 300 steps: $done_line"
grep -q '"world":4,' <<<"$done_line" || fail "the done line does not say 4 ranks: $done_line"
acc=$(json_num runs/cluster/metrics.jsonl test_acc)
ge "$acc" 0.75 || fail "300 steps on 3 hosts reach test_acc $acc < 0.75"
# ranks 2 (host 1) and 3 (host 2) each run 2 of the 7 workers (round-robin over ranks 1..3)
up=$(json_num runs/cluster/metrics.jsonl bytes_up_total)
down=$(json_num runs/cluster/metrics.jsonl bytes_down_total)
cat tx_bytes
for h in 1 2; do
  tx=$(awk -v h="-h$h\$" '$1 ~ h { print $2 }' tx_bytes)
  ge "${tx:-0}" "$(awk -v u="$up" 'BEGIN { print u * 2 / 7 }')" ||
    fail "host $h sent ${tx:-0} bytes, less than its 2 workers' share of $up uplink bytes"
done
# host 0 sends the parameters to ranks 2 and 3 (2 of the 3 worker ranks)
tx=$(awk '$1 ~ /-h0$/ { print $2 }' tx_bytes)
ge "${tx:-0}" "$(awk -v d="$down" 'BEGIN { print d * 2 / 3 }')" ||
  fail "host 0 sent ${tx:-0} bytes, less than 2/3 of the $down downlink bytes"
echo "ok: quickstart on 3 hosts over TCP (1 Gbit/s links): test_acc $acc after 300 steps, $(json_num runs/cluster/metrics.jsonl step_ms_mean) ms/step, $took s in all"
echo "PASS"
