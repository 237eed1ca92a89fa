#!/usr/bin/env bash
# cluster.sh - a simulated multi-host cluster on this one machine, for tests and benchmarks.
#
#   tests/cluster/cluster.sh [--hosts H] [--bandwidth RATE] [--latency TIME] [--slots N|N,N,..]
#                            [--tcp-retries N] -- COMMAND [ARG]...
#   (defaults: 3 hosts, 1gbit, 1ms, 1 slot per host, 5; RATE and TIME in tc's units: 1gbit,
#   100mbit, 1ms; --bandwidth 0: not shaped; --slots 2,1,1: slots of host 0, 1, ... in the
#   hostfile, the last repeated)
#   tests/cluster/cluster.sh link CLUSTER HOST down|up     (from inside COMMAND: cut a host off)
#   tests/cluster/cluster.sh clean                         (remove clusters whose owner is gone)
#
# Each host is a Linux network namespace (pxc<PID>-h<i>, hostname the same, address
# 10.200.0.<i+1>/24 on its eth0) joined by a veth pair to a bridge that lives in a namespace of
# its own (pxc<PID>-sw), so nothing is added to the machine's own network. Both ends of every
# link are shaped: tbf for the bandwidth, netem for the latency where the kernel has it (without
# sch_netem the links get the bandwidth only, and the script says so). COMMAND runs on host 0 with
# an environment under which a plain `mpirun -np N ...` spreads its ranks over the hosts over
# TCP: the hostfile ($PXC_HOSTFILE, also Open MPI's default hostfile) names the hosts, and
# mpirun reaches the other hosts through tests/cluster/pxc-rsh, an rsh agent that enters the
# host's namespace (`ip netns exec`) where ssh would log in. Everything the script made --
# processes in its namespaces, namespaces, /etc/netns/ entries, temporary files -- is removed
# when COMMAND ends, fails or the script is interrupted. Exit status: COMMAND's; 77 where
# network namespaces cannot be made (not root, no iproute2, no veth/bridge in the kernel).
#
# COMMAND sees: PXC_NAME (the cluster's name), PXC_HOSTS (host names, host 0 first),
# PXC_HOSTFILE, PXC_SUBNET, PXC_BANDWIDTH, PXC_LATENCY, PXC_LATENCY_APPLIED (1 or 0), PXC_CTL
# (this script, for `"$PXC_CTL" link "$PXC_NAME" HOST down`), and the OMPI_MCA_ settings.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
PREFIX=pxc
SUBNET_BASE=10.200.0
SUBNET=$SUBNET_BASE.0/24

die() {
  echo "cluster: $*" >&2
  exit 1
}

# ns_of CLUSTER HOST: the namespace of a host given by name (pxcNNN-h1), short name (h1) or index
ns_of() {
  case $2 in
    "$1"-h[0-9]*) echo "$2" ;;
    h[0-9]*) echo "$1-$2" ;;
    [0-9]*) echo "$1-h$2" ;;
    *) die "no host '$2' in cluster $1" ;;
  esac
}

# remove CLUSTER: kills every process in the cluster's namespaces and deletes them; idempotent
remove() {
  local name=$1 ns pids
  [[ $name == "$PREFIX"[0-9]* ]] || die "refusing to remove '$name' (not a cluster of this script)"
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$name-(h[0-9]+|sw|probe)$" || true); do
    # the namespaces are ours, so are the processes in them (mpirun, orted, ranks of COMMAND)
    for _ in 1 2 3 4 5; do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -n "$pids" ] || break
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
      sleep 0.2
    done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "/tmp/$name.d"
}

# link CLUSTER HOST down|up: the switch's end of the host's cable, so the host loses its carrier
# and every packet to or from it is dropped
link() {
  local ns
  ns=$(ns_of "$1" "$2")
  ip netns exec "$1-sw" true 2>/dev/null || die "no cluster $1"
  ip -n "$1-sw" link set "${ns##*-}" "$3"
}

# clean: removes the clusters whose owning script (the PID in the name) is no longer running
clean() {
  local name
  for name in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}[0-9]+-" |
    sed 's/-.*//' | sort -u); do
    if ! kill -0 "${name#"$PREFIX"}" 2>/dev/null; then
      echo "cluster: removing stale cluster $name"
      remove "$name"
    fi
  done
}

