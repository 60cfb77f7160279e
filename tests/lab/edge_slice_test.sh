#!/usr/bin/env bash
# Two edge-manager agents in the lab, driven over gRPC: ApplySlice on edge-a and edge-b makes
# site-a <-> site-b IPv6 and IPv4 traffic flow over SRv6 (table mode, chosen: the lab run of the
# mode for kernels without VRF; lab.edge_vrf and the controller tests run the default, VRF),
# the pinned core router really carries it, re-pinning moves it, applying twice changes nothing,
# an invalid request changes nothing, a restarted agent restores its slices, and RemoveSlice
# leaves no route, rule or SID behind.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
lab_up
AGENT_STATE_ROOT=$(mktemp -d)
trap 'rc=$?; rm -rf "$AGENT_STATE_ROOT"; lab_teardown $rc' EXIT

before_a=$(kernel_snapshot edge-a)
before_b=$(kernel_snapshot edge-b)
start_agent a --slice-mode table
start_agent b --slice-mode table

# slice JSON for edge X: to edge Y through core N
slice_json() {
  local x=$1 y=$2 core=$3 xi yi
  xi=$(case $x in a) echo 1;; b) echo 2;; c) echo 3;; esac)
  yi=$(case $y in a) echo 1;; b) echo 2;; c) echo 3;; esac)
  cat <<JSON
{"id": "blue", "table": 100, "lan_interfaces": ["lan0"],
 "lan_prefixes": ["10.10.$xi.0/24", "fd10:$x::/64"],
 "local_sids": {"sid6": "fc00:0:$x::d6", "sid4": "fc00:0:$x::d4", "nexthop4": "10.10.$xi.2"},
 "remotes": [{"name": "edge-$y", "prefixes": ["10.10.$yi.0/24", "fd10:$y::/64"],
              "segments": ["$core", "fc00:0:$y::d6"], "segments_v4": ["$core", "fc00:0:$y::d4"]}]}
JSON
}

step "before any slice, site-a cannot reach site-b"
! "$LAB" exec site-a ping -6 -c 1 -W 1 "$SITE_B_V6" >/dev/null 2>&1 || fail "site-b reachable without a slice"

step "ApplySlice on both edges: a->b through p1, b->a through p2"
out=$(slice_json a b "$SID_P1" | edgectl a apply -) || fail "apply on edge-a: $out"
echo "$out" | grep -q '"mode": "SLICE_MODE_TABLE"' || fail "edge-a did not report table mode: $out"
slice_json b a "$SID_P2" | edgectl b apply - >/dev/null || fail "apply on edge-b"
"$LAB" exec site-a ping -6 -c 3 -i 0.1 -W 1 -q "$SITE_B_V6" >/dev/null || fail "IPv6 site-a -> site-b does not flow"
"$LAB" exec site-a ping -4 -c 3 -i 0.1 -W 1 -q "$SITE_B_V4" >/dev/null || fail "IPv4 site-a -> site-b does not flow"
"$LAB" exec site-b ping -6 -c 3 -i 0.1 -W 1 -q "$SITE_A_V6" >/dev/null || fail "IPv6 site-b -> site-a does not flow"
pass "IPv6 and IPv4 flow both ways over the slice"

on_p1=$(srh_count_during 1 a "$LAB" exec site-a ping -6 -c 3 -i 0.1 "$SITE_B_V6")
on_p2=$(srh_count_during 2 a "$LAB" exec site-a ping -6 -c 3 -i 0.1 "$SITE_B_V6")
echo "SRH packets on the edge-a links: p1 $on_p1, p2 $on_p2"
# requests leave edge-a via p1; replies come back from edge-b via p2
[ "$on_p1" -ge 3 ] && [ "$on_p2" -ge 3 ] || fail "expected requests on p1 and replies on p2"
on_p1_v4=$(srh_count_during 1 a "$LAB" exec site-a ping -4 -c 3 -i 0.1 "$SITE_B_V4")
[ "$on_p1_v4" -ge 3 ] || fail "IPv4 is not carried over SRv6 through p1 ($on_p1_v4 packets)"
pass "the pinned core routers carry the traffic, IPv4 included"

