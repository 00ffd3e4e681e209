#!/bin/sh
# Query mode in the daemon, against Debian's real Prometheus: the same checklist and
# rule file run in two rollgates, one fed by remote write and one whose deployments
# and rule group say `source: prom` (Prometheus, fed the same remote-write bodies).
# Both must reach the same verdicts (a healthy service promotes, one whose errors
# rise to 2% rolls back), the remote group's alert must fire with its recording rule
# written into the local store, and once Prometheus is gone the remote rules must
# show health "err" with the error, counted in rollgate_query_errors_total.
. tests/integration/lib.inc

command -v prometheus >/dev/null || fail "prometheus is not installed (make deps)"
PROM_PORT=$(free_port)
PROM="http://127.0.0.1:$PROM_PORT"
printf 'global:\n  scrape_interval: 1h\n' >"$TMP/prometheus.yml"
prometheus --config.file="$TMP/prometheus.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --storage.tsdb.path="$TMP/prom-data" --web.enable-remote-write-receiver \
    >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!
PIDS="$PIDS $PROM_PID"

# The configuration of both daemons; the query-mode one adds the source lines.
write_config() {   # write_config FILE SOURCE_LINE
    cat >"$1" <<YML
global:
  evaluation_interval: 1s
phases:
  - name: canary
    min_observation: 4s
    max_observation: 5m
    min_requests: 10
    gates:
      - {signal: error_ratio, op: "<", threshold: 0.1%}
      - {signal: p99_latency, op: "<", threshold: 0.1}
triggers:
  - {name: error_rate_rollback, signal: error_ratio_instant, op: ">", threshold: 1%}
deployments:
  - {name: healthy, selector: 'job="healthy"'$2}
  - {name: breaching, selector: 'job="breaching"'$2}
discovery:
  enabled: false
rule_files: [$(basename "$1" .yml)-rules.yml]
YML
    cat >"${1%.yml}-rules.yml" <<YML
groups:
  - name: deployment
    interval: 1s
${3:-}
    rules:
      - record: job:http_errors:ratio_irate
        expr: sum by (job) (irate(http_requests_total{code=~"5.."}[1m])) / sum by (job) (irate(http_requests_total[1m]))
      - alert: HighErrorRatio
        expr: sum by (job) (irate(http_requests_total{code=~"5.."}[1m])) / sum by (job) (irate(http_requests_total[1m])) > 0.01
        labels:
          severity: critical
YML
}
write_config "$TMP/rw.yml" ""
write_config "$TMP/qm.yml" ", source: prom" "    source: prom"
cat >>"$TMP/qm.yml" <<YML
sources:
  - name: prom
    url: $PROM
    timeout: 2s
YML

start_one() {   # start_one NAME CONFIG -> sets PORT_<NAME>
    port=$(free_port)
    "$ROLLGATE" run --config "$2" --listen "127.0.0.1:$port" --data-dir "$TMP/data-$1" \
        --log-level info >>"$TMP/rollgate-$1.log" 2>&1 &
    PIDS="$PIDS $!"
    wait_http "http://127.0.0.1:$port/-/ready" 20 || fail "rollgate $1 did not become ready"
    eval "PORT_$1=$port"
}
wait_http "$PROM/-/ready" 30 || fail "prometheus did not become ready"
start_one rw "$TMP/rw.yml"
start_one qm "$TMP/qm.yml"
RW="http://127.0.0.1:$PORT_rw"
QM="http://127.0.0.1:$PORT_qm"
ok "prometheus and two rollgates started (remote write and query mode)"

post_to() {   # post_to URL FILE -> HTTP status
    curl -s -o "$TMP/resp" -w '%{http_code}' -X POST --data-binary "@$2" \
        -H "Content-Type: application/x-protobuf" -H "Content-Encoding: snappy" \
        -H 'X-Prometheus-Remote-Write-Version: 0.1.0' "$1/api/v1/write"
}
G=tests/integration/svcgen.py
now_ms() { echo $(( $(date +%s) * 1000 )); }
send() {   # send JOB SPEC... : the same body to Prometheus and to the remote-write rollgate
    python3 $G "$@" >"$TMP/body.$1"
    s1=$(post_to "$PROM" "$TMP/body.$1")
    s2=$(post_to "$RW" "$TMP/body.$1")
    [ "$s1" = 204 ] && [ "$s2" = 204 ] || fail "write $1: prometheus $s1, rollgate $s2: $(cat "$TMP/resp")"
}

