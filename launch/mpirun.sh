#!/usr/bin/env bash
# mpirun.sh - mpirun for jobs that outlive a dead worker rank:
#   launch/mpirun.sh -np 8 build/trainer --set cluster.f_wait=2 CONFIG.pb
#
# Open MPI ends the whole job when one process dies; with --enable-recovery it lets the others
# go on, so the server (with cluster.f_wait covering the lost workers) finishes the training with
# the survivors and writes its outputs. mpirun's own exit status then no longer reflects the
# ranks', so rank 0 writes its exit status to PX_EXIT_STATUS_FILE and this script exits with it:
#   0 success, 1 run-time failure (a lost rank the rule cannot do without, ...), 2 bad input,
#   3 preempted (checkpoint written), 4 complete and written, but a rank was lost on the way.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
status=$(mktemp /tmp/px_status.XXXXXX)
trap 'rm -f "$status"' EXIT
export PX_EXIT_STATUS_FILE=$status
mpirun --enable-recovery -x PX_EXIT_STATUS_FILE "$@"
rc=$?
if [ -s "$status" ]; then
  rc=$(head -n 1 "$status")
elif [ "$rc" = 0 ]; then
  rc=1 # rank 0 never reported: it died
  echo "mpirun.sh: rank 0 ended without reporting its exit status (killed?)" >&2
fi
exit "$rc"
