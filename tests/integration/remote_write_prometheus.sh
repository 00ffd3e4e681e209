#!/bin/sh
# Debian's real Prometheus scrapes itself every second and remote-writes to
# rollgate. rollgate must accept everything (zero rejected, only 204 answers) and
# end up with the same series as Prometheus holds.
. tests/integration/lib.inc

command -v prometheus >/dev/null || fail "prometheus is not installed (make deps)"
start_rollgate --log-level info

PROM_PORT=$(free_port)
cat >"$TMP/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$PROM_PORT']
remote_write:
  - url: $RG_URL/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 500
    metadata_config:
      send: true
      send_interval: 2s
YML
prometheus --config.file="$TMP/prometheus.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --storage.tsdb.path="$TMP/prom-data" >"$TMP/prometheus.log" 2>&1 &
PIDS="$PIDS $!"
wait_http "http://127.0.0.1:$PROM_PORT/-/ready" 30 || fail "prometheus did not become ready"
ok "prometheus started on 127.0.0.1:$PROM_PORT"

i=0
while [ "$(metric rollgate_remote_write_samples_total)" = 0 ] && [ $i -lt 300 ]; do
    sleep 0.1; i=$((i + 1))
done
[ "$(metric rollgate_remote_write_samples_total)" != 0 ] || fail "no samples arrived"
ok "samples arrive ($(metric rollgate_remote_write_samples_total))"

# Prometheus' own series settle after a few scrapes; compare until equal (or 60 s).
prom_count() {
    curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode 'query=count({__name__=~".+"})' |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)'
}
i=0
while :; do
    p=$(prom_count); r=$(metric rollgate_series_active)
    [ "$p" = "$r" ] && [ "$p" != 0 ] && break
    i=$((i + 1))
    [ $i -lt 60 ] || fail "series differ: prometheus=$p rollgate=$r"
    sleep 1
done
ok "series count matches prometheus ($r)"

sleep 3
rej=$(curl -s "$RG_URL/metrics" | awk '/^rollgate_remote_write_rejected_(samples|series)_total/ { s += $2 } END { print s + 0 }')
[ "$rej" = 0 ] || fail "rollgate rejected $rej samples/series"
ok "nothing rejected"
non204=$(curl -s "$RG_URL/metrics" | awk '/^rollgate_remote_write_requests_total/ && !/code="204"/ { s += $2 } END { print s + 0 }')
[ "$non204" = 0 ] || fail "$non204 requests not answered 204"
ok "every request answered 204 ($(metric 'rollgate_remote_write_requests_total{code="204"}'))"
[ "$(metric rollgate_remote_write_metadata_total)" != 0 ] || fail "no metadata arrived"
ok "metadata arrives ($(metric rollgate_remote_write_metadata_total) entries)"

promtool_out=$(curl -s "$RG_URL/metrics" | promtool check metrics 2>&1) || fail "promtool check metrics: $promtool_out"
ok "/metrics passes promtool check metrics"

kill -TERM "$RG_PID"
wait "$RG_PID"; rc=$?
[ "$rc" = 0 ] || fail "rollgate exited $rc after SIGTERM"
grep -q 'event=stopped' "$TMP/rollgate.log" || fail "no clean stop logged"
ok "SIGTERM: clean exit 0"
echo "$CHECKS checks passed"
