# Helpers for lab integration tests (sourced). A test that cannot run here exits 77 with the
# reason printed (CTest reports it as skipped); every test tears the lab down on exit, also
# after a failure.
set -euo pipefail

SEGWAN_SOURCE_DIR=${SEGWAN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SEGWAN_BUILD_DIR=${SEGWAN_BUILD_DIR:-$SEGWAN_SOURCE_DIR/build}
export SEGWAN_BUILD_DIR
LAB="$SEGWAN_SOURCE_DIR/deploy/lab/lab.sh"
export LAB_QUIET=1

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
step() { echo "--- $*"; }

require_root() { [ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"; }

# The VM on Debian's kernel (scripts/vm) as the tests run it: it sees the source tree read-only,
# the build folder writable and the SEGWAN_* environment. Add --timeout S -- CMD...
VM_RUN=("$SEGWAN_SOURCE_DIR/scripts/vm" run --ro "$SEGWAN_SOURCE_DIR" --rw "$SEGWAN_BUILD_DIR")

# spawn_us: microseconds to start and finish one `ip link show lo` here (mean of 20), the work
# the lab and its tests do most.
spawn_us() {
  local t0 t1
  t0=$(date +%s%N)
  for _ in $(seq 20); do ip link show lo >/dev/null; done
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 20000))
}

# In the VM: how many times slower than the host that started it (the same measure there, just
# before), which scales the lab's start-up deadlines (SEGWAN_LAB_SLOWDOWN, at least 1, at most
# 30). Printed: under emulation a deadline set for the host would fail what only takes longer.
measure_slowdown() {
  local host=${SEGWAN_HOST_SPAWN_US:-} vm
  vm=$(spawn_us)
  if [ -n "$host" ] && [ "$host" -gt 0 ]; then
    SEGWAN_LAB_SLOWDOWN=$(((vm + host - 1) / host))
    [ "$SEGWAN_LAB_SLOWDOWN" -ge 1 ] || SEGWAN_LAB_SLOWDOWN=1
    [ "$SEGWAN_LAB_SLOWDOWN" -le 30 ] || SEGWAN_LAB_SLOWDOWN=30
  else
    SEGWAN_LAB_SLOWDOWN=${SEGWAN_LAB_SLOWDOWN:-1}
  fi
  export SEGWAN_LAB_SLOWDOWN
  echo "--- a process start takes ${vm} us here, ${host:-?} us on the host: start-up deadlines x$SEGWAN_LAB_SLOWDOWN"
}

# Checks the kernel can do what the lab needs (the agent's own preflight, `edge-manager
# --check-kernel`, in table mode: the lab's static routes use End.DT6 by table). Where this
# kernel lacks it, the test runs again inside a VM on Debian's stock kernel (scripts/vm) unless
# SEGWAN_LAB_VM=no; inside the VM, or without one, it skips with the missing features named.
# The VM gets SEGWAN_VM_TIMEOUT seconds (default: a little under the test's CTest timeout).
require_lab_kernel() {
  require_root
  local agent="$SEGWAN_BUILD_DIR/edge-manager/edge-manager" report missing
  [ -x "$agent" ] || skip "no agent built at $agent"
  if [ -n "${SEGWAN_IN_VM:-}" ]; then
    echo "--- in a VM on Debian's kernel $(uname -r)"
    measure_slowdown
  fi
  missing=$("$agent" --check-kernel-missing --slice-mode table 2>&1) && return 0
  missing=$(echo "$missing" | paste -sd ';' | sed 's/;/; /g')
  if [ -z "${SEGWAN_IN_VM:-}" ] && [ "${SEGWAN_LAB_VM:-auto}" != no ]; then
    # A test that does not pass in the VM yet says why (tests/CMakeLists.txt), unless asked for.
    if [ -n "${SEGWAN_LAB_VM_NOT_YET:-}" ] && [ "${SEGWAN_LAB_VM:-auto}" != yes ]; then
      skip "this kernel ($(uname -r)) lacks $missing, and in the VM this test does not pass yet: $SEGWAN_LAB_VM_NOT_YET (SEGWAN_LAB_VM=yes runs it there)"
    fi
    echo "--- this kernel ($(uname -r)) lacks $missing: running the test in a VM on Debian's kernel"
    # The VM's kernel has netem, but the tests' bounds and the lateness they print are the
    # delay line's: the same emulator as on a host without netem (docs/operations.md).
    export SEGWAN_LAB_FORCE_DELAYLINE=${SEGWAN_LAB_FORCE_DELAYLINE:-1} SEGWAN_HOST_SPAWN_US=$(spawn_us)
    # exec: when the test runner kills this shell at its timeout, the VM goes with it.
    exec "${VM_RUN[@]}" --timeout "${SEGWAN_VM_TIMEOUT:-1700}" -- bash "$(realpath "${BASH_SOURCE[-1]}")"
  fi
  skip "this kernel ($(uname -r)) lacks $missing"
}

ns_snapshot() { ip netns list 2>/dev/null | awk '{print $1}' | sort; }

# proc_start PID: when the process started (clock ticks since boot; with the PID, it names one
# process even after the PID is reused); nothing when there is no such process, or a zombie
proc_start() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '$1 != "Z" {print $20}'; }

