#!/usr/bin/env bash
# Trust, tried as an attacker and a careless tenant would on the lab: a tenant's slice on the
# loopback is refused and both edges stay connected; a site host cannot even open a
# connection to its edge's agent API; a client without the controller's certificate (or
# with another edge's) is refused by the agent; a device id already enrolled cannot be
# enrolled again and the real edge is unaffected; a revoked edge cannot register, also after
# a restart.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
command -v curl >/dev/null || skip "needs curl"
command -v nft >/dev/null || skip "needs nft (nftables) for the agent's API guard"
lab_up
WORK=$(mktemp -d)
AGENT_STATE_ROOT=$WORK/agents
CTL_DIR=$WORK/controller
trap 'rc=$?; kill_controller "$CTL_DIR" KILL 2>/dev/null; rm -rf "$WORK"; lab_teardown $rc' EXIT

start_controller "$CTL_DIR" --auto-enable --heartbeat-ms 300
for x in a b; do start_agent "$x" --controller "[fd5e:ff::1]:50051"; done
connected() { [ "$(api GET "/api/v1/devices/edge-$1" "$OP_TOKEN" | jget connected)" = True ]; }
wait_for 10 connected a && wait_for 10 connected b || fail "edges did not register: $(api GET /api/v1/devices "$OP_TOKEN")"
status() {  # status METHOD PATH TOKEN [BODY]: the HTTP status only
  curl -s -o "$WORK/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $3" \
    ${4:+-H 'Content-Type: application/json' --data "$4"} "$CTL_URL$2"
}

step "a tenant cannot put a slice on an edge's loopback"
TENANT=$(api POST /api/v1/tenants "$OP_TOKEN" '{"name": "mallory"}' | jget token)
code=$(status POST /api/v1/slices "$TENANT" '{"name": "cut", "sites": [
  {"device": "edge-a", "interface": "lo"}, {"device": "edge-b", "interface": "lan0"}]}')
[ "$code" = 400 ] || fail "a slice on lo answered $code: $(cat "$WORK/body")"
grep -q '"field":"sites\[0\].interface"' "$WORK/body" || fail "the error does not name the field: $(cat "$WORK/body")"
code=$(status POST /api/v1/slices "$TENANT" '{"name": "cut", "sites": [
  {"device": "edge-a", "interface": "mgmt0"}, {"device": "edge-b", "interface": "lan0"}]}')
[ "$code" = 400 ] || fail "a slice on mgmt0 answered $code"
[ "$(api GET /api/v1/slices "$TENANT")" = "[]" ] || fail "a refused slice was kept"
! "$LAB" exec edge-a ip rule | grep -q "iif lo" || fail "edge-a has an 'iif lo' rule"
sleep 1  # three heartbeats
connected a && connected b || fail "an edge lost the controller"
# The agent refuses it too (second line of defence), from a client holding the operator's
# certificate: the router is left as it was.
before=$(kernel_snapshot edge-a)
err=$(echo '{"id": "cut", "table": 1999, "lanInterfaces": ["lo"], "localSids": {"sid6": "fc00:0:a:7cf::d6"}}' |
  edgectl a apply - 2>&1) && fail "the agent applied a slice on lo"
echo "$err" | grep -q "lan_interfaces\[0\]" || fail "the agent's refusal does not name the field: $err"
[ "$(kernel_snapshot edge-a)" = "$before" ] || fail "the refused slice changed edge-a's kernel"
pass "refused over REST (400, sites[0].interface) and by the agent; both edges connected"

step "a site host cannot open a connection to its edge's agent API"
# site-a's gateway is edge-a, which owns fd5e:ff::a on its management interface.
if "$LAB" exec site-a timeout 3 bash -c 'exec 3<>/dev/tcp/fd5e:ff::a/50061' 2>/dev/null; then
  fail "site-a connected to edge-a's API"
fi
"$LAB" exec site-a timeout 3 bash -c 'exec 3<>/dev/tcp/fd10:a::1/50061' 2>/dev/null &&
  fail "site-a connected to edge-a's API through its LAN address"
# The management network still reaches it (the controller does).
timeout 3 bash -c 'exec 3<>/dev/tcp/fd5e:ff::a/50061' || fail "the management network cannot reach the API"
pass "refused from the site, open from the management network"

step "the agent answers only holders of the controller's (or an operator's) certificate"
"$EDGECTL" --edge "[fd5e:ff::a]:50061" --insecure interfaces >/dev/null 2>&1 && fail "a plaintext client was answered"
# edge-b's own certificate is from the same CA, but it is not the controller.
out=$("$EDGECTL" --edge "[fd5e:ff::a]:50061" --tls-dir "$AGENT_STATE_ROOT/edge-b/tls" --device edge-a interfaces 2>&1) &&
  fail "edge-b's certificate was answered"
echo "$out" | grep -q UNAUTHENTICATED || fail "edge-b's certificate: expected UNAUTHENTICATED, got: $out"
edgectl a interfaces >/dev/null || fail "the operator's certificate was refused"
pass "plaintext and another edge's certificate refused; the operator's answered"

step "an enrolled device id cannot be enrolled again; the real edge is unaffected"
code=$(status POST /api/v1/devices "$OP_TOKEN" '{"id": "edge-a"}')
[ "$code" = 409 ] || fail "a second join token for edge-a answered $code"
addr=$(api GET /api/v1/devices/edge-a "$OP_TOKEN" | jget grpc_address)
# An impostor with a join token for another name cannot register as edge-a either.
r=$(api POST /api/v1/devices "$OP_TOKEN" '{"id": "edge-x"}')
echo "$r" | jget join_token >"$WORK/x.token"
echo "$r" | jget ca_certificate >"$WORK/ca.pem"
# (the impostor runs on edge-c, calling itself edge-a)
timeout 5 "$LAB" exec edge-c "$SEGWAN_BUILD_DIR/edge-manager/edge-manager" --device-id edge-a \
  --listen "[fd5e:ff::c]:50061" --wan wan1,wan2 --lan lan0 --mgmt mgmt0 --state-dir "$WORK/impostor" \
  --controller "[fd5e:ff::1]:50051" --ca-file "$WORK/ca.pem" --join-token-file "$WORK/x.token" \
  >"$WORK/impostor.log" 2>&1 && fail "the impostor ran"
grep -q "not a valid join token" "$WORK/impostor.log" || fail "the impostor was not refused: $(tail -3 "$WORK/impostor.log")"
sleep 1
connected a || fail "edge-a lost the controller"
[ "$(api GET /api/v1/devices/edge-a "$OP_TOKEN" | jget grpc_address)" = "$addr" ] || fail "edge-a's address changed"
pass "409 for a second token; the impostor refused; edge-a connected at $addr"

step "a revoked edge cannot register, not even after a restart"
[ "$(status POST /api/v1/devices/edge-b/revoke "$OP_TOKEN")" = 204 ] || fail "revoke answered $(cat "$WORK/body")"
! connected b || fail "edge-b still shown connected after revocation"
sleep 1.5
! connected b || fail "edge-b registered again after revocation"
stop_agent b
start_agent b --controller "[fd5e:ff::1]:50051" || true
sleep 1.5
! connected b || fail "edge-b registered after a restart"
grep -q "revoked" "$AGENT_STATE_ROOT/edge-b/agent.log" || fail "edge-b's log does not say why: $(tail -3 "$AGENT_STATE_ROOT/edge-b/agent.log")"
connected a || fail "edge-a was affected"
pass "edge-b refused (revoked), edge-a still connected"
