#!/usr/bin/env bash
# Loss monitoring (alternate marking) end to end, through the REST API: a loss session on the
# slice's site-a -> site-b flow; with no drop anywhere every period reports zero loss and the
# periods account for every packet sent; with an nftables random-drop rule on the core router
# the flow crosses, each period's loss equals what the rule dropped in that period, exactly.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
command -v curl >/dev/null || skip "needs curl"
command -v nft >/dev/null || skip "needs nft (nftables)"
lab_claim
NS_BEFORE=$(ns_snapshot | grep -v '^sw-' || true)
trap lab_teardown EXIT
export SEGWAN_LAB_HTTP=127.0.0.1:18082
export SEGWAN_LAB_CONTROLLER_ARGS="--poll-interval-ms 250"
PERIOD_MS=3000

step "lab, tenant, slice a <-> b (a->b via p1), loss session on the a->b flow"
"$LAB" up --detach
eval "$("$LAB" env)"
CTL_URL=$SEGWAN_URL
grep -q '"loss"' <(api GET /api/v1/devices/edge-a "$SEGWAN_TOKEN") || skip "the agents could not load the alternate-marking programs"
TENANT=$(api POST /api/v1/tenants "$SEGWAN_TOKEN" '{"name": "acme"}' | jget token)
api POST /api/v1/slices "$TENANT" "{\"name\": \"blue\",
  \"sites\": [{\"device\": \"edge-a\", \"interface\": \"lan0\"}, {\"device\": \"edge-b\", \"interface\": \"lan0\"}],
  \"paths\": [{\"from\": \"edge-a\", \"to\": \"edge-b\", \"waypoints\": [\"$SID_P1\"]},
              {\"from\": \"edge-b\", \"to\": \"edge-a\", \"waypoints\": [\"$SID_P2\"]}]}" >/dev/null
ls=$(api POST /api/v1/loss-sessions "$TENANT" "{\"slice\": \"sl1\", \"from\": \"edge-a\", \"to\": \"edge-b\", \"period_ms\": $PERIOD_MS}")
LS=$(echo "$ls" | jget id)
echo "flow: $(echo "$ls" | jget segments)"
pass "loss session $LS"

# send N: N UDP datagrams from site-a to site-b, 2 ms apart
send() {
  "$LAB" exec site-a /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[2])):
    s.sendto(b"x" * 200, (sys.argv[1], 9))
    time.sleep(0.002)' "$SITE_B_V6" "$1"
}
# periods_since MS -> "count sent received lost" summed over the closed periods ending after MS
periods_since() {
  api GET "/api/v1/loss-sessions/$LS/periods?since=$1" "$TENANT" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)["periods"]
print(len(p), sum(x["sent"] for x in p), sum(x["received"] for x in p), sum(x["lost"] for x in p))
for x in p:
    assert x["lost"] == x["sent"] - x["received"], x'
}
# waits until the periods after MS have accounted for SENT packets (all closed)
settled() { read -r _ s _ _ < <(periods_since "$1"); [ "$s" -ge "$2" ]; }

step "no drop rule: every period reports zero loss and the periods account for every packet"
t0=$(date +%s%3N)
send 800
wait_for 15 settled "$t0" 800 || fail "the periods did not account for 800 packets: $(periods_since "$t0")"
read -r n sent recv lost < <(periods_since "$t0")
echo "$n periods: sent $sent, received $recv, lost $lost"
[ "$sent" -eq 800 ] && [ "$recv" -eq 800 ] && [ "$lost" -eq 0 ] || fail "expected 800 sent, 800 received, 0 lost"
zero=$(api GET "/api/v1/loss-sessions/$LS/periods" "$TENANT" | /usr/bin/python3 -c '
import json, sys; print(all(x["lost"] == 0 for x in json.load(sys.stdin)["periods"]))')
[ "$zero" = True ] || fail "a period reported loss with nothing dropping packets"
pass "every period: zero loss; 800 of 800 accounted for"

step "a random-drop rule on p1: the measured loss equals the rule's drop counter"
"$LAB" exec p1 nft -f - <<'NFT'
table inet segwan_loss_test {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip6 daddr fc00:0:b::/48 numgen random mod 100 < 5 counter drop
  }
}
NFT
nft_dropped() { "$LAB" exec p1 nft list chain inet segwan_loss_test forward | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'; }
last_index() {
  api GET "/api/v1/loss-sessions/$LS/periods" "$TENANT" | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)["periods"]
print(p[-1]["index"] if p else -1)'
}
period_of() {  # period_of INDEX -> "sent received lost" of that closed period
  api GET "/api/v1/loss-sessions/$LS/periods" "$TENANT" | /usr/bin/python3 -c '
import json, sys
i = int(sys.argv[1])
p = [x for x in json.load(sys.stdin)["periods"] if x["index"] == i]
print(p[0]["sent"], p[0]["received"], p[0]["lost"]) if p else sys.exit(1)' "$1"
}
newer_than() { [ "$(last_index)" -gt "$1" ]; }
# Each round: right after a period closes (half a period into the next one), a burst short
# enough to stay inside that period; the next closed period must hold exactly the burst, and
# its loss exactly what the rule dropped meanwhile.
total_lost=0 total_dropped=0
for round in 1 2 3; do
  idx=$(last_index)
  wait_for 10 newer_than "$idx" || fail "no period closed"
  current=$(($(last_index) + 1))
  d0=$(nft_dropped)
  send 250
  d1=$(nft_dropped)
  wait_for 10 period_of "$current" || fail "period $current did not close"
  read -r sent recv lost < <(period_of "$current")
  echo "period $current: sent $sent, received $recv, lost $lost; nft dropped $((d1 - d0))"
  [ "$sent" -eq 250 ] || fail "period $current counted $sent packets sent, the burst was 250"
  [ "$lost" -eq $((d1 - d0)) ] || fail "period $current: measured loss $lost, the rule dropped $((d1 - d0))"
  total_lost=$((total_lost + lost))
  total_dropped=$((total_dropped + d1 - d0))
done
[ "$total_dropped" -gt 0 ] || fail "the rule dropped nothing: the test proves nothing"
pass "every period's loss equals the rule's drops, exactly ($total_lost in all)"

check_clean_teardown
