#!/usr/bin/env bash
# Both STAMP engines through the agents' gRPC API, the same sessions side by side: sender on
# edge-a, reflector on edge-b, out through p1 and back through p2. With edge-a->p1 impaired by
# 12 ms and p2->edge-a by 4 ms, every session (eBPF and user space, NTP and PTP, stateless and
# stateful) measures 12 and 4 ms within 0.5 ms; with 2% loss added on the direct path, every
# stateful session puts the loss on the direct path and none on the return path. The eBPF
# sessions are answered and collected in XDP (counted), the user-space ones never touch it.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
stamp_lab_up
require_stamp_xdp a b
prime_stamp_paths
"$LAB" impair edge-a p1 --delay 12
"$LAB" impair p2 edge-a --delay 4

# params SSID SEGMENT SRC DST ENGINE FORMAT MODE COUNT INTERVAL_MS: StampSessionParams JSON
params() {
  echo "{\"ssid\": $1, \"segments\": [\"$2\"], \"source_address\": \"$3\", \"peer_address\": \"$4\",
    \"engine\": \"STAMP_ENGINE_$5\", \"timestamp_format\": \"TIMESTAMP_FORMAT_$6\",
    \"reflector_mode\": \"SESSION_REFLECTOR_MODE_$7\", \"packet_count\": $8, \"interval_ms\": $9}"
}
# create SSID ENGINE FORMAT MODE COUNT INTERVAL: both ends, each must say it took ENGINE
create() {
  local out
  out=$(params "$1" "$SID_P2" "$B" "$A" "${@:2}" | edgectl b stamp create reflector -) || fail "reflector $1: $out"
  echo "$out" | grep -q "STAMP_ENGINE_$2" || fail "reflector session $1 did not take $2: $out"
  out=$(params "$1" "$SID_P1" "$A" "$B" "${@:2}" | edgectl a stamp create sender -) || fail "sender $1: $out"
  echo "$out" | grep -q "STAMP_ENGINE_$2" || fail "sender session $1 did not take $2: $out"
}

edgectl b stamp init reflector --address "$B" >/dev/null || fail "Init on the reflector"
edgectl a stamp init sender >/dev/null || fail "Init on the sender"

step "eight sessions: eBPF and user space x NTP and PTP x stateless and stateful"
declare -A NAME
ssid=0
for engine in EBPF USERSPACE; do
  for fmt in NTP PTPV2; do
    for mode in STATELESS STATEFUL; do
      ssid=$((ssid + 1))
      NAME[$ssid]="$engine $fmt $mode"
      create $ssid $engine $fmt $mode 60 20
    done
  done
done
start_stamp_sessions 1 2 3 4 5 6 7 8
pass "both ends took the engine each session asked for"

step "12 ms out, 4 ms back, in every session"
sleep 1.9
for s in 1 2 3 4 5 6 7 8; do
  read -r n d r _ sent _ _ < <(stamp_stats a $s)
  echo "${NAME[$s]}: $n of $sent, direct $d ms, return $r ms"
  [ "$sent" -eq 60 ] && [ "$n" -eq 60 ] || fail "${NAME[$s]}: $n records of $sent sent, expected 60 of 60"
  within "$d" 11.5 12.5 || fail "${NAME[$s]}: median direct delay $d ms, expected 12 +- 0.5"
  within "$r" 3.5 4.5 || fail "${NAME[$s]}: median return delay $r ms, expected 4 +- 0.5"
done
reflected=$(( $(stamp_counter b xdp:tx-reflected) + $(stamp_counter b xdp:redirect-reflected) ))
collected=$(stamp_counter a xdp:collected)
echo "edge-b reflected in XDP $reflected, edge-a collected in XDP $collected, T1 at TC egress $(stamp_counter a tc:t1-stamped)"
[ "$reflected" -eq 240 ] || fail "XDP reflected $reflected packets, expected the eBPF sessions' 240 and no more"
[ "$collected" -eq 240 ] || fail "XDP collected $collected replies, expected the eBPF sessions' 240 and no more"
[ "$(stamp_counter a tc:t1-stamped)" -eq 240 ] || fail "T1 stamped at TC for other than the eBPF sessions' 240"
pass "all eight measure the path; the eBPF ones in the kernel, the user-space ones outside it"

step "2% loss on the direct path: the stateful sessions of both engines put it there"
"$LAB" impair edge-a p1 --delay 12 --loss 2
ssid=10
for engine in EBPF USERSPACE; do
  for fmt in NTP PTPV2; do
    ssid=$((ssid + 1))
    NAME[$ssid]="$engine $fmt STATEFUL"
    create $ssid $engine $fmt STATEFUL 500 5
  done
done
start_stamp_sessions 11 12 13 14
sleep 3.2
for s in 11 12 13 14; do
  read -r n _ _ _ sent direct ret < <(stamp_stats a $s)
  echo "${NAME[$s]}: $n of $sent back; lost on the direct path $direct, on the return path $ret (expected ~10 and 0)"
  [ "$sent" -eq 500 ] || fail "${NAME[$s]}: sent $sent"
  [ "$direct" -ge 2 ] && [ "$direct" -le 25 ] || fail "${NAME[$s]}: direct loss $direct is not ~2% of 500"
  [ "$ret" -eq 0 ] || fail "${NAME[$s]}: return loss $ret: the loss was put on the wrong direction"
done
pass "loss attributed to the direct path by both engines"
check_clean_teardown
