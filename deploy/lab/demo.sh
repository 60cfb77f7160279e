#!/usr/bin/env bash
# `make demo`: brings the lab up and shows SRv6 at work across it. site-a and site-b are joined
# by a slice in table mode (End.DT6 for IPv6, End.DX4 for IPv4), the a->b path is pinned
# through p1 and the b->a path through p2, and the links are impaired so the two directions
# differ (15 ms a->b, 5 ms b->a). Ctrl-C tears everything down.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB="$HERE/lab.sh"
[ "$(id -u)" -eq 0 ] || { echo "demo: must run as root (network namespaces)" >&2; exit 1; }

"$LAB" up --detach
trap 'echo; "$LAB" down' EXIT
trap 'exit 0' INT TERM
eval "$("$LAB" env)"
x() { "$LAB" exec "$@"; }

# slice on edge X towards edge Y through core N: table 100, decap SIDs ::d6 / ::d4
slice_end() {
  local x=$1 y=$2 core_sid=$3 v4net=$4
  x edge-$x ip -6 route add "fd10:$x::/64" dev lan0 table 100
  x edge-$x ip -6 route add "fc00:0:$x::d6/128" encap seg6local action End.DT6 table 100 dev sr0
  x edge-$x ip -6 route add "fc00:0:$x::d4/128" encap seg6local action End.DX4 nh4 "$v4net.2" dev lan0
  x edge-$x ip -6 rule add iif lan0 lookup 100 pref 1000
  x edge-$x ip -4 rule add iif lan0 lookup 100 pref 1000
  x edge-$x ip -6 route add "fd10:$y::/64" encap seg6 mode encap segs "$core_sid,fc00:0:$y::d6" dev sr0 table 100
  x edge-$x ip -4 route add "$5" encap seg6 mode encap segs "$core_sid,fc00:0:$y::d4" dev sr0 table 100
}
slice_end a b "$SID_P1" 10.10.1 10.10.2.0/24
slice_end b a "$SID_P2" 10.10.2 10.10.1.0/24
"$LAB" impair edge-a p1 --delay 15 --jitter 0.5
"$LAB" impair p2 edge-a --delay 5 --jitter 0.5

cat <<MSG

SegWAN lab is up: site-a <-> site-b over SRv6 (a->b through p1, b->a through p2).
  site-a -> site-b is delayed 15 ms on edge-a->p1; the reply 5 ms on p2->edge-a.
  Try:  deploy/lab/lab.sh exec site-a ping $SITE_B_V6
        deploy/lab/lab.sh exec p1 tcpdump -ni edge-a 'ip6 proto 43'
        deploy/lab/lab.sh impair edge-a p1 --delay 40 --loss 5
        deploy/lab/lab.sh status

One SRv6 packet on the p1 link (outer header, SRH, inner packet):
MSG
x p1 timeout 5 tcpdump -n -i edge-a -c 1 'ip6 proto 43' 2>/dev/null &
sleep 0.5
x site-a ping -6 -c 1 -q "$SITE_B_V6" >/dev/null || true
wait || true
echo
echo "IPv4 across the slice (End.DX4):"
x site-a ping -c 2 "$SITE_B_V4" | sed -n '2,3p'
echo
echo "IPv6 across the slice (End.DT6), RTT ~20 ms = 15 ms + 5 ms; Ctrl-C to stop and tear down:"
x site-a ping -6 -i 0.5 "$SITE_B_V6" || true
