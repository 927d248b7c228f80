#!/usr/bin/env bash
# Soft-RoCE pair: two network namespaces joined by a veth, an IPv4 address and an rxe
# device on each end, verified with a short RC ping-pong. Or, with --loopback, one rxe
# device on one veth end in the initial namespace (any kernel with rdma_rxe).
#
#   softroce-pair.sh up [--loopback] [options]   create (idempotent) and verify
#   softroce-pair.sh down                        remove everything up made
#   softroce-pair.sh status                      print the topology and its health
#
# Options (or the environment variable in brackets):
#   --ns-a NAME --ns-b NAME        namespaces            [RRL_NS_A, RRL_NS_B]   rrl-a, rrl-b
#   --if-a NAME --if-b NAME        veth ends             [RRL_IF_A, RRL_IF_B]   rrl-va, rrl-vb
#   --dev-a NAME --dev-b NAME      rxe devices           [RRL_DEV_A, RRL_DEV_B] rxea, rxeb
#   --addr-a IP --addr-b IP        IPv4 addresses        [RRL_ADDR_A, RRL_ADDR_B]
#                                                        192.0.2.1, 192.0.2.2 (/24)
#   --no-verify                    skip the ping-pong
# Exit codes: 0 ok, 1 failure, 2 usage, 3 this kernel's rxe cannot work across
# namespaces (use --loopback).
set -uo pipefail

state=${RRL_PAIR_STATE:-/run/rrl-pair.env}
ns_a=${RRL_NS_A:-rrl-a} ns_b=${RRL_NS_B:-rrl-b}
if_a=${RRL_IF_A:-rrl-va} if_b=${RRL_IF_B:-rrl-vb}
dev_a=${RRL_DEV_A:-rxea} dev_b=${RRL_DEV_B:-rxeb}
addr_a=${RRL_ADDR_A:-192.0.2.1} addr_b=${RRL_ADDR_B:-192.0.2.2}
loopback=0 verify=1

say() { printf 'softroce-pair: %s\n' "$*" >&2; }
die() { # MESSAGE [EXIT_CODE]
  say "error: $1"
  exit "${2:-1}"
}
usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

action=${1:-}
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
  case "$1" in
  --loopback) loopback=1 ;;
  --no-verify) verify=0 ;;
  --ns-a | --ns-b | --if-a | --if-b | --dev-a | --dev-b | --addr-a | --addr-b)
    [ $# -ge 2 ] || die "$1 needs a value" 2
    v=$2
    case "$1" in
    --ns-a) ns_a=$v ;; --ns-b) ns_b=$v ;; --if-a) if_a=$v ;; --if-b) if_b=$v ;;
    --dev-a) dev_a=$v ;; --dev-b) dev_b=$v ;; --addr-a) addr_a=$v ;; --addr-b) addr_b=$v ;;
    esac
    shift
    ;;
  -h | --help) usage ;;
  *) die "unknown option '$1' (see --help)" 2 ;;
  esac
  shift
done
case "$action" in up | down | status) ;; -h | --help | "") usage ;; *) die "unknown action '$action': use up, down or status" 2 ;; esac