step "re-pin a->b through p2"
slice_json a b "$SID_P2" | edgectl a apply - >/dev/null || fail "re-pin"
on_p1=$(srh_count_during 1 a "$LAB" exec site-a ping -6 -c 3 -i 0.1 "$SITE_B_V6")
[ "$on_p1" -eq 0 ] || fail "traffic still crosses p1 after re-pinning ($on_p1 packets)"
"$LAB" exec site-a ping -6 -c 2 -i 0.1 -W 1 -q "$SITE_B_V6" >/dev/null || fail "no traffic after re-pinning"
pass "re-pinned: nothing on p1 any more"

step "applying the same request twice changes nothing"
snap=$(kernel_snapshot edge-a)
out=$(slice_json a b "$SID_P2" | edgectl a apply -)
echo "$out" | grep -q '"routes_added"' && fail "a repeated apply added routes: $out"
[ "$(kernel_snapshot edge-a)" = "$snap" ] || fail "a repeated apply changed the kernel"
pass "second apply: nothing added, kernel unchanged"

step "invalid requests are refused with the field named, and change nothing"
check_refused() {
  local json=$1 field=$2 err
  if err=$(echo "$json" | edgectl a apply - 2>&1); then fail "accepted: $json"; fi
  echo "$err" | grep -q "INVALID_ARGUMENT" || fail "not INVALID_ARGUMENT: $err"
  echo "$err" | grep -qF "$field" || fail "error does not name $field: $err"
  echo "  refused: $err"
}
check_refused "$(slice_json a b "fc00::zz")" "slice.remotes[0].segments[0]"
check_refused "$(slice_json a b "$SID_P2" | sed 's/"lan0"/"eth9"/')" "slice.lan_interfaces"
check_refused "$(slice_json a b "$SID_P2" | sed 's/"table": 100/"table": 254/')" "slice.table"
check_refused "$(slice_json a b "$SID_P2" | sed 's|"fd10:b::/64"|"fd10:b::1/64"|')" "slice.remotes[0].prefixes[1]"
[ "$(kernel_snapshot edge-a)" = "$snap" ] || fail "a refused request changed the kernel"
pass "refused requests left edge-a exactly as it was"

step "a restarted agent restores its slices from its state folder"
stop_agent a
"$LAB" exec edge-a ip -6 route flush table 100
"$LAB" exec edge-a ip -4 route flush table 100
"$LAB" exec edge-a ip -6 route del fc00:0:a::d6/128
! "$LAB" exec site-a ping -6 -c 1 -W 1 "$SITE_B_V6" >/dev/null 2>&1 || fail "slice still works with its routes wiped"
start_agent a --slice-mode table
"$LAB" exec site-a ping -6 -c 2 -i 0.1 -W 1 -q "$SITE_B_V6" >/dev/null || fail "slice not restored after restart"
pass "restarted agent restored the slice"

step "RemoveSlice leaves no route, rule or SID behind"
edgectl a remove blue >/dev/null || fail "remove on edge-a"
edgectl b remove blue >/dev/null || fail "remove on edge-b"
edgectl a remove blue >/dev/null || fail "a second remove must succeed too"
left=$("$LAB" exec edge-a sh -c 'ip -6 route show table all proto 97; ip -4 route show table all proto 97; ip rule | grep "lookup 100"; ip -6 rule | grep "lookup 100"' || true)
[ -z "$left" ] || fail "left behind on edge-a: $left"
stop_agent a
stop_agent b
# the agent's sr0 was created by the lab; everything else must be as before the agents came
[ "$(kernel_snapshot edge-a)" = "$before_a" ] || fail "edge-a differs from before: $(diff <(echo "$before_a") <(kernel_snapshot edge-a))"
[ "$(kernel_snapshot edge-b)" = "$before_b" ] || fail "edge-b differs from before"
! "$LAB" exec site-a ping -6 -c 1 -W 1 "$SITE_B_V6" >/dev/null 2>&1 || fail "site-b still reachable after removal"
pass "both edges are back to where they started"

check_clean_teardown
