#!/usr/bin/env bash
# SegWAN lab: an emulated SRv6 WAN in network namespaces on one machine.
#
#   site-a ── edge-a ──┬── p1 ──┬── edge-b ── site-b
#                      └── p2 ──┘
#             edge-c ── p1, p2 ── site-c          (every edge connects to both p1 and p2)
#
# The root namespace (where the controller runs) reaches every edge over a management bridge.
# Each edge↔core link can be impaired per direction: with netem where the kernel has it, else
# through a small link namespace in the middle of the link, where one segwan-delayline process
# forwards the frames of all links.
#
# `up` also starts the system: edge-os in the root namespace (REST on $SEGWAN_LAB_HTTP, default
# 127.0.0.1:8080; Registration on the management bridge) and an edge-manager on every edge,
# and waits until all have registered. `--bare` builds only the network. `--ha`: two edge-os
# on one PostgreSQL (a private cluster in the lab's state folder); the first leads, the second
# (REST on port+1, Registration on :50052) follows, and the agents know both (also with
# SEGWAN_LAB_HA=1). `restart-controller` then restarts the first, which hands the lead over.
#
# Usage: lab.sh up [--detach] [--bare] [--ha] | down | status | env | exec NODE CMD... |
#        impair NODE_A NODE_B [--delay MS] [--jitter MS] [--loss PERCENT] | scenario FILE |
#        restart-controller
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD_DIR=${SEGWAN_BUILD_DIR:-$REPO/build}
STATE=${SEGWAN_LAB_STATE:-/run/segwan-lab}
P=sw-                 # namespace prefix
MGMT_BR=swmgmt        # management bridge in the root namespace

SITES=(a b c)
CORES=(1 2)

# ---- addressing plan ---------------------------------------------------------------------
MGMT_NET=fd5e:ff::             # /64, the controller is ::1, edge-X is ::X
locator() { echo "fc00:0:$1::"; }            # /48 per router (a, b, c, 1, 2)
router_lo() { echo "fc00:0:$1::1"; }         # loopback address of a router
core_sid() { echo "fc00:0:$1::e"; }          # End SID of core router N
link_net() { echo "fd5e:0:$1$2::"; }         # /64 between edge-X and pN, edge ::1, core ::2
site_idx() { case $1 in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; esac; }
site_v4() { echo "10.10.$(site_idx "$1")"; }  # /24, edge .1, host .2
site_v6() { echo "fd10:$1::"; }              # /64, edge ::1, host ::2

die() { echo "lab: $*" >&2; exit 1; }
# slow SECONDS: a start-up deadline scaled by SEGWAN_LAB_SLOWDOWN, how many times slower this
# machine starts processes than the one the deadlines were set on (measured by the tests in an
# emulated VM, tests/lab/lib.sh; 1 elsewhere).
slow() { echo $(($1 * ${SEGWAN_LAB_SLOWDOWN:-1})); }
info() { [ -n "${LAB_QUIET:-}" ] || echo "lab: $*" >&2; }
need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces)"; }
inns() { local n=$1; shift; ip netns exec "$P$n" "$@"; }
lab_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P" || true; }
is_up() { [ -f "$STATE/up" ]; }
delayline_bin() { echo "$BUILD_DIR/deploy/segwan-delayline"; }
controller_bin() { echo "$BUILD_DIR/edge-os/edge-os"; }
agent_bin() { echo "$BUILD_DIR/edge-manager/edge-manager"; }
HTTP=${SEGWAN_LAB_HTTP:-127.0.0.1:8080}
xdp_pass_bin() { echo "$BUILD_DIR/deploy/segwan-xdp-pass"; }

# The far end of an edge's WAN link gets an XDP_PASS program, so that frames the edge sends
# with XDP_TX or an XDP redirect (the XDP STAMP reflector) are delivered: a veth only takes
# them when its peer runs XDP. Best effort: without it only XDP forwarding is affected.
xdp_peer() {
  [ -x "$(xdp_pass_bin)" ] || return 0
  inns "$1" "$(xdp_pass_bin)" "$2" 2>>"$STATE/logs/xdp-pass.log" || true
}