# shape NS DEV: bandwidth (tbf) and latency (netem, where the kernel has it) on DEV's egress;
# --bandwidth 0 leaves the link as fast as veth goes
shape() {
  local ns=$1 dev=$2
  if [ "$BANDWIDTH" = 0 ]; then
    [ "$LAT_APPLIED" = 0 ] || ip netns exec "$ns" tc qdisc add dev "$dev" root netem delay "$LATENCY"
    return 0
  fi
  if [ "$LAT_APPLIED" = 1 ]; then
    # netem delays, and its child tbf paces at the link's rate
    ip netns exec "$ns" tc qdisc add dev "$dev" root handle 1: netem delay "$LATENCY" limit 100000
    ip netns exec "$ns" tc qdisc add dev "$dev" parent 1:1 handle 10: tbf rate "$BANDWIDTH" \
      burst "$BURST" latency 200ms
  else
    ip netns exec "$ns" tc qdisc add dev "$dev" root handle 10: tbf rate "$BANDWIDTH" \
      burst "$BURST" latency 200ms
  fi
}

# up: makes the switch, the hosts and their links
up() {
  local i ns sw=$NAME-sw
  mkdir -p "$DIR"
  ip netns add "$sw"
  ip -n "$sw" link set lo up
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  : >"$DIR/hosts"
  for ((i = 0; i < HOSTS; i++)); do
    echo "$SUBNET_BASE.$((i + 1)) $NAME-h$i" >>"$DIR/hosts"
  done
  for ((i = 0; i < HOSTS; i++)); do
    ns=$NAME-h$i
    ip netns add "$ns"
    # ip netns exec bind-mounts /etc/netns/NS/hosts on /etc/hosts: the host names resolve
    mkdir -p "/etc/netns/$ns"
    { echo "127.0.0.1 localhost"; cat "$DIR/hosts"; } >"/etc/netns/$ns/hosts"
    ip -n "$ns" link set lo up
    # a lost peer is declared after TCP's retransmissions run out: about 15 minutes by default,
    # seconds here, so that mpirun notices a cut host (its daemon there) and ends
    ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_retries2="$TCP_RETRIES"
    ip -n "$sw" link add "h$i" type veth peer name eth0 netns "$ns"
    ip -n "$sw" link set "h$i" master br0
    ip -n "$sw" link set "h$i" up
    ip -n "$ns" addr add "$SUBNET_BASE.$((i + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    shape "$ns" eth0     # uplink: host -> switch
    shape "$sw" "h$i"    # downlink: switch -> host
  done
  local slot_list
  IFS=, read -r -a slot_list <<<"$SLOTS"
  : >"$DIR/hostfile"
  for ((i = 0; i < HOSTS; i++)); do
    echo "$NAME-h$i slots=${slot_list[i]:-${slot_list[-1]}}" >>"$DIR/hostfile"
  done
  # every link is up (carrier on both ends) before COMMAND starts
  for ((i = 0; i < HOSTS; i++)); do
    for _ in $(seq 1 50); do
      ip -n "$NAME-h$i" -br link show eth0 | grep -q LOWER_UP && break
      sleep 0.1
    done
    ip -n "$NAME-h$i" -br link show eth0 | grep -q LOWER_UP || die "host $i: eth0 has no carrier"
  done
}

# can_make: network namespaces, veth and bridges can be made here (root, iproute2, kernel)
can_make() {
  [ "$(id -u)" = 0 ] || { echo "cluster: needs root to make network namespaces" >&2; return 1; }
  command -v ip >/dev/null && command -v tc >/dev/null ||
    { echo "cluster: needs iproute2 (ip, tc)" >&2; return 1; }
  local probe=$PREFIX$$-probe ok=0
  if ip netns add "$probe" 2>/dev/null; then
    if ip -n "$probe" link add b0 type bridge 2>/dev/null &&
      ip -n "$probe" link add v0 type veth peer name v1 2>/dev/null &&
      ip -n "$probe" link set v0 up 2>/dev/null &&
      ip netns exec "$probe" tc qdisc add dev v0 root tbf rate 1gbit burst 256k latency 10ms 2>/dev/null; then
      ok=1
      # netem is a module many kernels lack (this one may)
      ip netns exec "$probe" tc qdisc replace dev v0 root netem delay 1ms 2>/dev/null && ok=2
    fi
    ip netns del "$probe" 2>/dev/null || true
  fi
  case $ok in
    0) echo "cluster: cannot make network namespaces with veth, bridge and tbf here" >&2; return 1 ;;
    1) NETEM=0 ;;
    2) NETEM=1 ;;
  esac
}

