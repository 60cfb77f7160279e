#!/usr/bin/env bash
# The STAMP paper's headline experiment (its Tables I-III) on this machine: an edge forwards
# H.Encaps traffic (trafgen into its LAN veth, seg6-encapsulated out of its WAN veth) while a
# share of the offered packets (0 %, 0.1 %, 1 %, 10 %, 100 %) are STAMP test packets to the
# edge's own reflector. Three configurations, alternated in the same run, three rounds,
# medians:
#   baseline   no STAMP programs, no reflector: the test packets reach the stack and die there
#   xdp-min    a minimal XDP reflector on the LAN veth (bpf/xdp_baselines.bpf.c): what attaching
#              any XDP program to a veth costs (the veth then runs its own NAPI and converts
#              every frame; a NIC with native XDP does not), and the least a reflector does
#   ebpf       SegWAN's STAMP XDP program on the LAN veth, reflecting SSID 1 (the eBPF engine)
#   userspace  segwan-stamp reflect on the edge's address (the user-space engine, with its
#              AF_PACKET ring)
#   userspace-socket  the same with --no-ring (UDP sockets only)
# Per share and engine one JSON line: forwarded packets per second out of the WAN veth, STAMP
# replies per second (received back by the generator), and the forwarding ratio to the
# baseline at the same offered load; for the eBPF engine also to xdp-min. Target: >= 0.99 at
# 0-1 % (the paper's eBPF implementation: 0.984 at 0 %).
set -euo pipefail
BUILD=${SEGWAN_BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}
HELPER="$BUILD/bench/bench_stamp_pps_helper"
skip() { echo "{\"bench\":\"stamp_forwarding\",\"skipped\":\"$*\"}"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
command -v trafgen >/dev/null || skip "needs trafgen (netsniff-ng)"
[ -x "$HELPER" ] || skip "build bench_stamp_pps_helper first"
P=swf-
source "$(dirname "$0")/forwarding_edge.sh"
REFL=""
CFG=$(mktemp -d)
stop_reflector() {
  [ -z "$REFL" ] || { kill "$REFL" 2>/dev/null || true; wait "$REFL" 2>/dev/null || true; }
  REFL=""
}
cleanup() {
  stop_reflector
  forwarding_edge_down
  rm -rf "$CFG"
}
trap cleanup EXIT
forwarding_edge_up
IN_E="ip netns exec ${P}edge"

# One forwarded packet and one STAMP test packet (SSID 1), as trafgen packet definitions;
# trafgen sends a configuration's packets in turn, so K forwarded + 1 test = a 1/(K+1) share.
FWD="{ eth(da=$LAN_MAC, sa=$GEN_MAC, type=0x86dd),
  ipv6(sa=fd10:a::2, da=fd10:b::2, hl=64, nh=17, len=52),
  udp(sp=4000, dp=9, len=52),
  fill(0x00, 44) }"
TEST="{ eth(da=$LAN_MAC, sa=$GEN_MAC, type=0x86dd),
  ipv6(sa=fd10:a::2, da=fd10:a::1, hl=64, nh=17, len=52),
  udp(sp=40000, dp=862, len=52),
  0x00, 0x00, 0x00, 0x2a, 0xe9, 0x8f, 0x2a, 0x10, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x01,
  fill(0x00, 28) }"
config() {  # config SHARE: a trafgen configuration with that share of test packets
  local f="$CFG/$1.cfg" k
  case $1 in
    0) echo "$FWD" >"$f" ;;
    100) echo "$TEST" >"$f" ;;
    *) k=$(awk -v s="$1" 'BEGIN{printf "%d", 100 / s - 1}')
       { for _ in $(seq "$k"); do echo "$FWD"; done; echo "$TEST"; } >"$f" ;;
  esac
  echo "$f"
}

start() {  # start NAME: the reflector of that configuration on the edge, until stop_reflector
  case $1 in
    baseline) return 0 ;;
    xdp-min) $IN_E "$HELPER" min lan0 >"$CFG/out" 2>&1 & ;;
    ebpf) $IN_E "$HELPER" stamp lan0 fd10:a::1 >"$CFG/out" 2>&1 & ;;
    userspace) $IN_E taskset -c 1 "$BUILD/edge-manager/segwan-stamp" reflect --listen fd10:a::1 >"$CFG/out" 2>&1 & ;;
    userspace-socket) $IN_E taskset -c 1 "$BUILD/edge-manager/segwan-stamp" reflect --no-ring --listen fd10:a::1 >"$CFG/out" 2>&1 & ;;
  esac
  REFL=$!
  for _ in $(seq 200); do grep -qE 'ready|reflecting' "$CFG/out" 2>/dev/null && return 0; sleep 0.05; done
  skip "$1 did not start: $(tr '\n"' ' ' <"$CFG/out")"
}
# measure CFG: "forwarded_pps replies_pps" over a 2 s window after a 1 s warm-up
measure() {
  ip netns exec "${P}gen" taskset -c 0 timeout 4 trafgen -i "$1" -o g0 -t 0 -q >/dev/null 2>&1 &
  local gen=$! w0 w1 counter r
  # replies counted in XDP where they arrive (a veth's XDP_TX shows in no interface counter)
  ip netns exec "${P}gen" "$HELPER" count g0 1 2 >"$CFG/count" 2>&1 &
  counter=$!
  sleep 1
  w0=$(E cat /sys/class/net/wan0/statistics/tx_packets)
  sleep 2
  w1=$(E cat /sys/class/net/wan0/statistics/tx_packets)
  wait "$counter" 2>/dev/null || true
  kill "$gen" 2>/dev/null || true
  wait "$gen" 2>/dev/null || true
  r=$(sed -nE 's/.*"pps": ([0-9]+).*/\1/p' "$CFG/count" | head -1)
  echo "$(((w1 - w0) / 2)) ${r:-0}"
}

SHARES="0 0.1 1 10 100"
declare -A FWDS REPS
for _ in 1 2 3; do
  for c in baseline xdp-min ebpf userspace userspace-socket; do
    start "$c"
    for s in $SHARES; do
      read -r f r < <(measure "$(config "$s")")
      FWDS[$c/$s]="${FWDS[$c/$s]:-} $f"
      REPS[$c/$s]="${REPS[$c/$s]:-} $r"
    done
    stop_reflector
  done
done
median() { printf '%s\n' $1 | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
for c in ebpf userspace userspace-socket; do
  for s in $SHARES; do
    f=$(median "${FWDS[$c/$s]}"); r=$(median "${REPS[$c/$s]}")
    b=$(median "${FWDS[baseline/$s]}")
    m=$(median "${FWDS[xdp-min/$s]}")
    ratio=$(awk -v a="$f" -v b="$b" 'BEGIN{ if (b > 0) printf "%.3f", a/b; else print "null" }')
    ratio_min=$(awk -v a="$f" -v b="$m" 'BEGIN{ if (b > 0) printf "%.3f", a/b; else print "null" }')
    target=$(awk -v s="$s" 'BEGIN{ print (s <= 1) ? "0.99" : "null" }')
    extra=""
    [ "$c" = ebpf ] && extra=",\"xdp_min_forwarded_pps\":$m,\"ratio_to_xdp_min\":$ratio_min"
    echo "{\"bench\":\"stamp_forwarding\",\"engine\":\"$c\",\"stamp_share_pct\":$s,\"forwarded_pps\":$f,\"replies_pps\":$r,\"baseline\":\"no STAMP programs\",\"baseline_forwarded_pps\":$b,\"ratio\":$ratio$extra,\"target_ratio\":$target}"
  done
done
