#!/usr/bin/env bash
# SLA steering in the lab, through the REST API: a slice a <-> b whose a->b traffic takes the
# underlay's route (through p1), an SLA of 10 ms one-way, and a policy probing three candidates
# (direct, via p1, via p2) every 100 ms in windows of 300 ms. 30 ms of delay on edge-a's link
# to p1 breaks direct and p1: the traffic of a ping at 10 ms moves to p2, seen by capture on
# edge-a's link to p2, with the time from the impairment to the first packet there and the
# ping's losses measured. Lifted, the traffic returns to direct after the hold-down (8 s).
# Toggled every 2 s for 16 s, the impairment moves the traffic at most once per hold-down.
# A 60 % random-drop rule on p1 (nftables) moves it too, on loss. With 30 ms on both cores'
# links no candidate complies and none is clearly better: the controller says so and keeps
# the traffic where it is. The tenant's webhook (a small receiver here) gets the alerts raised
# and cleared. A controller restart while the traffic is on p2 keeps it there without a switch;
# another tenant can neither see nor steer the slice; a loss session on a->b follows the flow to
# p2 and counts it there. Prints {"bench": "sla_switch", ...}.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
command -v curl >/dev/null || skip "needs curl"
command -v tcpdump >/dev/null || skip "needs tcpdump"
command -v nft >/dev/null || skip "needs nft (nftables)"
lab_claim
WORK=$(mktemp -d)
trap 'rc=$?; kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"; lab_teardown $rc' EXIT
export SEGWAN_LAB_HTTP=127.0.0.1:18083
HOLD_S=8
export SEGWAN_LAB_CONTROLLER_ARGS="--core-sids p1=fc00:0:1::e,p2=fc00:0:2::e --stream-batch-ms 40 --steering-grace-ms 150 --webhook-allow 127.0.0.1/32"
HOOK_PORT=18093

step "lab, tenant, slice a <-> b (unpinned), SLA 10 ms, policy on a->b"
"$LAB" up --detach
eval "$("$LAB" env)"
CTL_URL=$SEGWAN_URL
TENANT=$(api POST /api/v1/tenants "$SEGWAN_TOKEN" '{"name": "acme"}' | jget token)
api POST /api/v1/slices "$TENANT" '{"name": "blue",
  "sites": [{"device": "edge-a", "interface": "lan0"}, {"device": "edge-b", "interface": "lan0"}]}' >/dev/null
SLA=$(api POST /api/v1/sla-classes "$TENANT" '{"name": "voice", "limits": {"delay_ms": 10, "loss_pct": 20}}' | jget id)
POL=$(api POST /api/v1/steering-policies "$TENANT" "{\"slice\": \"sl1\", \"sla\": \"$SLA\",
  \"pairs\": [{\"from\": \"edge-a\", \"to\": \"edge-b\"}],
  \"probe\": {\"interval_ms\": 100, \"window_ms\": 300, \"windows\": 3, \"hold_down_s\": $HOLD_S}}" | jget id)
LS=$(api POST /api/v1/loss-sessions "$TENANT" '{"slice": "sl1", "from": "edge-a", "to": "edge-b", "period_ms": 1000}' | jget id)
/usr/bin/python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[2], "ab") as f:
            f.write(body + b"\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$HOOK_PORT" "$WORK/alerts" &
TENANT_ID=$(api GET /api/v1/whoami "$TENANT" | jget tenant)
api PUT "/api/v1/tenants/$TENANT_ID/webhook" "$TENANT" "{\"url\": \"http://127.0.0.1:$HOOK_PORT/alerts\"}" >/dev/null
active() { api GET "/api/v1/steering-policies/$POL" "$TENANT" | jget directions.0.active; }
active_is() { [ "$(active)" = "$1" ]; }
all_comply() {
  api GET "/api/v1/steering-policies/$POL" "$TENANT" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)["directions"][0]
sys.exit(0 if all(c["complies"] for c in d["candidates"]) else 1)'
}
wait_for 20 all_comply || fail "the candidates do not all comply unimpaired: $(api GET "/api/v1/steering-policies/$POL" "$TENANT")"
[ "$(active)" = direct ] || fail "expected direct, got $(active)"
pass "policy $POL: direct, p1 and p2 probed and compliant; traffic on direct"

