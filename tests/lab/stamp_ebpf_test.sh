#!/usr/bin/env bash
# STAMP on XDP in the lab, driven through the agents' gRPC API. edge-b reflects in
# XDP: session 1 arrives from p1 and must leave through p2, session 2 the other way round, so
# both replies are redirected to the other WAN link by the reply's route. The sessions measure
# the injected impairments, and the counters of the program attached to edge-b's WAN links
# (exported by the agent's GetState) show the kernel path answered; the user-space engine
# keeps listening as the fallback.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
stamp_lab_up
require_stamp_xdp a b
prime_stamp_paths
"$LAB" impair edge-a p1 --delay 8
"$LAB" impair p2 edge-a --delay 3

step "Init and sessions: the reflector side says eBPF"
out=$(edgectl b stamp init reflector --address "$B") || fail "Init: $out"
echo "$out" | grep -q STAMP_ENGINE_EBPF || fail "the reflector did not take the eBPF engine: $out"
"$LAB" exec edge-b ip link show wan1 | grep -q "prog/xdp" || fail "no XDP program on edge-b wan1"
for s in 1 2; do
  seg=$([ $s = 1 ] && echo "$SID_P2" || echo "$SID_P1")
  out=$(stamp_session $s "$seg" "$B" "$A" | edgectl b stamp create reflector -) || fail "reflector $s: $out"
  echo "$out" | grep -q STAMP_ENGINE_EBPF || fail "session $s not in XDP: $out"
done
for s in 1 2; do
  seg=$([ $s = 1 ] && echo "$SID_P1" || echo "$SID_P2")
  out=$(stamp_session $s "$seg" "$A" "$B" | edgectl a stamp create sender -) || fail "sender $s: $out"
  echo "$out" | grep -q STAMP_ENGINE_EBPF || fail "sender session $s not collected in XDP: $out"
done
start_stamp_sessions 1 2
pass "edge-b reflects in XDP, edge-a collects in XDP"

step "results"
sleep 1.6
expect_delays a 1 "out p1, back p2" 8 3
expect_delays a 2 "out p2, back p1" 0 0
pass "both sessions measure their own paths"

step "the XDP program answered, by redirect to the other WAN link"
redirects=$(stamp_counter b xdp:redirect-reflected)
fallback=$(stamp_counter b xdp:no-route)
echo "edge-b: redirected in XDP $redirects, left to user space for want of a next hop $fallback"
[ "$redirects" -eq 100 ] || fail "the XDP reflector redirected $redirects replies, expected all 100"
[ "$fallback" -eq 0 ] || fail "$fallback replies fell back to user space"
pass "all 100 replies were reflected and redirected in XDP"

step "edge-a took T4 in XDP and handed every reply over through the ring buffer"
collected=$(stamp_counter a xdp:collected)
echo "edge-a: collected in XDP $collected, ring full $(stamp_counter a xdp:collect-ring-full)"
[ "$collected" -eq 100 ] || fail "the collector recorded $collected replies, expected all 100"
pass "all 100 replies collected in XDP"
check_clean_teardown