for a in "$addr_a" "$addr_b"; do
  [[ "$a" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] || die "'$a' is not an IPv4 address" 2
done
for n in "$ns_a" "$ns_b" "$if_a" "$if_b" "$dev_a" "$dev_b"; do
  [[ "$n" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "'$n' is not a valid name (1-15 of A-Z a-z 0-9 _ . -)" 2
done

need_root() {
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces and rxe links): run it with sudo or inside the lab VM ('deno task lab -- ...')"
  command -v rdma >/dev/null || die "'rdma' not found: install iproute2"
}

has_link() { ip ${1:+-n "$1"} link show "$2" >/dev/null 2>&1; }
has_rxe() { rdma link show "$1/1" >/dev/null 2>&1; }

load_state() { # the names a previous 'up' recorded win over the defaults
  if [ -f "$state" ]; then
    # shellcheck disable=SC1090
    . "$state"
    ns_a=$NS_A ns_b=$NS_B if_a=$IF_A if_b=$IF_B dev_a=$DEV_A dev_b=$DEV_B
    addr_a=$ADDR_A addr_b=$ADDR_B
    [ "$TOPOLOGY" = loopback ] && loopback=1
  fi
  return 0
}

write_state() {
  local topo=pair
  [ $loopback = 1 ] && topo=loopback
  mkdir -p "$(dirname "$state")"
  cat >"$state" <<EOF
TOPOLOGY=$topo
NS_A=$ns_a
NS_B=$ns_b
IF_A=$if_a
IF_B=$if_b
DEV_A=$dev_a
DEV_B=$dev_b
ADDR_A=$addr_a
ADDR_B=$addr_b
EOF
}

# ibv_rc_pingpong between the two ends: RC QPs, 4 KiB messages, GID index 1 (RoCEv2 IPv4).
pingpong() {
  local port=$((18515 + RANDOM % 1000)) srv_ns=() cli_ns=() srv_dev=$dev_b cli_dev=$dev_a
  if [ $loopback = 1 ]; then
    srv_dev=$dev_a
  else
    srv_ns=(ip netns exec "$ns_b")
    cli_ns=(ip netns exec "$ns_a")
  fi
  local log
  log=$(mktemp)
  "${srv_ns[@]}" timeout 15 ibv_rc_pingpong -d "$srv_dev" -g 1 -n 20 -s 4096 -p "$port" >"$log" 2>&1 &
  local srv=$! ok=1 target=$addr_b
  [ $loopback = 1 ] && target=$addr_a
  for _ in $(seq 1 40); do
    sleep 0.25
    if "${cli_ns[@]}" timeout 15 ibv_rc_pingpong -d "$cli_dev" -g 1 -n 20 -s 4096 -p "$port" "$target" \
      >>"$log" 2>&1; then
      ok=0
      break
    fi
    grep -q "Couldn't connect" "$log" || break
    : >"$log"
  done
  wait "$srv" || ok=1
  if [ $ok != 0 ]; then
    sed 's/^/  ibv_rc_pingpong: /' "$log" >&2
  fi
  rm -f "$log"
  return $ok
}

port_4791() { # is rxe's UDP socket listening in this namespace (the kernel selftest's check)?
  ip netns exec "$1" ss -Huln 'sport = :4791' 2>/dev/null | grep -q .
}

up() {
  need_root
  modprobe rdma_rxe 2>/dev/null || [ -d /sys/module/rdma_rxe ] ||
    die "cannot load rdma_rxe: this kernel ($(uname -r)) has no Soft-RoCE; use the lab VM ('deno task lab -- ...')"
  modprobe veth 2>/dev/null || true
  if [ -f "$state" ]; then
    local want=pair
    [ $loopback = 1 ] && want=loopback
    # shellcheck disable=SC1090
    (. "$state" && [ "$TOPOLOGY" = "$want" ]) ||
      die "a $( (. "$state" && echo "$TOPOLOGY")) topology is up already: run 'softroce-pair.sh down' first"
  fi
  write_state # first, so that 'down' finds what a half-failed 'up' made
  if [ $loopback = 1 ]; then
    has_link "" "$if_a" || ip link add "$if_a" type veth peer name "$if_b" || die "cannot create veth $if_a"
    ip addr replace "$addr_a/24" dev "$if_a"
    ip link set "$if_a" up && ip link set "$if_b" up
    has_rxe "$dev_a" || rdma link add "$dev_a" type rxe netdev "$if_a" || die "cannot add rxe $dev_a on $if_a"
  else
    for ns in "$ns_a" "$ns_b"; do
      [ -e "/run/netns/$ns" ] || ip netns add "$ns" || die "cannot create namespace $ns"
      ip -n "$ns" link set lo up
    done
    if ! has_link "$ns_a" "$if_a"; then
      has_link "" "$if_a" || ip link add "$if_a" type veth peer name "$if_b" || die "cannot create veth"
      ip link set "$if_a" netns "$ns_a"
    fi
    if ! has_link "$ns_b" "$if_b"; then
      ip link set "$if_b" netns "$ns_b" || die "cannot move $if_b into $ns_b"
    fi
    ip -n "$ns_a" addr replace "$addr_a/24" dev "$if_a"
    ip -n "$ns_b" addr replace "$addr_b/24" dev "$if_b"
    ip -n "$ns_a" link set "$if_a" up
    ip -n "$ns_b" link set "$if_b" up
    has_rxe "$dev_a" || ip netns exec "$ns_a" rdma link add "$dev_a" type rxe netdev "$if_a" ||
      die "cannot add rxe $dev_a on $if_a"
    has_rxe "$dev_b" || ip netns exec "$ns_b" rdma link add "$dev_b" type rxe netdev "$if_b" ||
      die "cannot add rxe $dev_b on $if_b"
  fi
  [ $verify = 1 ] || return 0
  if pingpong; then
    if [ $loopback = 1 ]; then
      say "up: loopback $dev_a on $if_a ($addr_a), RC ping-pong ok"
    else
      say "up: $dev_a on $if_a ($addr_a) in $ns_a <-> $dev_b on $if_b ($addr_b) in $ns_b, RC ping-pong ok"
    fi
    return 0
  fi
  if [ $loopback = 0 ] && ! { port_4791 "$ns_a" && port_4791 "$ns_b"; }; then
    die "the rxe devices exist but carry no traffic between namespaces: this kernel ($(uname -r))
  has no UDP port 4791 socket in $ns_a/$ns_b; rxe works across network namespaces from
  Linux 7.1 on. Use the single-device topology instead: softroce-pair.sh down; softroce-pair.sh up --loopback" 3
  fi
  die "the RC ping-pong over $dev_a/$dev_b failed (see above); 'softroce-pair.sh status' shows the pieces"
}

down() {
  need_root
  load_state
  local left=0
  for d in "$dev_a" "$dev_b"; do
    has_rxe "$d" || continue
    rdma link delete "$d" 2>/dev/null || ip netns exec "$ns_a" rdma link delete "$d" 2>/dev/null ||
      ip netns exec "$ns_b" rdma link delete "$d" 2>/dev/null || true
  done
  has_link "" "$if_a" && ip link delete "$if_a"
  has_link "" "$if_b" && ip link delete "$if_b"
  if [ $loopback = 0 ]; then
    for ns in "$ns_a" "$ns_b"; do [ -e "/run/netns/$ns" ] && ip netns delete "$ns"; done
  fi
  # rxe drops a device when its netdev goes away; give it a moment, then check.
  for _ in $(seq 1 20); do
    has_rxe "$dev_a" || has_rxe "$dev_b" || break
    sleep 0.1
  done
  for d in "$dev_a" "$dev_b"; do has_rxe "$d" && say "error: rxe device $d is still there" && left=1; done
  for ns in "$ns_a" "$ns_b"; do [ -e "/run/netns/$ns" ] && say "error: namespace $ns is still there" && left=1; done
  rm -f "$state"
  [ $left = 0 ] || exit 1
  say "down: nothing left"
}

status() {
  load_state
  if [ ! -f "$state" ]; then
    echo "no Soft-RoCE topology is up (state file $state missing)"
    return 1
  fi
  cat "$state"
  rdma link show 2>/dev/null | grep -E "link ($dev_a|$dev_b)/" || echo "no rxe devices $dev_a/$dev_b"
  if [ $loopback = 0 ]; then
    for ns in "$ns_a" "$ns_b"; do
      if port_4791 "$ns"; then echo "$ns: UDP 4791 listening"; else echo "$ns: no UDP 4791 socket"; fi
    done
  fi
}

"$action"
