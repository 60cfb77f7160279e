#!/usr/bin/env bash
# The user-space STAMP engine over the lab's SRv6 paths: sender on edge-a, reflector on edge-b,
# direct path through p1 (an SRH from the sender), return path through p2 (the reflector's
# SRH). With edge-a->p1 impaired by 12 ms and p2->edge-a by 4 ms, the mean direct and return
# delays are 12 and 4 ms within 0.5 ms, for NTP and PTP, stateless and stateful; with 2% loss
# on the direct path, a stateful session puts the loss on the direct path.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
lab_up
STAMP="$SEGWAN_BUILD_DIR/edge-manager/segwan-stamp"
A=fc00:0:a::1
B=fc00:0:b::1

# Prime the neighbour caches along both paths: the first packets would otherwise also
# measure neighbour discovery.
"$LAB" exec edge-a ping -6 -c 2 -i 0.1 -q -I "$A" "$B" >/dev/null
"$LAB" exec edge-b ping -6 -c 2 -i 0.1 -q -I "$B" "$A" >/dev/null
"$LAB" impair edge-a p1 --delay 12
"$LAB" impair p2 edge-a --delay 4

# run_session NAME [reflector flags] -- [sender flags]; prints the sender's output
run_session() {
  local name=$1; shift
  local rflags=() sflags=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do rflags+=("$1"); shift; done
  shift
  sflags=("$@")
  "$LAB" exec edge-b "$STAMP" reflect --listen "$B" --return-segs "$SID_P2" "${rflags[@]}" \
    >"$TMP/$name.reflector" 2>&1 &
  local rpid=$!
  for _ in $(seq 100); do grep -q reflecting "$TMP/$name.reflector" && break; sleep 0.02; done
  "$LAB" exec edge-a "$STAMP" send "$B" --source "$A" --segs "$SID_P1" "${sflags[@]}" >"$TMP/$name.out" 2>&1 || true
  kill "$rpid" 2>/dev/null || true
  wait "$rpid" 2>/dev/null || true
  cat "$TMP/$name.out"
}
mean_of() { awk -v k="$1" '$1 == k { split($4, v, "/"); print v[2] }' "$2"; }
# The median of the per-packet lines (direct=X ms): the lab's delay lines send a few packets
# late by milliseconds on a busy machine, which moves a mean of 60 packets, not its median.
median_of() { grep -oE "^seq=.* $1=[0-9.]+" "$2" | sed -E "s/.* $1=//" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
TMP=$(mktemp -d)
trap 'rc=$?; rm -rf "$TMP"; lab_teardown $rc' EXIT

for fmt in ntp ptp; do
  for mode in stateless stateful; do
    step "$fmt, $mode"
    rf=(); sf=(-c 60 -i 0.02)
    [ "$mode" = stateful ] && rf+=(--stateful)
    [ "$fmt" = ptp ] && { rf+=(--ptp); sf+=(--ptp); }
    run_session "$fmt-$mode" "${rf[@]}" -- "${sf[@]}" | tail -5
    out="$TMP/$fmt-$mode.out"
    grep -q "60 sent, 60 received" "$out" || fail "$fmt $mode: packets lost without impairment: $(grep sent "$out")"
    d=$(median_of direct "$out"); r=$(median_of return "$out")
    echo "medians: direct $d ms, return $r ms (means $(mean_of direct "$out"), $(mean_of return "$out"))"
    within "$d" 11.5 12.5 || fail "$fmt $mode: median direct delay $d ms, expected 12 +- 0.5"
    within "$r" 3.5 4.5 || fail "$fmt $mode: median return delay $r ms, expected 4 +- 0.5"
    [ "$mode" = stateful ] && ! grep -q "reflector_seq=59" "$out" && fail "stateful reflector numbers missing"
    pass "$fmt $mode: direct $d ms, return $r ms"
  done
done

step "authenticated mode"
printf 'segwan-lab-key-0123456789abcdef\n' >"$TMP/key"
run_session auth --auth "$TMP/key" -- --auth "$TMP/key" -c 20 -i 0.02 | tail -3
grep -q "20 sent, 20 received" "$TMP/auth.out" || fail "authenticated session lost packets"
printf 'another-key-0123456789abcdef\n' >"$TMP/wrong"
run_session wrongkey --auth "$TMP/key" -- --auth "$TMP/wrong" -c 3 -i 0.02 >/dev/null
grep -q "3 sent, 0 received" "$TMP/wrongkey.out" || fail "a wrong key was answered"
grep -q "hmac-mismatch" "$TMP/wrongkey.reflector" || fail "the reflector did not name the HMAC mismatch"
pass "authenticated session measured; a wrong key is dropped and named"

step "2% loss on the direct path, stateful reflector"
"$LAB" impair edge-a p1 --delay 12 --loss 2
run_session loss --stateful -- -c 500 -i 0.005 | tail -5
line=$(grep "loss by direction" "$TMP/loss.out") || fail "no per-direction loss reported"
direct=$(echo "$line" | sed -E 's/.*direct ([0-9]+), return ([0-9]+).*/\1/')
ret=$(echo "$line" | sed -E 's/.*direct ([0-9]+), return ([0-9]+).*/\2/')
echo "direct loss $direct, return loss $ret (expected ~10 direct, 0 return)"
[ "$direct" -ge 2 ] && [ "$direct" -le 25 ] || fail "direct loss $direct is not ~2% of 500"
[ "$ret" -eq 0 ] || fail "return loss $ret: the loss was put on the wrong direction"
pass "the stateful session puts the loss on the direct path"

check_clean_teardown
