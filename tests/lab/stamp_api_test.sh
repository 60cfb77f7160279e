#!/usr/bin/env bash
# STAMP through the agents' gRPC API (Init, Create, Start, GetStampSessionResults, Destroy):
# two concurrent sessions from edge-a to edge-b, one out through p1 and back through p2, the
# other out through p2 and back through p1. Each measures the impairment of its own path.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
stamp_lab_up
"$LAB" exec edge-a ping -6 -c 2 -i 0.1 -q -I "$A" "$B" >/dev/null
"$LAB" impair edge-a p1 --delay 10
"$LAB" impair p2 edge-a --delay 5
"$LAB" impair edge-a p2 --delay 3

step "configure both edges over gRPC"
edgectl b stamp init reflector --address "$B" >/dev/null || fail "Init on the reflector"
stamp_session 1 "$SID_P2" "$B" "$A" | edgectl b stamp create reflector - >/dev/null || fail "reflector session 1"
stamp_session 2 "$SID_P1" "$B" "$A" | edgectl b stamp create reflector - >/dev/null || fail "reflector session 2"
stamp_session 1 "$SID_P1" "$A" "$B" | edgectl a stamp create sender - >/dev/null || fail "sender session 1"
stamp_session 2 "$SID_P2" "$A" "$B" | edgectl a stamp create sender - >/dev/null || fail "sender session 2"
err=$(stamp_session 0 "$SID_P1" "$A" "$B" | edgectl a stamp create sender - 2>&1) && fail "ssid 0 accepted"
echo "$err" | grep -q "INVALID_ARGUMENT: params.ssid" || fail "bad ssid not named: $err"
err=$(stamp_session 1 "$SID_P1" "$A" "$B" | edgectl a stamp create sender - 2>&1) && fail "duplicate accepted"
echo "$err" | grep -q "ALREADY_EXISTS" || fail "duplicate not ALREADY_EXISTS: $err"
start_stamp_sessions 1 2
pass "sessions created and started; bad and duplicate requests refused"

step "results"
sleep 1.6
expect_delays a 1 "out p1, back p2" 10 5
expect_delays a 2 "out p2, back p1" 3 0
stamped=$(stamp_counter a tc:t1-stamped)
if [ "$stamped" -eq -1 ]; then
  echo "note: no T1 stamper on edge-a (the kernel refused it); T1 came from user space"
else
  [ "$stamped" -eq 100 ] || fail "the T1 stamper wrote $stamped timestamps, expected 100 (2 sessions x 50)"
  echo "T1 written at TC egress for all $stamped test packets"
fi
read -r again _ < <(stamp_stats a 1)
[ "$again" -eq 0 ] || fail "records were not removed when returned ($again again)"
pass "each session measures its own path"

step "destroy"
edgectl a stamp destroy sender 1 >/dev/null || fail "destroy"
err=$(edgectl a stamp results 1 2>&1) && fail "results of a destroyed session"
echo "$err" | grep -q NOT_FOUND || fail "not NOT_FOUND: $err"
pass "destroyed session is gone"
check_clean_teardown