step "another tenant can neither see nor steer acme's slice"
OTHER=$(api POST /api/v1/tenants "$SEGWAN_TOKEN" '{"name": "globex"}' | jget token)
code() { curl -s -o /dev/null -w '%{http_code}' -X "$1" -H "Authorization: Bearer $OTHER" -H 'Content-Type: application/json' ${3:+--data "$3"} "$CTL_URL$2"; }
[ "$(code GET "/api/v1/steering-policies/$POL")" = 404 ] || fail "globex reads acme's policy"
[ "$(api GET /api/v1/steering-policies "$OTHER")" = "[]" ] || fail "globex lists acme's policies"
[ "$(api GET /api/v1/sla-classes "$OTHER")" = "[]" ] || fail "globex lists acme's SLA classes"
[ "$(api GET "/api/v1/steering-events?limit=10" "$OTHER" | jget events)" = "[]" ] || fail "globex sees acme's events"
[ "$(code POST /api/v1/steering-policies "{\"slice\": \"sl1\", \"sla\": \"$SLA\", \"pairs\": [{\"from\": \"edge-a\", \"to\": \"edge-b\"}]}")" = 404 ] ||
  fail "globex steers acme's slice"
[ "$(code DELETE "/api/v1/steering-policies/$POL")" = 404 ] || fail "globex deletes acme's policy"
[ "$(code PUT "/api/v1/tenants/$TENANT_ID/webhook" '{"url": "http://127.0.0.1:1/x"}')" = 404 ] ||
  fail "globex sets acme's webhook"
[ "$(api GET /api/v1/steering-policies "$TENANT" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
  fail "acme's policy is gone"
pass "globex: 404 on acme's policy, SLA, events, slice and webhook; acme's policy untouched"

step "30 ms on edge-a -> p1: traffic moves to p2"
"$LAB" exec site-a ping -6 -i 0.01 -W 1 "$SITE_B_V6" >"$WORK/ping" 2>&1 &
PING=$!
"$LAB" exec edge-a tcpdump -l -n -tt -i wan2 ip6 >"$WORK/wan2" 2>/dev/null &
sleep 2
t0=$(date +%s.%N)
"$LAB" impair edge-a p1 --delay 30 >/dev/null
wait_for 10 active_is p2 || fail "no switch to p2 within 10 s (active: $(active))"
t_switched=$(date +%s%3N)
sleep 1
kill -INT $PING; wait $PING 2>/dev/null
first=$(grep -m1 "$SITE_B_V6" "$WORK/wan2" | awk '{print $1}')
[ -n "$first" ] || fail "no tenant traffic seen on edge-a's link to p2"
switch_s=$(awk -v a="$t0" -v b="$first" 'BEGIN { printf "%.3f", b - a }')
sent=$(grep -oE '[0-9]+ packets transmitted' "$WORK/ping" | awk '{print $1}')
recv=$(grep -oE '[0-9]+ received' "$WORK/ping" | awk '{print $1}')
lost=$((sent - recv))
echo "switch: first tenant packet via p2 ${switch_s} s after the impairment; ping lost $lost of $sent"
api GET "/api/v1/steering-events?limit=5" "$TENANT" | /usr/bin/python3 -c '
import json, sys
for e in reversed(json.load(sys.stdin)["events"]):
    print(" ", e["time"], e["kind"], e["path"], "->" if e["to_path"] else "", e["to_path"] or "", "delay %.2f ms" % e["measured"]["delay_ms"])'
within "$switch_s" 0 3 || fail "the switch took ${switch_s} s"
pass "switched to p2 in ${switch_s} s"

step "controller restart while on p2: the same choice, no switch, the traffic undisturbed"
switch_events() {
  api GET "/api/v1/steering-events?limit=100" "$TENANT" |
    /usr/bin/python3 -c 'import json, sys; print(sum(e["kind"] == "switch" for e in json.load(sys.stdin)["events"]))'
}
e0=$(switch_events)
"$LAB" exec site-a ping -6 -i 0.01 -W 1 "$SITE_B_V6" >"$WORK/ping2" 2>&1 &
PING=$!
# A flap would send the traffic back out of wan1 (direct or p1): capture what leaves there.
"$LAB" exec edge-a tcpdump -l -n -Q out -i wan1 ip6 >"$WORK/wan1" 2>/dev/null &
CAP=$!
sleep 1
pid0=$(cat /run/segwan-lab/pids/edge-os)
"$LAB" restart-controller >/dev/null
t_restarted=$(date +%s%3N)
[ "$(cat /run/segwan-lab/pids/edge-os)" != "$pid0" ] && ! kill -0 "$pid0" 2>/dev/null || fail "edge-os was not restarted"
eval "$("$LAB" env)"
sleep 3  # ten windows of the restarted controller's probing
[ "$(active)" = p2 ] || fail "after the restart the traffic is on $(active)"
kill -INT $PING; wait $PING 2>/dev/null
kill $CAP; wait $CAP 2>/dev/null
e1=$(switch_events)
[ "$e1" = "$e0" ] || fail "the restart caused $((e1 - e0)) switch event(s)"
leaked=$(grep -c "$SITE_B_V6" "$WORK/wan1" || true)
[ "$leaked" -eq 0 ] || fail "$leaked tenant packet(s) left through wan1 around the restart"
sent=$(grep -oE '[0-9]+ packets transmitted' "$WORK/ping2" | awk '{print $1}')
recv=$(grep -oE '[0-9]+ received' "$WORK/ping2" | awk '{print $1}')
[ "$recv" -eq "$sent" ] || fail "the ping lost $((sent - recv)) of $sent across the restart"
pass "still on p2 after the restart: no switch event, 0 of $sent pings lost, no packet out of wan1"

step "the loss session on a->b followed the flow to p2 and counts its traffic there"
[ "$(api GET "/api/v1/loss-sessions/$LS" "$TENANT" | jget segments.0)" = "$SID_P2" ] ||
  fail "loss session $LS monitors $(api GET "/api/v1/loss-sessions/$LS" "$TENANT" | jget segments)"
counted() {  # counted SINCE_MS -> "sent lost" over the periods closed since then
  api GET "/api/v1/loss-sessions/$LS/periods?since=$1" "$TENANT" |
    /usr/bin/python3 -c 'import json, sys; p = json.load(sys.stdin)["periods"]; print(sum(x["sent"] for x in p), sum(x["lost"] for x in p))'
}
# The ping ran about 3 s after the restart: the restarted controller goes on counting.
after_restart() { read -r c _ < <(counted "$t_restarted"); [ "$c" -ge 100 ]; }
wait_for 10 after_restart || fail "the loss session counted $(counted "$t_restarted" | cut -d' ' -f1) packets on p2 after the restart: $(api GET "/api/v1/loss-sessions/$LS/periods?since=$((t_switched - 5000))" "$TENANT")"
read -r ls_sent ls_lost < <(counted "$t_switched")
[ "$ls_lost" -eq 0 ] || fail "loss session $LS reports $ls_lost lost on an unimpaired path: $(api GET "/api/v1/loss-sessions/$LS/periods?since=$((t_switched - 5000))" "$TENANT")"
pass "loss session $LS on p2: $ls_sent packets counted since the switch ($(counted "$t_restarted" | cut -d' ' -f1) after the restart), 0 lost"

step "impairment lifted: traffic returns to direct after the ${HOLD_S} s hold-down"
t1=$(date +%s)
"$LAB" impair edge-a p1 >/dev/null
wait_for $((HOLD_S + 10)) active_is direct || fail "no return to direct"
back_s=$(( $(date +%s) - t1 ))
[ "$back_s" -ge $((HOLD_S - 1)) ] || fail "returned after ${back_s} s, before the hold-down"
pass "back on direct after ${back_s} s"
alerted() { grep -q "\"state\":\"$1\"" "$WORK/alerts" 2>/dev/null; }  # (the switch itself clears it)
wait_for 10 alerted raised && wait_for 10 alerted cleared || fail "the webhook did not get raise and clear: $(cat "$WORK/alerts" 2>/dev/null)"
echo "webhook: $(grep -c . "$WORK/alerts") alert(s); first: $(head -1 "$WORK/alerts" | cut -c1-160)"
pass "the tenant's webhook got the alert raised and cleared"

step "impairment toggled every 2 s for 16 s: at most one switch per hold-down"
switches() {
  curl -s -H "Authorization: Bearer $SEGWAN_TOKEN" "$CTL_URL/metrics" |
    awk -v p="$POL" '$1 ~ "^segwan_steering_switches_total" && index($1, "policy=\"" p "\"") { print $2 }'
}
s0=$(switches)
sleep $HOLD_S  # the return's own hold-down passes first
for _ in 1 2 3 4; do
  "$LAB" impair edge-a p1 --delay 30 >/dev/null; sleep 2
  "$LAB" impair edge-a p1 >/dev/null; sleep 2
done
flap=$(( $(switches) - s0 ))
echo "switches while toggling: $flap"
[ "$flap" -le $(( (16 + HOLD_S - 1) / HOLD_S )) ] || fail "$flap switches in 16 s with a ${HOLD_S} s hold-down"
pass "$flap switch(es) in 16 s of toggling"

step "a 60 % random-drop rule on p1: the traffic moves to p2 on loss"
wait_for $((HOLD_S + 10)) active_is direct || fail "not back on direct after the toggling"
"$LAB" exec p1 nft -f - <<'NFT'
table inet segwan_steering_test {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip6 daddr fc00:0:b::/48 numgen random mod 100 < 60 counter drop
  }
}
NFT
wait_for 15 active_is p2 || fail "no switch on loss (active: $(active))"
loss=$(api GET "/api/v1/steering-events?limit=3" "$TENANT" | /usr/bin/python3 -c '
import json, sys
e = [x for x in json.load(sys.stdin)["events"] if x["kind"] == "switch"]
print(e[0]["measured"]["loss_pct"] if e else "none")')
[ "$loss" != none ] || fail "no switch event"
"$LAB" exec p1 nft delete table inet segwan_steering_test
pass "switched to p2 on loss (the window that decided it lost ${loss} %)"

step "30 ms on both cores' links: nothing complies, nothing clearly better, the traffic stays"
wait_for $((HOLD_S + 10)) active_is direct || fail "not back on direct after the drop rule went"
s1=$(switches)
"$LAB" impair edge-a p1 --delay 30 >/dev/null
"$LAB" impair edge-a p2 --delay 30 >/dev/null
no_compliant() { api GET "/api/v1/steering-events?limit=3" "$TENANT" | grep -q '"no_compliant"'; }
wait_for 10 no_compliant || fail "no no_compliant event"
sleep 3
[ "$(switches)" = "$s1" ] || fail "the traffic moved although no candidate was better"
[ "$(active)" = direct ] || fail "expected direct, got $(active)"
"$LAB" impair edge-a p1 >/dev/null
"$LAB" impair edge-a p2 >/dev/null
pass "no_compliant said, no switch"

echo "{\"bench\": \"sla_switch\", \"switch_s\": $switch_s, \"lost_packets\": $lost, \"flap_switches\": $flap, \"hold_down_s\": $HOLD_S}"
