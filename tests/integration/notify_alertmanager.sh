#!/bin/sh
# Notifications to Debian's real Alertmanager: a rollback driven by remote-written
# data fires an alert that appears in Alertmanager's /api/v2/alerts with the rule's
# labels and rollgate's external labels, then resolves when the errors stop.
. tests/integration/lib.inc

command -v prometheus-alertmanager >/dev/null || fail "prometheus-alertmanager is not installed (make deps)"
AM_PORT=$(free_port)
AM="http://127.0.0.1:$AM_PORT"
cat >"$TMP/am.yml" <<'YML'
route:
  receiver: none
  group_wait: 1s
receivers:
  - name: none
YML
prometheus-alertmanager --config.file="$TMP/am.yml" --storage.path="$TMP/am-data" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= \
    >"$TMP/alertmanager.log" 2>&1 &
PIDS="$PIDS $!"
wait_http "$AM/-/ready" 30 || fail "alertmanager did not become ready"
ok "alertmanager started"

cat >"$TMP/rollgate.yml" <<YML
global:
  evaluation_interval: 1s
  external_labels: {cluster: it}
rule_files: [alerts.yml]
notifiers:
  - name: am
    type: alertmanager
    url: $AM
    resend_delay: 2s
phases:
  - name: canary
    min_observation: 1m
    gates:
      - {signal: error_ratio, op: "<", threshold: 0.1%}
triggers:
  - {name: error_rate_rollback, signal: error_ratio_instant, op: ">", threshold: 1%}
discovery: {interval: 1s}
YML
cat >"$TMP/alerts.yml" <<'YML'
groups:
  - name: deployment
    interval: 1s
    rules:
      - alert: DeploymentRollback
        expr: rollgate_deployment_verdict{verdict="rollback"} == 1
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.deployment }} must roll back"}
YML
start_rollgate --config "$TMP/rollgate.yml"
G=tests/integration/svcgen.py
n=$(( $(date +%s) * 1000 ))
python3 $G shop $((n - 120000)) $((n - 1000)) 1000 0 >"$TMP/hist"
[ "$(post_write "$TMP/hist")" = 204 ] || fail "history: $(cat "$TMP/resp")"
i=0
until curl -s -o "$TMP/out" -w '%{http_code}' -X POST -d '{"phase":"canary"}' \
        "$RG_URL/api/v1/deployments/shop/phase" | grep -q 200; do
    i=$((i + 1)); [ $i -lt 40 ] || fail "deployment shop not discovered"; sleep 0.25
done
ok "canary started"

sleep 2   # at least two breaching samples after the history
t=$(( $(date +%s) * 1000 ))
python3 $G shop $((n)) $t 1000 "$n:0.02" >"$TMP/breach"
[ "$(post_write "$TMP/breach")" = 204 ] || fail "breach: $(cat "$TMP/resp")"
am_alerts() {
    curl -s "$AM/api/v2/alerts" | python3 -c '
import json, sys
for a in json.load(sys.stdin):
    l = a["labels"]
    if l.get("alertname") == "DeploymentRollback":
        print(l.get("deployment"), l.get("severity"), l.get("cluster"), a["status"]["state"], a["annotations"].get("summary"))'
}
i=0
until am_alerts | grep -q '^shop critical it active shop must roll back$'; do
    i=$((i + 1)); [ $i -lt 60 ] || fail "alert not in alertmanager: $(curl -s "$AM/api/v2/alerts")"; sleep 0.5
done
ok "alert in Alertmanager with rule labels, external labels and templated annotation"
[ "$(metric 'rollgate_notifications_total{notifier="am",outcome="success"}')" != 0 ] ||
    fail "no successful delivery counted"
ok "deliveries counted in /metrics"

# The errors stop and the deployment is reset: the alert resolves and Alertmanager
# drops it.
sleep 1
t2=$(( $(date +%s) * 1000 ))
python3 $G shop $((t + 1000)) $t2 1000 "$n:0.02" "$t:0" >"$TMP/healthy"
[ "$(post_write "$TMP/healthy")" = 204 ] || fail "healthy again: $(cat "$TMP/resp")"
curl -s -o /dev/null -X POST "$RG_URL/api/v1/deployments/shop/reset"
i=0
while am_alerts | grep -q '^shop'; do
    i=$((i + 1)); [ $i -lt 60 ] || fail "alert did not resolve: $(curl -s "$AM/api/v2/alerts")"; sleep 0.5
done
ok "alert resolved in Alertmanager after the reset"
echo "$CHECKS checks passed"