has_netem() {
  [ -n "${SEGWAN_LAB_FORCE_DELAYLINE:-}" ] && return 1
  local ns=${P}probe-netem ok=1
  ip netns add "$ns" 2>/dev/null || return 1
  ip -n "$ns" link set lo up
  tc -n "$ns" qdisc add dev lo root netem delay 1ms 2>/dev/null && ok=0
  ip netns del "$ns"
  return $ok
}

# ---- building blocks ---------------------------------------------------------------------
add_node() {
  local n=$1
  ip netns add "$P$n"
  inns "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv6.conf.default.seg6_enabled=1 net.ipv6.conf.all.seg6_enabled=1 \
    net.ipv6.conf.all.keep_addr_on_down=1
  ip -n "$P$n" link set lo up
}

make_router() {
  inns "$1" sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  # SIDs need a device that is not lo (the kernel makes non-local routes via lo reject
  # routes) and that never goes down with a link: sr0, a veth whose peer stays inside the
  # router (this kernel has no dummy driver).
  ip -n "$P$1" link add sr0 type veth peer name sr0-peer
  ip -n "$P$1" link set dev sr0-peer up
  ip -n "$P$1" link set dev sr0 up
}

# offloads off: the delay line and XDP_TX need complete checksums and unsegmented frames
no_offload() { inns "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true; }

# veth NODE_A IF_A NODE_B IF_B
veth() {
  ip link add "$2" netns "$P$1" type veth peer name "$4" netns "$P$3"
  no_offload "$1" "$2"
  no_offload "$3" "$4"
  ip -n "$P$1" link set dev "$2" up
  ip -n "$P$3" link set dev "$4" up
}

addr() { ip -n "$P$1" addr add "$3" dev "$2" $( [[ $3 == *:* ]] && echo nodad ); }

# Connects edge-X:wanN with pN:edge-X, through a link namespace with a delay line unless
# netem is available.
wan_link() {
  local x=$1 n=$2 id=$1$2
  if [ "$(cat "$STATE/impair-mode")" = netem ]; then
    veth "edge-$x" "wan$n" "p$n" "edge-$x"
    xdp_peer "p$n" "edge-$x"
  else
    local l="lk-$id"
    add_node "$l"
    veth "edge-$x" "wan$n" "$l" to-edge
    veth "$l" to-core "p$n" "edge-$x"
    xdp_peer "$l" to-edge
    inns "$l" ip link set dev to-edge promisc on
    inns "$l" ip link set dev to-core promisc on
    # The delay line forwards every frame between a and b; the kernel must not answer on them.
    inns "$l" sysctl -qw net.ipv6.conf.to-edge.disable_ipv6=1 \
      net.ipv6.conf.to-core.disable_ipv6=1
  fi
  local net; net=$(link_net "$x" "$n")
  addr "edge-$x" "wan$n" "${net}1/64"
  addr "p$n" "edge-$x" "${net}2/64"
}

# One delay line process forwards for every link: a single thread waits for the release times
# of all of them (one thread per link direction made a dozen real-time threads compete for the
# machine's cores, and the late one delayed its packets). It runs in the first link's namespace
# (so that 'down' finds it there even without the pid files) and opens each link's interfaces
# in that link's namespace.
start_delaylines() {
  [ "$(cat "$STATE/impair-mode")" = netem ] && return 0
  local links=() x n
  for x in "${SITES[@]}"; do for n in "${CORES[@]}"; do links+=("$x$n=${P}lk-$x$n"); done; done
  setsid ip netns exec "${P}lk-${SITES[0]}${CORES[0]}" "$(delayline_bin)" run --a to-edge --b to-core \
    --links "$(IFS=,; echo "${links[*]}")" --control-dir "$STATE/links" >"$STATE/logs/delayline.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/delayline"
}

wait_for_delaylines() {
  [ "$(cat "$STATE/impair-mode")" = netem ] && return 0
  local deadline=$((SECONDS + $(slow 10))) id
  for x in "${SITES[@]}"; do for n in "${CORES[@]}"; do
    id=$x$n
    until [ -S "$STATE/links/$id.sock" ]; do
      [ $SECONDS -lt $deadline ] || die "delay line $id did not start: $(cat "$STATE/logs/delayline.log")"
      sleep 0.05
    done
  done; done
}

# ---- up / down ---------------------------------------------------------------------------
# ---- the system: controller and agents -------------------------------------------------
# --ha: PostgreSQL in the state folder, run as the postgres user, reached on its socket only.
PG_BIN=/usr/lib/postgresql/15/bin
start_postgres() {
  local pg="$STATE/pg"
  [ -x "$PG_BIN/initdb" ] || die "--ha needs PostgreSQL 15 (scripts/install-deps installs it)"
  mkdir -p "$pg"
  chown postgres: "$pg"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$pg/data" -A trust -U segwan -E UTF8 >"$STATE/logs/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -3 "$STATE/logs/initdb.log")"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg/data" -o "-k $pg -c listen_addresses=" -l "$pg/postgresql.log" \
    -w -t 30 start >/dev/null || die "PostgreSQL did not start: $(tail -3 "$pg/postgresql.log")"
  runuser -u postgres -- "$PG_BIN/createdb" -h "$pg" -U segwan segwan || die "createdb failed"
  echo "postgresql:///segwan?host=$pg&user=segwan" >"$STATE/store"
}
stop_postgres() {
  [ -d "$STATE/pg/data" ] || return 0
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$STATE/pg/data" -m fast -w -t 10 stop >/dev/null 2>&1 || true
}
second_http() { echo "${HTTP%:*}:$(( ${HTTP##*:} + 1 ))"; }

