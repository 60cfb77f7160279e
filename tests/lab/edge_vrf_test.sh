#!/usr/bin/env bash
# VRF mode (the papers' design): a VRF per slice, LAN enslaved, End.DT46 decapsulating into
# it. Needs CONFIG_NET_VRF; skips with the reason printed where the kernel lacks it.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
probe="sw-vrfprobe-$$"
ip netns add "$probe"
if ! ip -n "$probe" link add vrfprobe type vrf table 10 2>/dev/null; then
  ip netns del "$probe"
  skip "this kernel has no VRF driver (CONFIG_NET_VRF unset): VRF-mode slices cannot run here"
fi
ip netns del "$probe"
lab_up
AGENT_STATE_ROOT=$(mktemp -d)
trap 'rc=$?; rm -rf "$AGENT_STATE_ROOT"; lab_teardown $rc' EXIT
before_a=$(kernel_snapshot edge-a)
start_agent a --slice-mode vrf
start_agent b --slice-mode vrf

slice_json() {  # edge X to edge Y through core N, one End.DT46 SID per edge
  cat <<JSON
{"id": "blue", "table": 100, "lan_interfaces": ["lan0"],
 "local_sids": {"sid46": "fc00:0:$1::d46"},
 "remotes": [{"name": "edge-$2", "prefixes": ["$4", "fd10:$2::/64"],
              "segments": ["$3", "fc00:0:$2::d46"]}]}
JSON
}
out=$(slice_json a b "$SID_P1" 10.10.2.0/24 | edgectl a apply -) || fail "apply on edge-a: $out"
echo "$out" | grep -q SLICE_MODE_VRF || fail "edge-a not in vrf mode: $out"
slice_json b a "$SID_P2" 10.10.1.0/24 | edgectl b apply - >/dev/null || fail "apply on edge-b"
"$LAB" exec edge-a ip link show vrf100 >/dev/null || fail "no VRF device on edge-a"
"$LAB" exec site-a ping -6 -c 3 -i 0.1 -W 1 -q "$SITE_B_V6" >/dev/null || fail "IPv6 does not flow in vrf mode"
"$LAB" exec site-a ping -4 -c 3 -i 0.1 -W 1 -q "$SITE_B_V4" >/dev/null || fail "IPv4 does not flow in vrf mode"
pass "IPv6 and IPv4 flow over End.DT46 into the VRF"
edgectl a remove blue >/dev/null && edgectl b remove blue >/dev/null || fail "remove"
! "$LAB" exec edge-a ip link show vrf100 >/dev/null 2>&1 || fail "VRF left behind"
stop_agent a
stop_agent b
[ "$(kernel_snapshot edge-a)" = "$before_a" ] || fail "edge-a differs from before"
pass "remove took the VRF and every route with it"
check_clean_teardown
