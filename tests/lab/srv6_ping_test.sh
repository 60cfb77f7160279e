#!/usr/bin/env bash
# The lab carries SRv6: an H.Encaps route on edge-a pinned through p2 to an End.DT6 SID on
# edge-b (table mode: no VRF in this kernel), configured with plain iproute2. site-a pings
# site-b over IPv6, the SRH is seen on the p2 link (and nothing on p1), and impairing
# edge-a->p2 by 20 ms and p2->edge-a by 10 ms raises the RTT by 30 ms +- 2 ms.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
lab_up

step "configure the static SRv6 slice through p2"
for x in a b; do
  "$LAB" exec edge-$x ip -6 route add fd10:$x::/64 dev lan0 table 100
  "$LAB" exec edge-$x ip -6 route add fc00:0:$x::d6/128 encap seg6local action End.DT6 table 100 dev sr0
  "$LAB" exec edge-$x ip -6 rule add iif lan0 lookup 100 pref 1000
done
"$LAB" exec edge-a ip -6 route add fd10:b::/64 encap seg6 mode encap segs "$SID_P2,fc00:0:b::d6" dev wan2 table 100
"$LAB" exec edge-b ip -6 route add fd10:a::/64 encap seg6 mode encap segs "$SID_P2,fc00:0:a::d6" dev wan2 table 100

step "ping site-a -> site-b while capturing on both core routers"
cap=$(mktemp -d)
for n in 1 2; do
  "$LAB" exec p$n timeout 10 tcpdump -l -n -i edge-a -c 3 'ip6 proto 43' >"$cap/p$n.txt" 2>"$cap/p$n.err" &
  echo $! >"$cap/p$n.pid"
done
for n in 1 2; do
  for _ in $(seq 100); do grep -q "listening on" "$cap/p$n.err" && break; sleep 0.05; done
done
out=$("$LAB" exec site-a ping -6 -c 5 -i 0.1 -W 1 "$SITE_B_V6") || fail "site-a cannot ping site-b over SRv6: $out"
echo "$out" | grep -q " 0% packet loss" || fail "packet loss on the SRv6 path: $out"
pass "site-a -> site-b IPv6 ping over SRv6"
wait "$(cat "$cap/p2.pid")" || true
kill "$(cat "$cap/p1.pid")" 2>/dev/null || true
wait "$(cat "$cap/p1.pid")" 2>/dev/null || true
cat "$cap/p2.txt"
grep -q "RT6 (.*segleft=1.*\[0\]fc00:0:b::d6, \[1\]$SID_P2)" "$cap/p2.txt" \
  || fail "no SRH with segments [$SID_P2, fc00:0:b::d6] seen on the p2 link"
pass "SRH seen on the p2 link"
! grep -q "RT6" "$cap/p1.txt" || fail "SRv6 traffic took p1, not the pinned p2: $(cat "$cap/p1.txt")"
pass "nothing of it on p1: the path is pinned through p2"
rm -rf "$cap"

step "impair edge-a->p2 by 20 ms and p2->edge-a by 10 ms"
base=$(ping_avg site-a -6 -q -c 20 -i 0.05 "$SITE_B_V6")
"$LAB" impair edge-a p2 --delay 20
"$LAB" impair p2 edge-a --delay 10
impaired=$(ping_avg site-a -6 -q -c 20 -i 0.05 "$SITE_B_V6")
rise=$(awk -v a="$impaired" -v b="$base" 'BEGIN { printf "%.3f", a - b }')
echo "RTT before ${base} ms, after ${impaired} ms, rise ${rise} ms"
within "$rise" 28 32 || fail "RTT rose by $rise ms, expected 30 +- 2 ms"
pass "RTT rose by $rise ms (expected 30 +- 2)"

step "teardown"
check_clean_teardown