# start_controller [2]: edge-os (or, with --ha, the second one, which shares the first's CA,
# certificate and operator token).
start_controller() {
  local n=${1:-1} ctl="$STATE/controller" http=$HTTP grpc="[${MGMT_NET}1]:50051" store=() deadline
  if [ "$n" = 2 ]; then
    ctl="$STATE/controller-2" http=$(second_http) grpc="[${MGMT_NET}1]:50052"
    mkdir -p "$ctl"
    cp "$STATE/controller"/{ca.key,ca.pem,controller.key,controller.pem,operator.token} "$ctl"/
  fi
  mkdir -p "$ctl"
  [ -f "$STATE/store" ] && store=(--store "$(cat "$STATE/store")")
  # The core routers' SIDs are the candidate paths of SLA steering, unless the caller names its own.
  local cores="--core-sids p1=$(core_sid 1),p2=$(core_sid 2)"
  case " ${SEGWAN_LAB_CONTROLLER_ARGS:-} " in *" --core-sids "*) cores= ;; esac
  local log="$STATE/logs/edge-os.log" pidf="$STATE/pids/edge-os"
  [ "$n" = 2 ] && log="$STATE/logs/edge-os-2.log" pidf="$STATE/pids/edge-os-2"
  setsid "$(controller_bin)" --data-dir "$ctl" --http-listen "$http" --grpc-listen "$grpc" "${store[@]}" \
    --auto-enable --heartbeat-ms 1000 $cores ${SEGWAN_LAB_CONTROLLER_ARGS:-} >>"$log" 2>&1 </dev/null &
  echo $! >"$pidf"
  deadline=$((SECONDS + $(slow 15)))
  # It serves REST when it says "ok": not "starting" (a new leader's grace), nor "no leader"
  # (on PostgreSQL it follows, with nobody to forward to, before it takes the lead).
  until curl -sf "http://$http/api/v1/health" 2>/dev/null | grep -q '"status":"ok"'; do
    [ $SECONDS -lt $deadline ] || die "edge-os did not start: $(tail -5 "$log")"
    sleep 0.05
  done
}
controllers() {  # the agents' --controller: both with --ha
  if [ -f "$STATE/store" ]; then echo "[${MGMT_NET}1]:50051,[${MGMT_NET}1]:50052"; else echo "[${MGMT_NET}1]:50051"; fi
}

