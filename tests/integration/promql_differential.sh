#!/bin/sh
# Differential test: the same generated data is remote-written to Debian's real
# Prometheus and to rollgate; every expression of promql_corpus.txt is evaluated at
# many times on both, and the answers must agree (label sets and values within
# 1e-9). See promql_corpus.txt for what is left out and why.
. tests/integration/lib.inc

command -v prometheus >/dev/null || fail "prometheus is not installed (make deps)"
start_rollgate --log-level warn
PROM_PORT=$(free_port)
PROM="http://127.0.0.1:$PROM_PORT"
printf 'global:\n  scrape_interval: 1h\n' >"$TMP/prometheus.yml"
prometheus --config.file="$TMP/prometheus.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --storage.tsdb.path="$TMP/prom-data" --web.enable-remote-write-receiver \
    >"$TMP/prometheus.log" 2>&1 &
PIDS="$PIDS $!"
wait_http "$PROM/-/ready" 30 || fail "prometheus did not become ready"
ok "prometheus started"

# 50 minutes of data every 15 s, ending two minutes ago (well inside both retentions).
now_s=$(date +%s)
end_ms=$(( (now_s - 120) * 1000 ))
start_ms=$(( end_ms - 50 * 60 * 1000 ))
"$BUILD/tools/rwgen" --url "$PROM/api/v1/write" --url "$RG_URL/api/v1/write" \
    --scenario promql --start-ms "$start_ms" --end-ms "$end_ms" --step-ms 15000 --seed 42 \
    >"$TMP/rwgen.log" 2>&1 || fail "rwgen: $(tail -5 "$TMP/rwgen.log")"
ok "same data written to both"

# Evaluation times: whole seconds 7 s past a whole minute, so that no subquery step
# (30 s, 1 m, 2 m) and no range boundary falls on one, across the window (including
# the end, where the lookback and the stale markers matter).
times=""
t=$(( (start_ms / 60000 + 1) * 60 + 17 * 60 + 7 ))
while [ $t -le $(( end_ms / 1000 + 240 )) ]; do
    times="$times $t"
    t=$(( t + 200 ))
done
python3 tests/integration/promql_compare.py "$PROM" "$RG_URL" tests/integration/promql_corpus.txt \
    $times >"$TMP/compare.log" 2>&1
rc=$?
cat "$TMP/compare.log" | tail -40
[ $rc = 0 ] || fail "answers differ"
ok "$(tail -1 "$TMP/compare.log")"
echo "$CHECKS checks passed"
