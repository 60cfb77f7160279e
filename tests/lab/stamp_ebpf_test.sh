#!/usr/bin/env bash
# The XDP STAMP reflector in the lab, driven through the agents' gRPC API. edge-b reflects in
# XDP: session 1 arrives from p1 and must leave through p2, session 2 the other way round, so
# both replies are redirected to the other WAN link by the reply's route. The sessions measure
# the injected impairments, and the counters of the program attached to edge-b's WAN links
# show the kernel path answered (the user-space engine keeps listening as the fallback).
source "$(dirname "$0")/lib.sh"
require_lab_kernel
command -v bpftool >/dev/null || skip "bpftool is not installed"
lab_up
AGENT_STATE_ROOT=$(mktemp -d)
trap 'lab_teardown; rm -rf "$AGENT_STATE_ROOT"' EXIT
A=fc00:0:a::1
B=fc00:0:b::1
start_agent a
start_agent b
grep -q "XDP STAMP reflector" "$AGENT_STATE_ROOT/edge-b/agent.log" && \
  skip "this kernel refused the XDP reflector: $(grep 'XDP STAMP reflector' "$AGENT_STATE_ROOT/edge-b/agent.log")"
"$LAB" exec edge-a ping -6 -c 2 -i 0.1 -q -I "$A" "$B" >/dev/null
# Resolve edge-b's neighbours on both WAN links (through p1 and p2): a reply whose next hop
# is not resolved yet goes to the stack by design (STAMP_PASS_NO_ROUTE), not through XDP.
for core in fc00:0:1::1 fc00:0:2::1; do
  "$LAB" exec edge-b ping -6 -c 2 -i 0.1 -q -I "$B" "$core" >/dev/null
done
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
stamp_session 1 "$SID_P1" "$A" "$B" | edgectl a stamp create sender - >/dev/null || fail "sender 1"
stamp_session 2 "$SID_P2" "$A" "$B" | edgectl a stamp create sender - >/dev/null || fail "sender 2"
for s in 1 2; do
  edgectl b stamp start reflector $s >/dev/null || fail "start reflector $s"
  edgectl a stamp start sender $s >/dev/null || fail "start sender $s"
done
pass "edge-b reflects in XDP"

step "results"
sleep 1.6
expect_delays a 1 "out p1, back p2" 8 3
expect_delays a 2 "out p2, back p1" 0 0
pass "both sessions measure their own paths"

step "the XDP program answered, by redirect to the other WAN link"
prog=$("$LAB" exec edge-b ip -j link show wan1 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["xdp"]["prog"]["id"])')
counters=$(bpftool prog show id "$prog" -j | /usr/bin/python3 -c '
import json, subprocess, sys
for m in json.load(sys.stdin).get("map_ids", []):
    info = json.loads(subprocess.check_output(["bpftool", "map", "show", "id", str(m), "-j"]))
    if info.get("name") == "stamp_reasons":
        dump = json.loads(subprocess.check_output(["bpftool", "map", "dump", "id", str(m), "-j"]))
        out = []
        for e in dump:
            k = int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little")
            total = sum(int.from_bytes(bytes(int(b, 16) for b in v["value"]), "little") for v in e["values"])
            out.append(f"{k}={total}")
        print(" ".join(out))')
echo "reason counters (enum stamp_reason index=count): $counters"
# the index of STAMP_REDIRECT_REFLECTED in enum stamp_reason, read from the ABI header
redirect_index=$(/usr/bin/python3 - "$SEGWAN_SOURCE_DIR/bpf/include/segwan_stamp.h" <<'PY'
import sys
body = open(sys.argv[1]).read().split("enum stamp_reason {", 1)[1].split("}", 1)[0]
names = [l.split(",")[0].split("=")[0].strip() for l in body.splitlines() if l.strip().startswith("STAMP_")]
print(names.index("STAMP_REDIRECT_REFLECTED"))
PY
)
redirects=$(echo "$counters" | tr ' ' '\n' | awk -F= -v i="$redirect_index" '$1 == i {print $2}')
echo "redirected by XDP: ${redirects:-0}"
[ "${redirects:-0}" -ge 100 ] || fail "the XDP reflector redirected ${redirects:-0} replies, expected all 100"
pass "all 100 replies were reflected and redirected in XDP"
check_clean_teardown