start_system() {
  [ -x "$(controller_bin)" ] && [ -x "$(agent_bin)" ] || die "edge-os or edge-manager is missing: build first (make build)"
  local ctl="$STATE/controller" s deadline
  if [ "${1:-0}" = 1 ]; then
    start_postgres
    start_controller
    start_controller 2
  else
    start_controller
  fi
  local token; token=$(cat "$ctl/operator.token")
  for s in "${SITES[@]}"; do
    local dir="$STATE/agents/edge-$s"
    mkdir -p "$dir"
    # Mutual TLS as in production: the operator names the device over REST and hands its
    # join token and the controller's CA to the agent, which enrols at its first start.
    curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      --data "{\"id\": \"edge-$s\"}" "http://$HTTP/api/v1/devices" >"$dir/join.json" ||
      die "no join token for edge-$s: $(tail -3 "$STATE/logs/edge-os.log")"
    /usr/bin/python3 -c 'import json, sys; j = json.load(open(sys.argv[1]))
open(sys.argv[2], "w").write(j["join_token"] + "\n"); open(sys.argv[3], "w").write(j["ca_certificate"])' \
      "$dir/join.json" "$dir/join.token" "$dir/controller-ca.pem"
    # No --listen: the API takes mgmt0's address, as on a real router.
    setsid ip netns exec "${P}edge-$s" "$(agent_bin)" --device-id "edge-$s" \
      --wan wan1,wan2 --lan lan0 --mgmt mgmt0 --locator "$(locator "$s")/48" \
      --state-dir "$dir" --controller "$(controllers)" \
      --ca-file "$dir/controller-ca.pem" --join-token-file "$dir/join.token" \
      >"$STATE/logs/edge-$s.log" 2>&1 </dev/null &
    echo $! >"$STATE/pids/agent-$s"
  done
  # segwan-edgectl's credentials for the agents (an operator certificate), for `lab.sh edgectl`.
  "$(dirname "$(agent_bin)")/segwan-edgectl" --tls-dir "$STATE/operator" credentials --url "http://$HTTP" \
    --token-file "$ctl/operator.token" >/dev/null || die "no operator credentials"
  printf 'SEGWAN_URL=http://%s\nSEGWAN_TOKEN=%s\nEDGECTL_TLS_DIR=%s\n' "$HTTP" "$token" "$STATE/operator" >"$STATE/controller.env"
  deadline=$((SECONDS + $(slow 15)))
  until [ "$(curl -sf -H "Authorization: Bearer $token" "http://$HTTP/api/v1/devices" | grep -o '"connected":true' | wc -l)" -eq ${#SITES[@]} ]; do
    [ $SECONDS -lt $deadline ] || die "the edges did not register: $(tail -3 "$STATE"/logs/edge-*.log)"
    sleep 0.1
  done
  info "edge-os on http://$HTTP with ${#SITES[@]} edges registered ('lab.sh env' prints the token)"
  [ ! -f "$STATE/store" ] || info "--ha: a second edge-os follows on http://$(second_http), both on $(cat "$STATE/store")"
}

cmd_up() {
  local detach=0 bare=0 ha=${SEGWAN_LAB_HA:-0}
  for a in "$@"; do
    case $a in
      --detach) detach=1 ;;
      --bare) bare=1 ;;
      --ha) ha=1 ;;
      *) die "up: unknown option $a" ;;
    esac
  done
  need_root
  [ -x "$(delayline_bin)" ] || die "$(delayline_bin) is missing: build first (make build)"
  [ -x "$(agent_bin)" ] || die "$(agent_bin) is missing: build first (make build)"
  # The kernel before anything is made: the agent's own preflight, in the mode the lab's
  # static routes need at least (table). Nothing is created when it says no.
  local missing
  if ! missing=$("$(agent_bin)" --check-kernel-missing --slice-mode table 2>&1); then
    die "this kernel ($(uname -r)) cannot carry the lab's SRv6; it lacks:
