#!/usr/bin/env bash
# `make demo`: the whole SD-WAN in the lab. Brings the lab up with edge-os and an agent on every
# edge, applies the scenario (deploy/lab/scenario.json, or $SEGWAN_SCENARIO) through the REST
# API only, prints the dashboard's address and the tokens, then a live table of every delay
# session, loss flow and steered direction until Ctrl-C, which tears everything down. Meanwhile
# the scenario's demo part plays: pings on the loss-monitored flows, and after a minute one
# link impaired for a minute, so SLA steering moves the steered direction away and back.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB="$HERE/lab.sh"
SCENARIO=${SEGWAN_SCENARIO:-$HERE/scenario.json}
[ "$(id -u)" -eq 0 ] || { echo "demo: must run as root (network namespaces)" >&2; exit 1; }
BUILD_DIR=${SEGWAN_BUILD_DIR:-$HERE/../../build}

# A kernel without what the agents need (SRv6 lwtunnel, ...): the whole demo runs in a VM on
# Debian's stock kernel (scripts/vm), the dashboard forwarded to this host's loopback, the live
# table on this terminal; Ctrl-C ends the VM and everything in it.
if [ -z "${SEGWAN_IN_VM:-}" ] && ! missing=$("$BUILD_DIR/edge-manager/edge-manager" --check-kernel-missing 2>&1); then
  port=${SEGWAN_DEMO_PORT:-8080}
  echo "demo: this kernel ($(uname -r)) cannot run SegWAN's data plane; it lacks:"
  echo "$missing" | sed 's/^/  /'
  echo "demo: running the whole system in a VM on Debian's kernel instead (emulated: about two minutes"
  echo "      to start); the dashboard will be at http://127.0.0.1:$port/ on this host. Ctrl-C ends it all."
  exec "$HERE/../../scripts/vm" run --ro "$(realpath "$HERE/../..")" --rw "$(realpath "$BUILD_DIR")" --fwd "$port" --timeout 86400 -- \
    env SEGWAN_LAB_HTTP="10.0.2.15:$port" SEGWAN_DEMO_URL="http://127.0.0.1:$port" bash "$HERE/demo.sh"
fi

"$LAB" up --detach
trap 'echo; "$LAB" down' EXIT
trap 'exit 0' INT TERM
eval "$("$LAB" env)"
eval "$("$LAB" scenario "$SCENARIO")"

cat <<MSG

SegWAN is up: edge-os, three edge routers, two SRv6 core routers, three sites.
  Dashboard:     ${SEGWAN_DEMO_URL:-$SEGWAN_URL}/   (sign in with a token)
  Operator:      $SEGWAN_TOKEN
  Tenant acme:   $SEGWAN_TENANT_TOKEN
  Scenario:      $SCENARIO (slice $SEGWAN_SLICE joining site-a, site-b and site-c)
  SLA steering:  policy ${SEGWAN_POLICY:-none} (dashboard: Steering)
  Expected one-way delays (from the impairments), sender -> reflector and back:
$(/usr/bin/python3 "$HERE/scenario.py" expected "$SCENARIO" | awk '{printf "    %s -> %s: %s ms, back %s ms\n", $1, $2, $3, $4}')

$(if [ -z "${SEGWAN_IN_VM:-}" ]; then cat <<TRY
  Try:  deploy/lab/lab.sh exec site-a ping fd10:b::2
        deploy/lab/lab.sh impair edge-a p1 --delay 30 --loss 2
TRY
else echo "  (in a VM on Debian's kernel $(uname -r): the lab's nodes are inside it; REST and the dashboard are here)"; fi)
        curl -H "Authorization: Bearer $SEGWAN_TOKEN" ${SEGWAN_DEMO_URL:-$SEGWAN_URL}/api/v1/devices
        curl ${SEGWAN_DEMO_URL:-$SEGWAN_URL}/metrics

Waiting for the first measurements...
MSG
sleep 3
/usr/bin/python3 "$HERE/scenario.py" demo "$SCENARIO"
