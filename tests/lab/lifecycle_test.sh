#!/usr/bin/env bash
# lab.sh operations: status/env/exec answer, bad impair input is refused and changes nothing,
# `up` over a crashed lab's leftovers works, and `down` after a crash (state folder gone,
# delay lines still running) still removes every namespace and process.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
lab_up

step "status, env and exec"
"$LAB" status | grep >/dev/null "lab is up" || fail "status does not say the lab is up"
[ "$SID_P1" = "fc00:0:1::e" ] && [ "$SID_P2" = "fc00:0:2::e" ] || fail "env: SID_P1=$SID_P1 SID_P2=$SID_P2"
[ "$("$LAB" exec edge-a cat /proc/sys/net/ipv6/conf/all/forwarding)" = 1 ] || fail "edge-a does not forward"
"$LAB" exec p1 ping -6 -c 1 -W 1 -q "$(echo "$LOCATOR_B" | sed 's|::/48|::1|')" >/dev/null || fail "p1 cannot reach edge-b's loopback"
"$LAB" exec edge-a ping -6 -c 1 -W 1 -q "$MGMT_CONTROLLER" >/dev/null || fail "edge-a cannot reach the controller's management address"
pass "status, env, exec, underlay and management network"

step "bad impair input is refused and changes nothing"
"$LAB" impair edge-a p1 --delay 7
for bad in "edge-a site-a --delay 5" "edge-a p1 --delay fast" "edge-a p1 --loss -1" "edge-a p3 --delay 1" "edge-a p1 --bogus 1"; do
  # shellcheck disable=SC2086
  if err=$("$LAB" impair $bad 2>&1); then fail "impair $bad was accepted"; fi
  echo "  refused: impair $bad -> $err"
done
"$LAB" status | grep >/dev/null "edge-a->p1 delay_us=7000 jitter_us=0 loss_ppm=0" || fail "a refused impair changed the link: $("$LAB" status)"
pass "bad impair input refused, link unchanged"

step "crash: state folder lost while delay lines run; down still cleans up"
pids=$(pgrep -f "segwan-delayline run" || true)
[ "$(echo "$pids" | wc -w)" -eq 1 ] || fail "expected one delay line process for the six links, found: $pids"
rm -rf /run/segwan-lab
"$LAB" down
for pid in $pids; do ! kill -0 "$pid" 2>/dev/null || fail "delay line $pid survived down"; done
[ -z "$(ip netns list | grep '^sw-' || true)" ] || fail "namespaces survived down"
pass "down after a crash removed all namespaces and delay lines"

step "up over leftovers"
"$LAB" up --detach --bare
ip netns add sw-leftover   # a stray namespace from an earlier crashed run
LAB_QUIET=1 "$LAB" up --detach --bare
! ip netns list | grep >/dev/null '^sw-leftover' || fail "up did not clean leftovers"
"$LAB" status | grep >/dev/null "lab is up" || fail "lab not up after re-up"
pass "up cleans leftovers first"

check_clean_teardown
