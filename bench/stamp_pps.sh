#!/usr/bin/env bash
# Reflected STAMP packets per second on a veth pair, for every reflector in the same run:
# trafgen (one worker on its TX ring, pinned to CPU 0) sends 106-byte test packets (IPv6/UDP,
# 44-byte unauthenticated STAMP, SSID 1) into refl0, more than the user-space reflectors answer
# (a throughput test measures the reflector only when the offer is above what it takes); what
# comes back on gen0 is counted (and dropped) by an XDP program. NAPI is not threaded (a veth
# has no NAPI to thread before an XDP program is attached): each side's receive work runs in
# softirq on the CPU that sent to it, so the replies' reception is partly in the reflector's own
# time, for every reflector alike.
# Reflectors: SegWAN's XDP program (eBPF engine), a minimal XDP reflector, SegWAN's user-space
# engine (segwan-stamp reflect: with its AF_PACKET ring, and with sockets only), a Python
# AF_PACKET reflector with prebuilt bytes, and a Scapy reflector (sendp per packet). The fast
# ones alternate three times (medians); Scapy runs once. JSON lines; targets: the eBPF engine
# >= 0.9 x the minimal XDP reflector, the user-space engine >= 3 x Python AF_PACKET.
set -euo pipefail
BUILD=${SEGWAN_BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}
HERE=$(cd "$(dirname "$0")" && pwd)
HELPER="$BUILD/bench/bench_stamp_pps_helper"
skip() { echo "{\"bench\":\"stamp_pps\",\"skipped\":\"$*\"}"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
command -v trafgen >/dev/null || skip "needs trafgen (netsniff-ng)"
P=swp-
REFL=""
CFG=$(mktemp)
stop_reflector() {
  [ -z "$REFL" ] || { kill "$REFL" 2>/dev/null || true; wait "$REFL" 2>/dev/null || true; }
  REFL=""
}
cleanup() {
  stop_reflector
  for n in gen refl; do ip netns del "$P$n" 2>/dev/null || true; done
  rm -f "$CFG" "$CFG.out" "$CFG.count"
}
trap cleanup EXIT
G() { ip netns exec "${P}gen" "$@"; }
R() { ip netns exec "${P}refl" "$@"; }
# Background processes are started with `ip netns exec` itself (which execs the command), never
# through a function: $! must be the process to stop, not a subshell that leaves it running.
IN_R="ip netns exec ${P}refl"
for n in gen refl; do ip netns add "$P$n"; ip -n "$P$n" link set lo up; done
ip link add gen0 netns "${P}gen" type veth peer name refl0 netns "${P}refl"
G ip link set gen0 up
R ip link set refl0 up
G ip -6 addr add fd5e:b::2/64 dev gen0 nodad
R ip -6 addr add fd5e:b::1/64 dev refl0 nodad
GEN_MAC=$(G cat /sys/class/net/gen0/address)
REFL_MAC=$(R cat /sys/class/net/refl0/address)
G ip -6 neigh add fd5e:b::1 lladdr "$REFL_MAC" dev gen0
R ip -6 neigh add fd5e:b::2 lladdr "$GEN_MAC" dev refl0
cat >"$CFG" <<CFG
{ eth(da=$REFL_MAC, sa=$GEN_MAC, type=0x86dd),
  ipv6(sa=fd5e:b::2, da=fd5e:b::1, hl=64, nh=17, len=52),
  udp(sp=40000, dp=862, len=52),
  0x00, 0x00, 0x00, 0x2a, 0xe9, 0x8f, 0x2a, 0x10, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x01,
  fill(0x00, 28) }
CFG

# start NAME: the reflector NAME in the reflector's namespace, until stop_reflector
start() {
  case $1 in
    xdp-min) $IN_R "$HELPER" min refl0 >"$CFG.out" 2>&1 & ;;
    ebpf) $IN_R "$HELPER" stamp refl0 fd5e:b::1 >"$CFG.out" 2>&1 & ;;
    userspace) $IN_R taskset -c 1 "$BUILD/edge-manager/segwan-stamp" reflect --listen fd5e:b::1 >"$CFG.out" 2>&1 & ;;
    userspace-socket) $IN_R taskset -c 1 "$BUILD/edge-manager/segwan-stamp" reflect --no-ring --listen fd5e:b::1 >"$CFG.out" 2>&1 & ;;
    afpacket) $IN_R taskset -c 1 python3 "$HERE/afpacket_reflector.py" refl0 >"$CFG.out" 2>&1 & ;;
    scapy) $IN_R taskset -c 1 /usr/bin/python3 "$HERE/scapy_reflector.py" refl0 >"$CFG.out" 2>&1 & ;;
  esac
  REFL=$!
  for _ in $(seq 200); do grep -qE 'ready|reflecting' "$CFG.out" 2>/dev/null && return 0; sleep 0.05; done
  echo "{\"bench\":\"stamp_pps\",\"case\":\"$1\",\"skipped\":\"did not start: $(tr '\n"' ' ' <"$CFG.out")\"}"
  stop_reflector
  return 1
}
# cpu_ticks PID: user + system clock ticks of a process so far (0 for none)
cpu_ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
GEN_ARGS=(-P 1)  # the generator: one worker on its TX ring, as fast as it goes
# measure WINDOW_S: "reflected_pps offered_pps cpu_ns_per_packet" over the window, after a 1 s
# warm-up; the CPU is the reflector process's own (user + system), for the user-space ones
measure() {
  local window=$1 tx0 tx1 out c0 c1 counter
  ip netns exec "${P}gen" taskset -c 0 timeout $((window + 3)) trafgen -i "$CFG" -o gen0 "${GEN_ARGS[@]}" -q >/dev/null 2>&1 &
  local gen=$!
  tx0=$(G cat /sys/class/net/gen0/statistics/tx_packets)
  ip netns exec "${P}gen" "$HELPER" count gen0 1 "$window" >"$CFG.count" 2>&1 &
  counter=$!
  sleep 1
  c0=$(cpu_ticks "$REFL")
  wait "$counter" 2>/dev/null || true
  c1=$(cpu_ticks "$REFL")
  out=$(cat "$CFG.count")
  tx1=$(G cat /sys/class/net/gen0/statistics/tx_packets)
  kill "$gen" 2>/dev/null || true
  wait "$gen" 2>/dev/null || true
  local pps
  pps=$(echo "$out" | sed -E 's/.*"pps": ([0-9]+).*/\1/')
  echo "$pps $(((tx1 - tx0) / (window + 1))) $(awk -v c=$((c1 - c0)) -v p="$pps" -v w="$window" -v hz="$(getconf CLK_TCK)" \
    'BEGIN{ if (p > 0) printf "%d", c * 1e9 / hz / (p * w); else print 0 }')"
}
# The generator's own rate with nobody answering (the better of two runs). Now and then its TX
# ring stops for seconds on this veth pair; a run that offered less than half that rate measured
# the stall, not the reflector, and is taken again (twice at most; counted in the output).
GEN_PPS=0
for _ in 1 2; do
  read -r _ o _ < <(measure 2)
  [ "$o" -le "$GEN_PPS" ] || GEN_PPS=$o