case ${1:-} in
  link)
    [ $# = 4 ] || die "usage: cluster.sh link CLUSTER HOST down|up"
    link "$2" "$3" "$4"
    exit 0
    ;;
  clean)
    clean
    exit 0
    ;;
esac

HOSTS=3
BANDWIDTH=1gbit
LATENCY=1ms
SLOTS=1
TCP_RETRIES=5
while [ $# -gt 0 ]; do
  case $1 in
    --hosts) HOSTS=$2; shift 2 ;;
    --bandwidth) BANDWIDTH=$2; shift 2 ;;
    --latency) LATENCY=$2; shift 2 ;;
    --slots) SLOTS=$2; shift 2 ;;
    --tcp-retries) TCP_RETRIES=$2; shift 2 ;;
    --) shift; break ;;
    *) die "unknown option '$1' (usage: cluster.sh [--hosts H] [--bandwidth RATE] [--latency TIME] [--slots N|N,N,..] -- COMMAND...)" ;;
  esac
done
[ $# -gt 0 ] || die "no COMMAND (usage: cluster.sh [options] -- COMMAND...)"
[[ $HOSTS =~ ^[0-9]+$ ]] && [ "$HOSTS" -ge 1 ] && [ "$HOSTS" -le 200 ] ||
  die "--hosts: 1 to 200 hosts, got '$HOSTS'"
[[ $SLOTS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--slots: N or N,N,..., got '$SLOTS'"

can_make || exit 77
if [ "$NETEM" = 1 ] && [ "$LATENCY" != 0 ] && [ "$LATENCY" != 0ms ]; then
  LAT_APPLIED=1
else
  LAT_APPLIED=0
  if [ "$LATENCY" != 0 ] && [ "$LATENCY" != 0ms ]; then
    echo "cluster: this kernel has no sch_netem: links get $BANDWIDTH but no added latency" \
      "(asked for $LATENCY)" >&2
  fi
fi
# tbf's bucket must hold a full (GSO) packet; 256 KB is 2 ms at 1 Gbit/s
BURST=256k

NAME=$PREFIX$$
DIR=/tmp/$NAME.d
clean
CHILD=
teardown() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [ -z "$CHILD" ] || kill -TERM "$CHILD" 2>/dev/null || true
  remove "$NAME"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
up

source "$SRC/launch/env.sh"
export PXC_NAME=$NAME PXC_HOSTFILE=$DIR/hostfile PXC_SUBNET=$SUBNET PXC_CTL=$HERE/cluster.sh
export PXC_BANDWIDTH=$BANDWIDTH PXC_LATENCY=$LATENCY PXC_LATENCY_APPLIED=$LAT_APPLIED
PXC_HOSTS=$(awk '{print $1}' "$DIR/hostfile" | tr '\n' ' ')
export PXC_HOSTS=${PXC_HOSTS% }
# TCP only, on the cluster's network only (each namespace also has lo)
export OMPI_MCA_btl=self,tcp
export OMPI_MCA_btl_tcp_if_include=$SUBNET
export OMPI_MCA_oob_tcp_if_include=$SUBNET
export OMPI_MCA_plm_rsh_agent=$HERE/pxc-rsh
export OMPI_MCA_plm_rsh_no_tree_spawn=1
export OMPI_MCA_orte_default_hostfile=$DIR/hostfile
# mpirun and its daemons probe idle connections every second: a cut host is noticed in seconds
export OMPI_MCA_oob_tcp_keepalive_time=1 OMPI_MCA_oob_tcp_keepalive_intvl=1
export OMPI_MCA_oob_tcp_keepalive_probes=3
# COMMAND on host 0, with host 0's name (hostnames tell Open MPI's nodes apart); in the
# background, so that a signal reaches the trap now rather than when COMMAND ends
# (stdin passed on explicitly: a background command would otherwise read /dev/null)
exec 3<&0
ip netns exec "$NAME-h0" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$NAME-h0" "$@" <&3 3<&- &
CHILD=$!
rc=0
wait "$CHILD" || rc=$?
CHILD=
exit "$rc"
