#!/usr/bin/env bash
# /metrics against the real thing: Debian's promtool accepts the exposition, and a real
# Prometheus scrapes the controller while a delay session measures 12 ms out: the delay
# histogram read back through Prometheus' query API (histogram_quantile) lands in the
# bucket of 12 ms, and each session adds the documented number of series.
source "$(dirname "$0")/lib.sh"
require_lab_kernel
command -v curl >/dev/null || skip "needs curl"
command -v prometheus >/dev/null && command -v promtool >/dev/null || skip "needs Debian's prometheus package"
lab_up
WORK=$(mktemp -d)
AGENT_STATE_ROOT=$WORK/agents
CTL_DIR=$WORK/controller
PROM_PID=""
trap 'rc=$?; [ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null; kill_controller "$CTL_DIR" KILL 2>/dev/null; rm -rf "$WORK"; lab_teardown $rc' EXIT

start_controller "$CTL_DIR" --auto-enable --poll-interval-ms 250 --heartbeat-ms 500
for x in a b; do start_agent "$x" --controller "[fd5e:ff::1]:50051"; done
connected() { [ "$(api GET "/api/v1/devices/edge-$1" "$OP_TOKEN" | jget connected)" = True ]; }
wait_for 10 connected a && wait_for 10 connected b || fail "edges did not register"
TENANT=$(api POST /api/v1/tenants "$OP_TOKEN" '{"name": "acme"}' | jget token)
SLICE=$(api POST /api/v1/slices "$TENANT" "{\"name\": \"blue\", \"sites\": [
  {\"device\": \"edge-a\", \"interface\": \"lan0\"}, {\"device\": \"edge-b\", \"interface\": \"lan0\"}],
  \"paths\": [{\"from\": \"edge-a\", \"to\": \"edge-b\", \"waypoints\": [\"$SID_P1\"]}]}" | jget id)
"$LAB" impair edge-a p1 --delay 12
DS=$(api POST /api/v1/delay-sessions "$TENANT" "{\"slice\": \"$SLICE\", \"sender\": \"edge-a\",
  \"reflector\": \"edge-b\", \"interval_ms\": 50}" | jget id)

step "promtool accepts the exposition"
samples() { api GET "/api/v1/delay-sessions/$DS/stats" "$TENANT" | jget samples; }
has_samples() { [ "$(samples)" -ge 20 ]; }
wait_for 15 has_samples || fail "the session does not measure"
curl -s "$CTL_URL/metrics" >"$WORK/metrics.txt"
promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.txt" 2>&1 ||
  fail "promtool check metrics: $(cat "$WORK/promtool.txt")"
series=$(grep -c "^segwan_delay_seconds[_a-z]*{session=\"$DS\"" "$WORK/metrics.txt")
[ "$series" -eq 32 ] || fail "session $DS has $series delay series, the documented 32 (2 directions x 16)"
pass "promtool: no problem; $series series for one session"

step "a real Prometheus scrapes it and answers histogram_quantile"
PROM_PORT=$((CTL_HTTP_PORT + 1000))
cat >"$WORK/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: segwan
    static_configs: [{targets: ["127.0.0.1:$CTL_HTTP_PORT"]}]
EOF
prometheus --config.file "$WORK/prometheus.yml" --storage.tsdb.path "$WORK/tsdb" \
  --web.listen-address "127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
query() {
  curl -s --get "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
    /usr/bin/python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")'
}
up() { [ "$(query "up{job=\"segwan\"}")" = 1 ]; }
wait_for 20 up || fail "Prometheus does not scrape the controller: $(tail -5 "$WORK/prometheus.log")"
q="histogram_quantile(0.5, rate(segwan_delay_seconds_bucket{session=\"$DS\",direction=\"direct\"}[5s]))"
have_quantile() { v=$(query "$q"); [ -n "$v" ] && [ "$v" != NaN ]; }
wait_for 20 have_quantile || fail "no quantile from Prometheus for $DS"
p50=$(query "$q")
echo "Prometheus: median direct delay of $DS = $p50 s (12 ms injected; buckets 10 and 25 ms)"
within "$p50" 0.010 0.025 || fail "median $p50 s is not in the 12 ms bucket"
pass "scraped by Prometheus; histogram_quantile puts the median in the 10-25 ms bucket"