done
STALLS=0
declare -A PPS OFFERED CPU
run() {  # run NAME WINDOW [LOAD]: one measurement of NAME appended to its list (NAME@LOAD's)
  local tries=0 p o c key=$1${3:+@$3}
  start "$1" || return 0
  while :; do
    read -r p o c < <(measure "$2")
    [ "$o" -lt $((GEN_PPS / 2)) ] && [ "$tries" -lt 2 ] || break
    tries=$((tries + 1)) STALLS=$((STALLS + 1))
  done
  stop_reflector
  PPS[$key]="${PPS[$key]:-} $p"
  OFFERED[$key]="${OFFERED[$key]:-} $o"
  CPU[$key]="${CPU[$key]:-} $c"
}
for _ in 1 2 3; do
  for r in xdp-min ebpf userspace userspace-socket afpacket; do run $r 2; done
done
run scapy 3
# Sparse traffic, about 10,000 packets/s evenly spaced (trafgen waits between sends): what the
# user-space reflectors cost when each packet wakes them (no stall check: this offer is low)
GEN_ARGS=(-t 50us) GEN_PPS_FAST=$GEN_PPS GEN_PPS=0
for _ in 1 2 3; do
  for r in userspace afpacket; do run $r 3 sparse; done
done
GEN_PPS=$GEN_PPS_FAST
median() { printf '%s\n' $1 | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
runs() { printf '%s\n' $1 | paste -sd, -; }  # runs "A B C": A,B,C
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.3f", a/b; else print "null" }'; }
row() {  # row CASE NAME BASE_NAME BASE_LABEL TARGET
  local p b o
  p=$(median "${PPS[$2]:-0}"); b=$(median "${PPS[$3]:-0}"); o=$(median "${OFFERED[$2]:-0}")
  echo "{\"bench\":\"stamp_pps\",\"case\":\"$1\",\"pps\":$p,\"runs_pps\":[$(runs "${PPS[$2]:-}")],\"offered_pps\":$o,\"baseline\":\"$4\",\"baseline_pps\":$b,\"ratio\":$(ratio "$p" "$b"),\"target_ratio\":$5}"
}
row "eBPF engine (SegWAN XDP program)" ebpf xdp-min "minimal XDP reflector" 0.9
row "user-space engine (segwan-stamp reflect: AF_PACKET ring)" userspace afpacket "Python AF_PACKET reflector, prebuilt bytes" 3
row "user-space engine, sockets only (segwan-stamp reflect --no-ring)" userspace-socket afpacket "Python AF_PACKET reflector, prebuilt bytes" null
row "Scapy reflector (sendp per packet)" scapy xdp-min "minimal XDP reflector" null
# CPU per reflected packet of the reflector process itself: what decides when the offered load
# (the generator) is the limit rather than the reflector
cpu_row() {  # cpu_row CASE NAME [LOAD TARGET]: ns of the reflector's CPU per packet against Python AF_PACKET's
  local c b load=${3:-saturated}
  c=$(median "${CPU[$2${3:+@$3}]:-0}"); b=$(median "${CPU[afpacket${3:+@$3}]:-0}")
  echo "{\"bench\":\"stamp_pps_cpu\",\"case\":\"$1\",\"load\":\"$load\",\"pps\":$(median "${PPS[$2${3:+@$3}]:-0}"),\"cpu_ns_per_packet\":$c,\"baseline\":\"Python AF_PACKET reflector, prebuilt bytes\",\"baseline_cpu_ns_per_packet\":$b,\"speedup\":$(ratio "$b" "$c"),\"target_speedup\":${4:-3}}"
}
cpu_row "user-space engine (AF_PACKET ring)" userspace
cpu_row "user-space engine, sockets only" userspace-socket
cpu_row "user-space engine (AF_PACKET ring)" userspace sparse null
row "Python AF_PACKET reflector, prebuilt bytes" afpacket xdp-min "minimal XDP reflector" null
echo "{\"bench\":\"stamp_pps_generator\",\"offered_pps\":$GEN_PPS,\"stalled_runs_taken_again\":$STALLS}"
