#!/usr/bin/env bash
# Forwarding rate of H.Encaps traffic through an edge, with and without the alternate-marking
# programs, in the same run: trafgen pushes IPv6/UDP frames into the edge's LAN veth, the edge
# encapsulates them (seg6, two SIDs) out of its WAN veth, and the rate is the WAN interface's
# transmitted packets per second over a fixed window. Three configurations, alternated three
# times, medians: no programs (baseline), programs attached but monitoring nothing, and the
# flow monitored (coloured + counted). Prints JSON lines; the target is >= 0.95 of the baseline.
set -euo pipefail
BUILD=${SEGWAN_BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}
skip() { echo "{\"bench\":\"altmark_forwarding\",\"skipped\":\"$*\"}"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
command -v trafgen >/dev/null || skip "needs trafgen (netsniff-ng)"
P=swb-
source "$(dirname "$0")/forwarding_edge.sh"
HOLDER=""
cleanup() {
  [ -z "$HOLDER" ] || { kill "$HOLDER" 2>/dev/null || true; wait "$HOLDER" 2>/dev/null || true; }
  forwarding_edge_down
  rm -f "$CFG"
}
CFG=$(mktemp)
trap cleanup EXIT
forwarding_edge_up
cat >"$CFG" <<CFG
{ eth(da=$LAN_MAC, sa=02:00:00:00:0a:02, type=0x86dd),
  ipv6(sa=fd10:a::2, da=fd10:b::2, hl=64, nh=17, len=72),
  udp(sp=4000, dp=9, len=72),
  fill(0x00, 64) }
CFG

# rate: WAN transmitted packets per second over a 2 s window while trafgen runs
rate() {
  ip netns exec "${P}gen" timeout 4 trafgen -i "$CFG" -o g0 -t 0 -q >/dev/null 2>&1 &
  local gen=$!
  sleep 1
  local a b
  a=$(E cat /sys/class/net/wan0/statistics/tx_packets)
  sleep 2
  b=$(E cat /sys/class/net/wan0/statistics/tx_packets)
  wait "$gen" 2>/dev/null || true
  echo $(((b - a) / 2))
}
hold() {  # hold [SIDS]: the programs on wan0 (monitoring SIDS when given)
  E "$BUILD/bench/bench_altmark_attach" wan0 "$@" >"$CFG.holder" 2>&1 &
  HOLDER=$!
  for _ in $(seq 50); do grep -q ready "$CFG.holder" 2>/dev/null && return 0; sleep 0.05; done
  skip "the programs could not be attached: $(cat "$CFG.holder")"
}
release() { kill "$HOLDER"; wait "$HOLDER" 2>/dev/null || true; HOLDER=""; }

base=() idle=() mon=()
for _ in 1 2 3; do
  base+=("$(rate)")
  hold; idle+=("$(rate)"); release
  hold fc00:0:1::e,fc00:0:b:1::d6; mon+=("$(rate)"); release
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
B=$(median "${base[@]}") I=$(median "${idle[@]}") M=$(median "${mon[@]}")
[ "$B" -gt 0 ] || skip "no packets were forwarded"
for row in "attached, monitoring nothing:$I" "flow monitored (coloured + counted):$M"; do
  echo "{\"bench\":\"altmark_forwarding\",\"case\":\"${row%%:*}\",\"pps\":${row##*:},\"baseline\":\"no programs\",\"baseline_pps\":$B,\"ratio\":$(awk -v a="${row##*:}" -v b="$B" 'BEGIN{printf "%.3f", a/b}'),\"target_ratio\":0.95}"
done
rm -f "$CFG.holder"