n=$(now_ms)
for job in healthy breaching; do
    send $job $((n - 120000)) $((n - 1000)) 1000 0
done
ok "two minutes of history written to Prometheus and to the remote-write rollgate"

verdicts() {   # verdicts URL -> "name=verdict ..." sorted by name
    curl -s "$1/api/v1/deployments" | python3 -c '
import json, sys
d = json.load(sys.stdin)["data"]
print(" ".join("%s=%s" % (x["name"], x["verdict"]) for x in d))'
}
want="breaching=rollback healthy=promote"
t_breach=$(now_ms)
last=$((n - 1000))
deadline=$(( $(date +%s) + 25 ))
while [ "$(date +%s)" -le $deadline ]; do
    t=$(now_ms)
    if [ $t -gt $last ]; then
        send healthy $((last + 1000)) $t 1000 0
        send breaching $((last + 1000)) $t 1000 0 "$t_breach:0.02"
        last=$t
    fi
    [ "$(verdicts "$RW")" = "$want" ] && [ "$(verdicts "$QM")" = "$want" ] && break
    sleep 0.5
done
v_rw=$(verdicts "$RW")
v_qm=$(verdicts "$QM")
[ "$v_rw" = "$want" ] || fail "remote-write mode: $v_rw, want $want: $(curl -s "$RW/api/v1/deployments/breaching")"
[ "$v_qm" = "$want" ] || fail "query mode: $v_qm, want $want: $(curl -s "$QM/api/v1/deployments/breaching")"
ok "same verdicts in both modes: $v_qm"
curl -s "$QM/api/v1/deployments/breaching" | grep -q 'trigger error_rate_rollback fired' ||
    fail "query-mode rollback does not name its trigger: $(curl -s "$QM/api/v1/deployments/breaching")"
ok "query mode: the breach rolls back through the trigger"

# The remote group: the alert fires from Prometheus' answers, and the recording
# rule's output is in the local store.
i=0
until curl -s "$QM/api/v1/alerts" | grep -q '"alertname":"HighErrorRatio".*"state":"firing"'; do
    i=$((i + 1)); [ $i -lt 20 ] || fail "alert not firing in query mode: $(curl -s "$QM/api/v1/alerts")"; sleep 0.5
done
curl -s "$QM/api/v1/alerts" | grep -q '"job":"breaching"' || fail "alert lacks the job label"
curl -s "$QM/api/v1/query" --data-urlencode 'query=job:http_errors:ratio_irate{job="breaching"}' \
    >"$TMP/out"
grep -q '"job":"breaching"' "$TMP/out" || fail "recording rule not in the local store: $(cat "$TMP/out")"
ok "query mode: HighErrorRatio fires for the breaching job; the recording rule is queryable locally"

# Prometheus goes away: the remote rules keep their alert and say why they fail.
kill "$PROM_PID"
wait "$PROM_PID" 2>/dev/null
i=0
until curl -s "$QM/api/v1/rules" | grep -q '"health":"err"'; do
    i=$((i + 1)); [ $i -lt 20 ] || fail "no rule error after Prometheus stopped: $(curl -s "$QM/api/v1/rules")"; sleep 0.5
done
curl -s "$QM/api/v1/rules" | python3 -c '
import json, sys
g = [x for x in json.load(sys.stdin)["data"]["groups"] if x["name"] == "deployment"][0]
for r in g["rules"]:
    assert r["health"] == "err" and r["lastError"], r
a = [r for r in g["rules"] if r["name"] == "HighErrorRatio"][0]
assert any(x["state"] == "firing" for x in a["alerts"]), a
' || fail "rules API after the outage: $(curl -s "$QM/api/v1/rules" | head -c 800)"
n_err=$(curl -s "$QM/metrics" | awk '$1 ~ /^rollgate_query_errors_total\{source="prom"/ { s += $2 } END { print s + 0 }')
[ "$n_err" -gt 0 ] || fail "rollgate_query_errors_total not counted"
ok "Prometheus stopped: rules health err with lastError, the alert still firing, $n_err errors counted"
echo "$CHECKS checks passed"