# Claims the lab for this test. A lab somebody runs is left alone (the test skips). A lab that a
# test brought up is marked with the test's shell (`lab.sh up` writes SEGWAN_LAB_TEST_OWNER to
# test-owner, and start_postgres adds its cluster); when that shell is gone without its teardown
# (killed at its CTest timeout), the lab and that PostgreSQL are taken down: one hang must not
# turn the tests after it into skips.
lab_claim() {
  local owner=/run/segwan-lab/test-owner pid="" start="" dirs dir
  if [ -e /run/segwan-lab/up ]; then
    [ ! -e "$owner" ] || read -r pid start <"$owner" || true
    if [ -z "$pid" ] || [ "$(proc_start "$pid")" = "$start" ]; then
      skip "a lab is already running here (deploy/lab/lab.sh down to free it)"
    fi
    echo "--- taking down the lab that the test in shell $pid left behind"
    dirs=$(sed -n 's/^pg //p' "$owner")
    "$LAB" down || true
    for dir in $dirs; do
      PG_DIR=$dir stop_postgres
      rm -rf "$dir"
    done
  fi
  SEGWAN_LAB_TEST_OWNER="$$ $(proc_start $$)"
  export SEGWAN_LAB_TEST_OWNER
}

# Starts the lab (refusing to clobber one somebody else is running) and arranges teardown.
lab_up() {
  lab_claim
  NS_BEFORE=$(ns_snapshot | grep -v '^sw-' || true)
  trap lab_teardown EXIT
  "$LAB" up --detach --bare
  # shellcheck disable=SC1090
  eval "$("$LAB" env)"
}

# lab_teardown [STATUS]: takes the lab down and exits with the test's status. An EXIT trap
# that does more first must pass the status it found ('rc=$?; ...; lab_teardown $rc'):
# by then $? is its own commands'.
lab_teardown() {
  local rc=${1:-$?}
  stop_postgres
  [ -z "${PG_DIR:-}" ] || rm -rf "$PG_DIR"
  "$LAB" down || true
  exit "$rc"
}

