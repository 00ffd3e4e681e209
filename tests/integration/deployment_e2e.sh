#!/bin/sh
# End to end over HTTP: rollgate on a checklist with the bundled signals and
# triggers but a short canary, a generated healthy service reaches `promote`, and a
# service whose error ratio rises to 2% turns `rollback` at the next evaluation.
. tests/integration/lib.inc

cat >"$TMP/rollgate.yml" <<'YML'
global:
  evaluation_interval: 1s
phases:
  - name: canary
    traffic_weight: 5%
    min_observation: 4s
    max_observation: 5m
    min_requests: 10
    gates:
      - {signal: error_ratio, op: "<", threshold: 0.1%, description: "Error rate < 0.1%"}
      - {signal: p99_latency, op: "<", threshold: 0.1, description: "P99 latency < 100 ms"}
triggers:
  - {name: error_rate_rollback, signal: error_ratio_instant, op: ">", threshold: 1%}
  - {name: p99_latency_rollback, signal: p99_latency_instant, op: ">", threshold: 0.5}
discovery:
  interval: 1s
rule_files:
  - alerts.yml
YML
# A Prometheus rule file as Prometheus would load it, plus the realistic ones under
# tests/data/rules, unchanged.
cat >"$TMP/alerts.yml" <<'YML'
groups:
  - name: deployment
    interval: 1s
    rules:
      - record: job:http_errors:ratio_irate
        expr: sum by (job) (irate(http_requests_total{code=~"5.."}[1m])) / sum by (job) (irate(http_requests_total[1m]))
      - alert: HighErrorRatio
        expr: job:http_errors:ratio_irate > 0.01
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.job }} answers {{ $value | humanizePercentage }} errors"
YML
for f in tests/data/rules/*.yml; do
    echo "  - $PWD/$f" >>"$TMP/rollgate.yml"
done
start_rollgate --config "$TMP/rollgate.yml" --log-level info
G=tests/integration/svcgen.py
now_ms() { echo $(( $(date +%s) * 1000 )); }

# Two services with two minutes of healthy history.
n=$(now_ms)
for job in healthy breaching; do
    python3 $G $job $((n - 120000)) $((n - 1000)) 1000 0 >"$TMP/$job.hist"
    [ "$(post_write "$TMP/$job.hist")" = 204 ] || fail "history of $job: $(cat "$TMP/resp")"
done
ok "two services written"

verdict() {   # verdict NAME -> prints the verdict
    curl -s "$RG_URL/api/v1/deployments/$1" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["data"]["verdict"] if d["status"]=="success" else d["error"])'
}
wait_verdict() {   # wait_verdict NAME WANT SECONDS [FEED_JOB RATIO_SPEC]
    i=0
    while [ $i -lt $(( $3 * 2 )) ]; do
        v=$(verdict "$1")
        [ "$v" = "$2" ] && return 0
        sleep 0.5
        i=$((i + 1))
    done
    fail "$1: verdict $v, want $2 after $3 s: $(curl -s "$RG_URL/api/v1/deployments/$1")"
}
i=0
until curl -s "$RG_URL/api/v1/deployments" | grep -q '"breaching"'; do
    i=$((i + 1)); [ $i -lt 40 ] || fail "deployments not discovered"; sleep 0.25
done
ok "both deployments discovered from the job label"

for job in healthy breaching; do
    code=$(curl -s -o "$TMP/out" -w '%{http_code}' -X POST -d '{"phase":"canary"}' \
        "$RG_URL/api/v1/deployments/$job/phase")
    [ "$code" = 200 ] || fail "start canary for $job: $code $(cat "$TMP/out")"
done
ok "canary started for both"

# Keep feeding healthy data every 500 ms while waiting; the breaching service turns
# to 2% errors from now on.
feed() {   # feed JOB SPEC... : one second of fresh samples
    python3 $G "$@" >"$TMP/feed.$1"
    post_write "$TMP/feed.$1" >/dev/null
}
t_breach=$(now_ms)
last=$((n - 1000))
deadline=$(( $(date +%s) + 15 ))
rollback_seen=""
while [ "$(date +%s)" -le $deadline ]; do
    t=$(now_ms)
    feed healthy $((last + 1000)) $t 1000 0
    feed breaching $((last + 1000)) $t 1000 0 "$t_breach:0.02"
    last=$t
    [ -z "$rollback_seen" ] && [ "$(verdict breaching)" = rollback ] && rollback_seen=$(( $(now_ms) - t_breach ))
    [ -n "$rollback_seen" ] && [ "$(verdict healthy)" = promote ] && break
    sleep 1
done
[ -n "$rollback_seen" ] || fail "breaching service did not roll back: $(curl -s "$RG_URL/api/v1/deployments/breaching")"
ok "2% errors: verdict rollback (seen ${rollback_seen} ms after the breach began)"
curl -s "$RG_URL/api/v1/deployments/breaching" | grep -q 'error_rate_rollback' ||
    fail "rollback verdict does not name its trigger"
ok "rollback verdict names the trigger and carries its value"
i=0
until curl -s "$RG_URL/api/v1/alerts" | grep -q '"alertname":"HighErrorRatio".*"state":"firing"'; do
    i=$((i + 1)); [ $i -lt 20 ] || fail "alert not firing: $(curl -s "$RG_URL/api/v1/alerts")"; sleep 0.5
done
curl -s "$RG_URL/api/v1/alerts" | grep -q '"job":"breaching"' || fail "alert lacks the job label"
curl -s "$RG_URL/api/v1/alerts" | grep -q 'breaching answers 2' || fail "annotation not templated: $(curl -s "$RG_URL/api/v1/alerts")"
ok "alert HighErrorRatio fires for the breaching job, annotation templated"
curl -s "$RG_URL/api/v1/rules" | python3 -c '
import json, sys
d = json.load(sys.stdin)["data"]["groups"]
names = [g["name"] for g in d]
assert "deployment" in names and len(names) >= 4, names
assert all(r["health"] != "err" for g in d for r in g["rules"]), [r for g in d for r in g["rules"] if r["health"] == "err"]
assert all(r["health"] == "ok" for g in d if g["name"] == "deployment" for r in g["rules"])
' || fail "rules API: $(curl -s "$RG_URL/api/v1/rules" | head -c 500)"
ok "Prometheus rule files load unchanged and evaluate healthy"
[ "$(verdict healthy)" = promote ] || fail "healthy service: $(curl -s "$RG_URL/api/v1/deployments/healthy")"
ok "healthy service: verdict promote after the minimum observation"

# The verdict is exported as series, both in /metrics and in the query API.
curl -s "$RG_URL/metrics" | grep -q 'rollgate_deployment_verdict{deployment="breaching",phase="canary",verdict="rollback"} 1' ||
    fail "/metrics lacks the rollback verdict"
ok "verdict in /metrics"
code=$(curl -s -o "$TMP/out" -w '%{http_code}' "$RG_URL/api/v1/query" \
    --data-urlencode 'query=rollgate_deployment_verdict{verdict="rollback"} == 1')
grep -q '"breaching"' "$TMP/out" || fail "query API lacks the verdict series: $(cat "$TMP/out")"
ok "verdict in the query API"

# A human trigger rolls back the healthy one; reset clears it.
code=$(curl -s -o "$TMP/out" -w '%{http_code}' -X POST -d '{"reason":"data corruption detected"}' \
    "$RG_URL/api/v1/deployments/healthy/trigger")
[ "$code" = 200 ] && [ "$(verdict healthy)" = rollback ] || fail "human trigger: $code $(cat "$TMP/out")"
ok "human trigger: rollback"
code=$(curl -s -o "$TMP/out" -w '%{http_code}' -X POST "$RG_URL/api/v1/deployments/healthy/reset")
[ "$code" = 200 ] && [ "$(verdict healthy)" != rollback ] || fail "reset: $code $(cat "$TMP/out")"
ok "reset clears the human trigger"
code=$(curl -s -o "$TMP/out" -w '%{http_code}' -X POST -d '{"phase":"nope"}' "$RG_URL/api/v1/deployments/healthy/phase")
[ "$code" = 400 ] || fail "unknown phase: $code"
code=$(curl -s -o "$TMP/out" -w '%{http_code}' -X POST -d '{"phase":' "$RG_URL/api/v1/deployments/healthy/phase")
[ "$code" = 400 ] || fail "malformed body: $code"
code=$(curl -s -o "$TMP/out" -w '%{http_code}' "$RG_URL/api/v1/deployments/nobody")
[ "$code" = 404 ] || fail "unknown deployment: $code"
ok "bad phase, malformed body, unknown deployment: 400, 400, 404"

# The rollback survives a restart (state in --data-dir).
kill -TERM "$RG_PID"; wait "$RG_PID"
"$ROLLGATE" run --config "$TMP/rollgate.yml" --listen "127.0.0.1:$RG_PORT" --data-dir "$TMP/data" \
    >>"$TMP/rollgate.log" 2>&1 &
RG_PID=$!; PIDS="$PIDS $RG_PID"
wait_http "$RG_URL/-/ready" 20 || fail "restart"
feed breaching $((last + 1000)) $(now_ms) 1000 0
i=0
until [ "$(verdict breaching)" = rollback ]; do
    i=$((i + 1)); [ $i -lt 20 ] || fail "rollback lost over a restart: $(curl -s "$RG_URL/api/v1/deployments/breaching")"; sleep 0.5
done
ok "rollback verdict survives a restart"
echo "$CHECKS checks passed"