$(echo "$missing" | sed 's/^/  /')
Run the lab in a VM on Debian's kernel instead: make demo does that by itself, or
  $REPO/scripts/vm run --ro $REPO --rw $BUILD_DIR -- $0 up ...   (docs/operations.md, \"The VM lab\")"
  fi
  cmd_down_quiet
  mkdir -p "$STATE"/{pids,links,logs}
  # A test's lab: which shell runs it (tests/lab/lib.sh takes it down once that shell is gone)
  [ -z "${SEGWAN_LAB_TEST_OWNER:-}" ] || echo "$SEGWAN_LAB_TEST_OWNER" >"$STATE/test-owner"
  if has_netem; then echo netem >"$STATE/impair-mode"; else echo delayline >"$STATE/impair-mode"; fi
  info "building the lab (impairment: $(cat "$STATE/impair-mode"))"

  for s in "${SITES[@]}"; do add_node "site-$s"; add_node "edge-$s"; make_router "edge-$s"; done
  for n in "${CORES[@]}"; do add_node "p$n"; make_router "p$n"; done

  # management bridge in the root namespace
  ip link add "$MGMT_BR" type bridge
  ip addr add "${MGMT_NET}1/64" dev "$MGMT_BR" nodad
  ip link set "$MGMT_BR" up
  for s in "${SITES[@]}"; do
    ip link add "swm-$s" type veth peer name mgmt0 netns "${P}edge-$s"
    ip link set "swm-$s" master "$MGMT_BR" up
    ip -n "${P}edge-$s" link set mgmt0 up
    addr "edge-$s" mgmt0 "${MGMT_NET}$s/64"
  done

  # sites and their LANs
  for s in "${SITES[@]}"; do
    veth "site-$s" eth0 "edge-$s" lan0
    local v4 v6; v4=$(site_v4 "$s"); v6=$(site_v6 "$s")
    addr "site-$s" eth0 "$v4.2/24"; addr "site-$s" eth0 "${v6}2/64"
    addr "edge-$s" lan0 "$v4.1/24"; addr "edge-$s" lan0 "${v6}1/64"
    ip -n "${P}site-$s" route add default via "$v4.1"
    ip -n "${P}site-$s" -6 route add default via "${v6}1"
  done

  # WAN: every edge to both core routers
  for s in "${SITES[@]}"; do for n in "${CORES[@]}"; do wan_link "$s" "$n"; done; done
  start_delaylines
  wait_for_delaylines

  # loopbacks, End SIDs and the underlay routes
  for n in "${CORES[@]}"; do
    addr "p$n" lo "$(router_lo "$n")/128"
    ip -n "${P}p$n" -6 route add "$(core_sid "$n")/128" encap seg6local action End dev sr0
    for s in "${SITES[@]}"; do
      ip -n "${P}p$n" -6 route add "$(locator "$s")/48" via "$(link_net "$s" "$n")1" \
        dev "edge-$s" src "$(router_lo "$n")"
    done
  done
  for s in "${SITES[@]}"; do
    local lo; lo=$(router_lo "$s")
    addr "edge-$s" lo "$lo/128"
    ip -n "${P}edge-$s" sr tunsrc set "$lo"   # outer source of H.Encaps packets
    for n in "${CORES[@]}"; do
      ip -n "${P}edge-$s" -6 route add "$(locator "$n")/48" via "$(link_net "$s" "$n")2" \
        dev "wan$n" src "$lo"
    done
    for o in "${SITES[@]}"; do
      [ "$o" = "$s" ] && continue
      ip -n "${P}edge-$s" -6 route add "$(locator "$o")/48" via "$(link_net "$s" 1)2" dev wan1 \
        src "$lo" metric 100
      ip -n "${P}edge-$s" -6 route add "$(locator "$o")/48" via "$(link_net "$s" 2)2" dev wan2 \
        src "$lo" metric 200
    done
  done
  # seg6 on every interface (the kernel takes the minimum of "all" and the device's setting)
  for ns in $(lab_namespaces); do
    ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv6/conf/*/seg6_enabled; do echo 1 >"$f"; done'
  done

  touch "$STATE/up"
  info "up: $(lab_namespaces | wc -l) namespaces; 'lab.sh status' shows them, 'lab.sh down' removes them"
  [ $bare -eq 1 ] || start_system $ha
  if [ $detach -eq 0 ]; then
    trap 'echo; cmd_down' INT TERM
    info "press Ctrl-C to stop"
    while is_up; do sleep 1; done
  fi
}

# Ends the given PIDs: TERM, up to 2 s to exit, then KILL, and waits until they are gone.
# Waits up to 2 s for all the given PIDs to be gone; false if some are still there.
pids_gone() {
  local pid left
  for _ in $(seq 100); do
    left=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && left=1; done
    [ $left -eq 0 ] && return 0
    sleep 0.02
  done
  return 1
}
end_pids() {
  [ $# -gt 0 ] || return 0
  kill "$@" 2>/dev/null || true
  pids_gone "$@" && return 0
  kill -9 "$@" 2>/dev/null || true
  pids_gone "$@" || true
}

cmd_down_quiet() {
  # The lab's processes: those in its pid files, and any still inside its namespaces (after a
  # crash the pid files may be gone; whatever runs in our namespaces was started by the lab).
  local pids=() ns pid f
  if [ -d "$STATE/pids" ]; then
    for f in "$STATE"/pids/*; do [ -e "$f" ] && pids+=("$(cat "$f")"); done
  fi
  for ns in $(lab_namespaces); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do pids+=("$pid"); done
  done
  end_pids "${pids[@]}"
  stop_postgres
  for ns in $(lab_namespaces); do ip netns del "$ns" 2>/dev/null || true; done
  ip link del "$MGMT_BR" 2>/dev/null || true
  for s in "${SITES[@]}"; do ip link del "swm-$s" 2>/dev/null || true; done
  rm -rf "$STATE"
}

cmd_down() {
  need_root
  cmd_down_quiet
  info "down"
}

# ---- operating it ------------------------------------------------------------------------
cmd_status() {
  if ! is_up; then
    echo "lab is down"
    [ -z "$(lab_namespaces)" ] || echo "leftover namespaces: $(lab_namespaces | tr '\n' ' ')"
    return 1
  fi
  echo "lab is up (impairment: $(cat "$STATE/impair-mode"))"
  echo "nodes: $(lab_namespaces | sed "s/^$P//" | tr '\n' ' ')"
  if [ "$(cat "$STATE/impair-mode")" = delayline ]; then
    for sock in "$STATE"/links/*.sock; do
      local id; id=$(basename "$sock" .sock)
      echo "link edge-${id:0:1} <-> p${id:1:1}:"
      "$(delayline_bin)" get "$sock" | grep -v '^all ' | sed -e "s/^ab /  edge-${id:0:1}->p${id:1:1} /" \
        -e "s/^ba /  p${id:1:1}->edge-${id:0:1} /"
    done
    # One process forwards every link: its lateness over all of them together.
    for sock in "$STATE"/links/*.sock; do
      "$(delayline_bin)" get "$sock" | sed -n 's/^all /all links: /p'
      break
    done
  else
    local x n
    for x in "${SITES[@]}"; do
      for n in "${CORES[@]}"; do
        echo "link edge-$x <-> p$n:"
        netem_status "edge-$x" "wan$n" "edge-$x->p$n"
        netem_status "p$n" "edge-$x" "p$n->edge-$x"
      done
    done
  fi
}

# netem_status NODE DEV LABEL: the netem qdisc on DEV as the kernel has it, in the delay
# line's words ("  edge-a->p1 delay_us=7000 jitter_us=0 loss_ppm=0").
netem_status() {
  inns "$1" tc qdisc show dev "$2" | awk -v label="$3" '
    function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return (v + 0) * 1000; if (v ~ /s$/) return (v + 0) * 1000000; return 0 }
    / netem / {
      for (i = 1; i <= NF; ++i) {
        if ($i == "delay") { d = us($(i + 1)); if ($(i + 2) ~ /^[0-9.]+(us|ms|s)$/) j = us($(i + 2)) }
        if ($i == "loss") l = $(i + 1) + 0
      }
    }
    END { printf "  %s delay_us=%d jitter_us=%d loss_ppm=%d\n", label, d, j, l * 10000 }'
}

# Restarts edge-os on the same data folder and arguments (an upgrade, a crash): the agents
# reconnect by themselves; returns when all have.
cmd_restart_controller() {
  need_root
  is_up && [ -f "$STATE/controller.env" ] || die "the lab runs no controller"
  end_pids "$(cat "$STATE/pids/edge-os")"
  start_controller
  local token deadline=$((SECONDS + $(slow 30)))
  token=$(cat "$STATE/controller/operator.token")
  until [ "$(curl -sf -H "Authorization: Bearer $token" "http://$HTTP/api/v1/devices" | grep -o '"connected":true' | wc -l)" -eq ${#SITES[@]} ]; do
    [ $SECONDS -lt $deadline ] || die "the edges did not reconnect: $(tail -3 "$STATE"/logs/edge-*.log)"
    sleep 0.1
  done
  info "edge-os restarted; ${#SITES[@]} edges reconnected"
}

cmd_env() {
  echo "SID_P1=$(core_sid 1)"
  echo "SID_P2=$(core_sid 2)"
  for s in "${SITES[@]}"; do
    local u; u=$(echo "$s" | tr a-z A-Z)
    echo "LOCATOR_$u=$(locator "$s")/48"
    echo "SITE_${u}_V4=$(site_v4 "$s").2"
    echo "SITE_${u}_V6=$(site_v6 "$s")2"
    echo "MGMT_$u=${MGMT_NET}$s"
  done
  echo "MGMT_CONTROLLER=${MGMT_NET}1"
  if [ -f "$STATE/controller.env" ]; then cat "$STATE/controller.env"; fi
}

cmd_exec() {
  [ $# -ge 2 ] || die "usage: lab.sh exec NODE CMD..."
  local node=$1; shift
  ip netns list | awk '{print $1}' | grep -qx "$P$node" || die "no node $node"
  exec ip netns exec "$P$node" "$@"
}

# impair NODE_A NODE_B [--delay MS] [--jitter MS] [--loss PERCENT]: traffic from A to B.
# Sets the whole impairment of that direction: an option left out is reset to 0.
cmd_impair() {
  [ $# -ge 2 ] || die "usage: lab.sh impair NODE_A NODE_B [--delay MS] [--jitter MS] [--loss PERCENT]"
  is_up || die "lab is down"
  local a=$1 b=$2 delay=0 jitter=0 loss=0
  shift 2
  while [ $# -gt 0 ]; do
    case $1 in
      --delay) delay=${2:?--delay needs MS}; shift 2 ;;
      --jitter) jitter=${2:?--jitter needs MS}; shift 2 ;;
      --loss) loss=${2:?--loss needs PERCENT}; shift 2 ;;
      *) die "impair: unknown option $1" ;;
    esac
  done
  local num='^[0-9]+([.][0-9]+)?$'
  [[ $delay =~ $num ]] || die "impair: --delay: '$delay' is not a number of milliseconds"
  [[ $jitter =~ $num ]] || die "impair: --jitter: '$jitter' is not a number of milliseconds"
  [[ $loss =~ $num ]] || die "impair: --loss: '$loss' is not a percentage"
  local x n dir
  if [[ $a =~ ^edge-([abc])$ && $b =~ ^p([12])$ ]]; then
    x=${a#edge-}; n=${b#p}; dir=ab
  elif [[ $a =~ ^p([12])$ && $b =~ ^edge-([abc])$ ]]; then
    x=${b#edge-}; n=${a#p}; dir=ba
  else
    die "impair: no impairable link from $a to $b (links join edge-a/b/c with p1/p2)"
  fi
  if [ "$(cat "$STATE/impair-mode")" = netem ]; then
    local node dev
    if [ $dir = ab ]; then node=edge-$x; dev=wan$n; else node=p$n; dev=edge-$x; fi
    inns "$node" tc qdisc replace dev "$dev" root netem delay "${delay}ms" "${jitter}ms" loss "${loss}%"
  else
    "$(delayline_bin)" set "$STATE/links/$x$n.sock" --dir $dir --delay-ms "$delay" \
      --jitter-ms "$jitter" --loss "$loss" >/dev/null
  fi
  info "impair $a -> $b: delay ${delay} ms, jitter ${jitter} ms, loss ${loss}%"
}

usage() {
  sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    exec) cmd_exec "$@" ;;
    impair) need_root; cmd_impair "$@" ;;
    restart-controller) cmd_restart_controller ;;
    scenario) is_up || die "lab is down"; [ -f "$STATE/controller.env" ] || die "the lab runs no controller (up --bare)"
      exec /usr/bin/python3 "$HERE/scenario.py" apply "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