# Teardown check: the namespaces are exactly as before, nothing of the lab is left.
check_clean_teardown() {
  stop_postgres
  [ -z "${PG_DIR:-}" ] || rm -rf "$PG_DIR"
  "$LAB" down
  trap - EXIT
  # Nothing of the lab's (sw-*) is left, and every namespace that was there before still is.
  local after; after=$(ns_snapshot)
  local left; left=$(echo "$after" | grep '^sw-' || true)
  [ -z "$left" ] || fail "namespaces left behind: $(echo "$left" | tr '\n' ' ')"
  local gone; gone=$(comm -23 <(echo "$NS_BEFORE") <(echo "$after") | grep . || true)
  [ -z "$gone" ] || fail "namespaces that were there before are gone: $(echo "$gone" | tr '\n' ' ')"
  ! ip link show swmgmt >/dev/null 2>&1 || fail "management bridge left behind"
  [ ! -e /run/segwan-lab ] || fail "lab state folder left behind"
  pass "teardown left nothing behind"
}

# avg RTT in ms of `ping` run in NODE
ping_avg() {
  local node=$1; shift
  "$LAB" exec "$node" ping "$@" | awk -F/ '/^rtt/ {print $5}'
}

# float comparison: within VALUE LOW HIGH
within() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }

# Starts edge-manager on edge-X (a, b, c) listening on its management address; waits for it.
# Extra arguments go to edge-manager. The lab's teardown ends it (it runs in a lab namespace).
# With --controller it runs as in production, over mutual TLS: the first start enrols with a
# join token made over REST (start_controller first); the test's edgectl then uses an
# operator certificate. Without a controller it runs --insecure, the mode for closed labs.
EDGECTL="$SEGWAN_BUILD_DIR/edge-manager/segwan-edgectl"
start_agent() {
  local x=$1; shift
  local dir="${AGENT_STATE_ROOT:?}/edge-$x"
  mkdir -p "$dir"
  local auth=(--insecure)
  if [[ " $* " == *" --controller "* ]]; then
    if [ ! -e "$dir/tls/cert.pem" ]; then
      local r; r=$(api POST /api/v1/devices "$OP_TOKEN" "{\"id\": \"edge-$x\"}")
      echo "$r" | jget join_token >"$dir/join.token"
      echo "$r" | jget ca_certificate >"$dir/controller-ca.pem"
    fi
    auth=(--ca-file "$dir/controller-ca.pem" --join-token-file "$dir/join.token" --tls-dir "$dir/tls")
    [ -e "${AGENT_STATE_ROOT}/operator/cert.pem" ] ||
      "$EDGECTL" --tls-dir "$AGENT_STATE_ROOT/operator" credentials --url "$CTL_URL" \
        --token-file <(echo "$OP_TOKEN") >/dev/null || fail "no operator credentials for edgectl"
    echo tls >"$dir/mode"
  else
    echo insecure >"$dir/mode"
  fi
  "$LAB" exec "edge-$x" "$SEGWAN_BUILD_DIR/edge-manager/edge-manager" --device-id "edge-$x" \
    --listen "[fd5e:ff::$x]:50061" --wan wan1,wan2 --lan lan0 --mgmt mgmt0 \
    --locator "fc00:0:$x::/48" --state-dir "$dir" "${auth[@]}" "$@" >>"$dir/agent.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq $((100 * ${SEGWAN_LAB_SLOWDOWN:-1}))); do
    edgectl "$x" interfaces >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  cat "$dir/agent.log"
  fail "edge-manager on edge-$x did not come up"
}
stop_agent() {
  local pid; pid=$(cat "${AGENT_STATE_ROOT:?}/edge-$1/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq $((100 * ${SEGWAN_LAB_SLOWDOWN:-1}))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
}
# The agents of start_agent, or those `lab.sh up` started (its env names their credentials).
edgectl() {
  local x=$1; shift
  if [ -n "${AGENT_STATE_ROOT:-}" ] && [ "$(cat "$AGENT_STATE_ROOT/edge-$x/mode" 2>/dev/null)" = tls ]; then
    "$EDGECTL" --edge "[fd5e:ff::$x]:50061" --tls-dir "$AGENT_STATE_ROOT/operator" --device "edge-$x" "$@"
  elif [ -z "${AGENT_STATE_ROOT:-}" ] && [ -n "${EDGECTL_TLS_DIR:-}" ]; then
    "$EDGECTL" --edge "[fd5e:ff::$x]:50061" --tls-dir "$EDGECTL_TLS_DIR" --device "edge-$x" "$@"
  else
    "$EDGECTL" --edge "[fd5e:ff::$x]:50061" --insecure "$@"
  fi
}

# Counts SRH packets seen on core router pN's link to edge-X while CMD runs.
srh_count_during() {
  local n=$1 x=$2; shift 2
  local f; f=$(mktemp)
  "$LAB" exec "p$n" timeout 10 tcpdump -l -n -i "edge-$x" 'ip6 proto 43' >"$f" 2>"$f.err" &
  local tpid=$!
  for _ in $(seq 100); do grep -q "listening on" "$f.err" 2>/dev/null && break; sleep 0.05; done
  "$@" >/dev/null 2>&1 || true
  sleep 0.2
  kill "$tpid" 2>/dev/null || true
  wait "$tpid" 2>/dev/null || true
  grep -c "RT6" "$f" || true
  rm -f "$f" "$f.err"
}

# What the kernel of NODE has that a slice could touch: routes of every table, and rules.
# (The rule "lookup [l3mdev-table]" is left out: the kernel adds it with a namespace's first
# VRF device and keeps it after the last one goes; it selects nothing without a VRF.)
kernel_snapshot() {
  "$LAB" exec "$1" sh -c 'ip -6 route show table all; ip -4 route show table all; ip -6 rule; ip -4 rule' |
    grep -v 'lookup \[l3mdev-table\]' | sort
}

# The slice mode an agent picks by itself on this kernel (--slice-mode auto): vrf or table.
default_slice_mode() {
  { "$SEGWAN_BUILD_DIR/edge-manager/edge-manager" --check-kernel || true; } |
    sed -n '1s/.*slices in \([a-z]*\) mode.*/\1/p'
}

# stamp_lab_up: the lab with agents on edge-a and edge-b (state in $AGENT_STATE_ROOT, removed
# at exit); A and B are their STAMP addresses.
stamp_lab_up() {
  lab_up
  AGENT_STATE_ROOT=$(mktemp -d)
  trap 'rc=$?; rm -rf "$AGENT_STATE_ROOT"; lab_teardown $rc' EXIT
  A=fc00:0:a::1
  B=fc00:0:b::1
  start_agent a
  start_agent b
}

# require_stamp_xdp X...: skips when the agent on edge-X could not load the STAMP XDP program.
require_stamp_xdp() {
  local x
  for x in "$@"; do
    if grep -q "XDP STAMP reflector" "$AGENT_STATE_ROOT/edge-$x/agent.log"; then
      skip "this kernel refused the STAMP XDP program on edge-$x: $(grep 'XDP STAMP reflector' "$AGENT_STATE_ROOT/edge-$x/agent.log")"
    fi
  done
}

# prime_stamp_paths: resolves the neighbours along edge-a -> edge-b and on both of edge-b's WAN
# links (through p1 and p2). A reply whose next hop is not resolved yet goes to the stack by
# design (no-route), and first packets would also measure neighbour discovery.
prime_stamp_paths() {
  local core
  "$LAB" exec edge-a ping -6 -c 2 -i 0.1 -q -I "$A" "$B" >/dev/null
  for core in fc00:0:1::1 fc00:0:2::1; do
    "$LAB" exec edge-b ping -6 -c 2 -i 0.1 -q -I "$B" "$core" >/dev/null
  done
}

# StampSessionParams JSON: stamp_session SSID SEGMENT SRC DST (50 packets, 20 ms apart)
stamp_session() {
  echo "{\"ssid\": $1, \"segments\": [\"$2\"], \"source_address\": \"$3\", \"peer_address\": \"$4\", \"interval_ms\": 20, \"packet_count\": 50}"
}

# stamp_stats X SSID -> "records median_direct_ms median_return_ms longest_T3-T2_us sent
# direct_lost return_lost" from the GetStampSessionResults of edge-X (the records are removed
# by reading them). The losses come from a stateful reflector's own numbering: it counts what
# reached it (meaningless for a stateless one).
stamp_stats() {
  edgectl "$1" stamp results "$2" | /usr/bin/python3 -c '
import json, statistics, sys
j = json.load(sys.stdin)
r = j.get("results", [])
sent = int(j.get("packets_sent", 0))
d = [(int(x["t2_ns"]) - int(x["t1_ns"])) / 1e6 for x in r]
b = [(int(x["t4_ns"]) - int(x["t3_ns"])) / 1e6 for x in r]
t = [(int(x["t3_ns"]) - int(x["t2_ns"])) / 1e3 for x in r]
reached = max((int(x.get("reflector_seq", 0)) for x in r), default=-1) + 1
# medians: one late wake-up on a shared machine moves a mean of 50 records by a millisecond
print(len(r), statistics.median(d) if d else -1, statistics.median(b) if b else -1, max(t) if t else -1,
      sent, sent - reached, reached - len(r))'
}

# expect_delays X SSID LABEL DIRECT_MS RETURN_MS: edge-X's session SSID has all 50 records and
# mean direct and return delays within 0.5 ms of what was injected (the return may be 0).
expect_delays() {
  local x=$1 ssid=$2 label=$3 want_d=$4 want_r=$5 n d r dwell
  read -r n d r dwell _ < <(stamp_stats "$x" "$ssid")
  echo "session $ssid ($label): $n records, direct $d ms, return $r ms, longest T3-T2 $dwell us"
  [ "$n" -eq 50 ] || fail "session $ssid: $n records, expected 50"
  within "$d" "$(awk -v w="$want_d" 'BEGIN{print w-0.5}')" "$(awk -v w="$want_d" 'BEGIN{print w+0.5}')" \
    || fail "session $ssid direct $d ms, expected $want_d +- 0.5"
  within "$r" "$(awk -v w="$want_r" 'BEGIN{print w-0.5}')" "$(awk -v w="$want_r" 'BEGIN{print w+0.5}')" \
    || fail "session $ssid return $r ms, expected $want_r +- 0.5"
}

# stamp_counter X NAME: a STAMP counter from edge-X's GetState ("xdp:collected", ...); -1 if none
stamp_counter() {
  edgectl "$1" state | /usr/bin/python3 -c '
import json, sys
print(next((int(c.get("value", 0)) for c in json.load(sys.stdin).get("stamp_counters", [])
            if c["name"] == sys.argv[1]), -1))' "$2"
}

# start_stamp_sessions SSID...: starts each session on edge-b (reflector) and edge-a (sender).
start_stamp_sessions() {
  local s
  for s in "$@"; do
    edgectl b stamp start reflector "$s" >/dev/null || fail "start reflector $s"
    edgectl a stamp start sender "$s" >/dev/null || fail "start sender $s"
  done
}

# ---- the controller ---------------------------------------------------------------------
# start_controller DIR [ARGS...]: edge-os in the root namespace, Registration on the
# management bridge, REST on loopback; its data (SQLite, tokens) in DIR. Sets CTL_URL, OP_TOKEN.
CTL_HTTP_PORT=${CTL_HTTP_PORT:-18080}
# SEGWAN_LAB_STORE=postgresql: the controller keeps its data in a PostgreSQL of the test's own
# (started at the first start_controller, gone with lab_teardown), as CTest's *.postgresql runs do.
start_controller() {
  local dir=$1; shift
  mkdir -p "$dir"
  local store=()
  if [ "${SEGWAN_LAB_STORE:-sqlite}" = postgresql ]; then
    [ -n "${PG_URI:-}" ] || start_postgres "$(mktemp -d /tmp/segwan-labpg-XXXXXX)"
    store=(--store "$PG_URI")
  fi
  "$SEGWAN_BUILD_DIR/edge-os/edge-os" --data-dir "$dir" --http-listen "127.0.0.1:$CTL_HTTP_PORT" \
    --grpc-listen "[fd5e:ff::1]:50051" "${store[@]}" "$@" >>"$dir/edge-os.log" 2>&1 &
  echo $! >"$dir/pid"
  CTL_URL="http://127.0.0.1:$CTL_HTTP_PORT"
  # Up means it serves REST: "ok". A controller on PostgreSQL follows ("no leader" yet) before
  # it takes the lead, then says "starting" for its grace (docs/operations.md). Up to 15 s: a
  # loaded machine is slow to start.
  for _ in $(seq 300); do
    controller_serves "$CTL_URL" && break
    sleep 0.05
  done
  controller_serves "$CTL_URL" || { cat "$dir/edge-os.log"; fail "edge-os did not come up"; }
  OP_TOKEN=$(cat "$dir/operator.token")
}
controller_serves() {  # controller_serves URL
  curl -sf "$1/api/v1/health" 2>/dev/null | grep -q '"status":"ok"'
}
kill_controller() {  # kill_controller DIR SIGNAL
  local pid; pid=$(cat "$1/pid")
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq $((100 * ${SEGWAN_LAB_SLOWDOWN:-1}))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
}

# api METHOD PATH TOKEN [BODY]: the response body; fails the test on a non-2xx answer.
api() {
  local method=$1 path=$2 token=$3 body=${4:-} out code
  out=$(curl -s -w '\n%{http_code}' -X "$method" -H "Authorization: Bearer $token" \
    ${body:+-H 'Content-Type: application/json' --data "$body"} "$CTL_URL$path")
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [[ $code == 2* ]] || fail "$method $path: HTTP $code $out"
  echo "$out"
}
# jget FIELD.PATH: reads a field of the JSON on stdin ("direct.mean_ms", "0.id").
jget() {
  /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$1"
}
# wait_for SECONDS CMD...: retries CMD every 0.1 s until it succeeds; false when time runs out.
wait_for() {
  local end=$((SECONDS + $1 * ${SEGWAN_LAB_SLOWDOWN:-1})); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}

# start_postgres DIR: Debian's PostgreSQL in a private cluster (socket in DIR, no TCP), run as
# the postgres user; sets PG_URI and PG_DIR. stop_postgres stops it at once.
PG_BIN=/usr/lib/postgresql/15/bin
start_postgres() {
  PG_DIR=$1
  [ -x "$PG_BIN/initdb" ] || skip "PostgreSQL 15 is not installed ($PG_BIN/initdb)"
  id postgres >/dev/null 2>&1 || skip "no postgres user to run PostgreSQL as"
  mkdir -p "$PG_DIR"
  [ ! -e /run/segwan-lab/test-owner ] || echo "pg $PG_DIR" >>/run/segwan-lab/test-owner
  chown postgres: "$PG_DIR"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U segwan -E UTF8 --no-sync \
    >"$PG_DIR/initdb.log" 2>&1 || fail "initdb failed: $(tail -3 "$PG_DIR/initdb.log")"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -o "-k $PG_DIR -c listen_addresses=" \
    -l "$PG_DIR/log" -w -t 30 start >/dev/null || fail "PostgreSQL did not start: $(tail -3 "$PG_DIR/log")"
  runuser -u postgres -- "$PG_BIN/createdb" -h "$PG_DIR" -U segwan segwan || fail "createdb failed"
  PG_URI="postgresql:///segwan?host=$PG_DIR&user=segwan"
}
stop_postgres() {
  [ -n "${PG_DIR:-}" ] && [ -d "${PG_DIR:-}/data" ] || return 0
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
}
# psql_value SQL: the first value of the answer, from the lab's PostgreSQL.
psql_value() { "$PG_BIN/psql" -X -q -A -t -h "$PG_DIR" -U segwan -d segwan -c "$1"; }
