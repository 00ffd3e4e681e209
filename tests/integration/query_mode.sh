#!/bin/sh
# Query mode against real servers: Debian's Prometheus and VictoriaMetrics are loaded
# by remote write with the same generated data as a rollgate in remote-write mode,
# then
#   - `rollgate eval` gives exit 0 for a healthy service, 2 for one with 0.5% errors
#     (a gate fails) and 1 for one with 2% errors (a rollback trigger fires), against
#     each of Prometheus, VictoriaMetrics and rollgate's own query API;
#   - the same configuration gives the same verdicts and check states in query mode
#     as the rollgate daemon judging the same data in remote-write mode, and the same
#     values from Prometheus as from rollgate;
#   - `rollgate replay` finds a breach injected at a known time at the right step,
#     on every server, and replays the alerting rule of the configuration;
#   - `rollgate check --source` reports signals without data.
. tests/integration/lib.inc

command -v prometheus >/dev/null || fail "prometheus is not installed (make deps)"
command -v victoria-metrics >/dev/null || fail "victoria-metrics is not installed (make deps)"

cat >"$TMP/rollgate.yml" <<'YML'
global:
  evaluation_interval: 1s
phases:
  - name: canary
    min_observation: 2s
    max_observation: 10m
    min_requests: 10
    gates:
      - {signal: error_ratio, op: "<", threshold: 0.1%}
      - {signal: p99_latency, op: "<", threshold: 0.1}
triggers:
  - {name: error_rate_rollback, signal: error_ratio_instant, op: ">", threshold: 1%}
  - {name: p99_latency_rollback, signal: p99_latency_instant, op: ">", threshold: 0.5}
discovery:
  interval: 1s
rule_files:
  - alerts.yml
YML
cat >"$TMP/alerts.yml" <<'YML'
groups:
  - name: errors
    interval: 15s
    rules:
      - alert: ErrorRatioHigh
        expr: >-
          sum by (job) (rate(http_requests_total{code=~"5.."}[1m]))
            / sum by (job) (rate(http_requests_total[1m])) > 0.01
        for: 30s
        labels:
          severity: warning
YML

# --- the three receivers ------------------------------------------------------------
start_rollgate --config "$TMP/rollgate.yml" --log-level warn
PROM_PORT=$(free_port)
PROM="http://127.0.0.1:$PROM_PORT"
printf 'global:\n  scrape_interval: 1h\n' >"$TMP/prometheus.yml"
prometheus --config.file="$TMP/prometheus.yml" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --storage.tsdb.path="$TMP/prom-data" --web.enable-remote-write-receiver \
    >"$TMP/prometheus.log" 2>&1 &
PIDS="$PIDS $!"
VM_PORT=$(free_port)
VM="http://127.0.0.1:$VM_PORT"
victoria-metrics -httpListenAddr="127.0.0.1:$VM_PORT" -storageDataPath="$TMP/vm-data" \
    -retentionPeriod=1 -search.latencyOffset=1s -search.disableCache \
    >"$TMP/victoria-metrics.log" 2>&1 &
PIDS="$PIDS $!"
wait_http "$PROM/-/ready" 30 || fail "prometheus did not become ready"
wait_http "$VM/health" 30 || fail "victoria-metrics did not become ready"
ok "rollgate, prometheus and victoria-metrics started"

# --- data ----------------------------------------------------------------------------
# Ten minutes every 5 s for three services, ending 5 s ago; evaluations at the end.
# Samples are moved off whole seconds (--jitter-ms) so that no range selector of an
# evaluation at a whole second starts exactly on one: Prometheus 2.42 includes such a
# sample, later versions and rollgate do not.
now_s=$(date +%s)
end_s=$(( now_s - 5 ))
start_s=$(( end_s - 600 ))
for spec in "healthy 0 1" "failing 0.005 2" "breaching 0.02 3"; do
    set -- $spec
    "$BUILD/tools/rwgen" --url "$PROM/api/v1/write" --url "$VM/api/v1/write" \
        --url "$RG_URL/api/v1/write" --scenario service --job "$1" --error-ratio "$2" \
        --seed "$3" --jitter-ms 999 --start-ms $(( start_s * 1000 )) --end-ms $(( end_s * 1000 )) \
        --step-ms 5000 >>"$TMP/rwgen.log" 2>&1 || fail "rwgen $1: $(tail -3 "$TMP/rwgen.log")"
done
# The replayed service: continuous counters, healthy until T_b, 2% errors from T_b on.
# Its evaluations (every 15 s) fall on multiples of 15 s from R0.
R0=$(( (start_s / 15 + 1) * 15 ))
TB=$(( R0 + 300 ))
python3 tests/integration/svcgen.py replayed $(( R0 * 1000 )) $(( end_s * 1000 )) 5000 \
    0 "$(( TB * 1000 )):0.02" >"$TMP/replayed.body" || fail "svcgen"
for url in "$PROM" "$VM" "$RG_URL"; do
    code=$(curl -s -o "$TMP/resp" -w '%{http_code}' -X POST --data-binary "@$TMP/replayed.body" \
        -H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: snappy' \
        -H 'X-Prometheus-Remote-Write-Version: 0.1.0' "$url/api/v1/write")
    case $code in 2*) ;; *) fail "write to $url: $code $(cat "$TMP/resp")" ;; esac
done
curl -s "$VM/internal/force_flush" >/dev/null
i=0
until curl -s "$VM/api/v1/query" --data-urlencode 'query=count(up)' \
        --data-urlencode "time=$end_s" | grep -q '"6"'; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "victoria-metrics does not show the data"; sleep 0.2
done
ok "the same data written to all three"

# --- eval: exit codes ----------------------------------------------------------------
EV="$ROLLGATE eval --config $TMP/rollgate.yml --time $end_s"
name_of() {   # name_of URL -> the server's name, for messages
    case $1 in "$PROM") echo prometheus ;; "$VM") echo victoria-metrics ;; *) echo rollgate ;; esac
}
for src in "$PROM" "$VM" "$RG_URL"; do
    for want in "healthy 0" "failing 2" "breaching 1"; do
        set -- $want
        $EV --source "$src" --deployment "$1" >"$TMP/eval.out" 2>&1
        rc=$?
        [ $rc = "$2" ] || fail "eval $1 against $src: exit $rc, want $2: $(cat "$TMP/eval.out")"
    done
    ok "eval against $(name_of "$src"): healthy 0, failing 2, breaching 1"
done
grep -q "verdict: rollback - trigger error_rate_rollback fires" "$TMP/eval.out" ||
    fail "table: $(cat "$TMP/eval.out")"
$EV --source http://127.0.0.1:1 --deployment healthy >"$TMP/eval.out" 2>&1
[ $? = 3 ] || fail "unreachable source: $(cat "$TMP/eval.out")"
$EV --source "$PROM" --deployment healthy --phase nope >"$TMP/eval.out" 2>&1
[ $? = 3 ] || fail "unknown phase: $(cat "$TMP/eval.out")"
ok "unreachable source and unknown phase: exit 3"

# --- query mode versus remote-write mode ---------------------------------------------
for src in prom:"$PROM" vm:"$VM" rg:"$RG_URL"; do
    for job in healthy failing breaching; do
        $EV --source "${src#*:}" --deployment $job --output json >"$TMP/${src%%:*}.$job.json"
    done
done
# The daemon judges the same data at the current time: wait until it has watched the
# minimum observation, then compare.
i=0
until curl -s "$RG_URL/api/v1/deployments/healthy" | grep -q '"verdict":"promote"'; do
    i=$((i + 1)); [ $i -lt 60 ] || fail "daemon: $(curl -s "$RG_URL/api/v1/deployments/healthy")"
    sleep 0.25
done
for job in healthy failing breaching; do
    curl -s "$RG_URL/api/v1/deployments/$job" >"$TMP/daemon.$job.json"
done
python3 - "$TMP" <<'PY' || fail "query mode and remote-write mode disagree"
import json, sys
tmp = sys.argv[1]
def load(p):
    with open(p) as f:
        return json.load(f)
for job in ("healthy", "failing", "breaching"):
    daemon = load(f"{tmp}/daemon.{job}.json")["data"]
    dstate = {c["name"]: c["state"] for c in daemon["checks"]}
    evals = {s: load(f"{tmp}/{s}.{job}.json")["deployments"][0] for s in ("prom", "vm", "rg")}
    for s, e in evals.items():
        assert e["verdict"] == daemon["verdict"], (job, s, e["verdict"], daemon["verdict"])
        estate = {c["name"]: c["state"] for c in e["checks"]}
        assert estate == dstate, (job, s, estate, dstate)
    # Prometheus and rollgate compute the same PromQL: the same values.
    p = {c["name"]: c["value"] for c in evals["prom"]["checks"]}
    r = {c["name"]: c["value"] for c in evals["rg"]["checks"]}
    for k in p:
        assert (p[k] is None) == (r[k] is None), (job, k, p[k], r[k])
        if p[k] is not None:
            assert abs(p[k] - r[k]) <= 1e-9 * max(1, abs(p[k])), (job, k, p[k], r[k])
    print(job, daemon["verdict"], dstate)
PY
ok "query mode (prometheus, victoria-metrics, rollgate) gives the daemon's verdicts and states"

# --- replay --------------------------------------------------------------------------
# irate sees the breach once a sample after T_b exists: the first evaluation at or
# after T_b + 5 s, i.e. T_b + 15 s on the 15 s grid.
want=$(( TB + 15 ))
for src in "$PROM" "$VM" "$RG_URL"; do
    $ROLLGATE replay --config "$TMP/rollgate.yml" --source "$src" --deployment replayed \
        --from $R0 --to $end_s --step 15s --output json >"$TMP/replay.json" 2>"$TMP/replay.err"
    rc=$?
    [ $rc = 1 ] || fail "replay against $src: exit $rc: $(cat "$TMP/replay.err")"
    # The here-document starts on the next line, so the failure is handled below it.
    if ! python3 - "$TMP/replay.json" $want $TB <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
want, tb = int(sys.argv[2]), int(sys.argv[3])
fr = r["first_rollback"]
assert fr and fr["deployment"] == "replayed", fr
assert int(fr["time"]) == want, (fr["time"], want)
assert "error_rate_rollback" in fr["reason"], fr
assert r["query_errors"] == 0, r["query_errors"]
# The alerting rule: pending once the 1m rate shows the errors, firing 30 s later.
ev = [e for e in r["events"] if e["kind"] == "alert" and 'job="replayed"' in e["subject"]]
pend = [e["time"] for e in ev if e["to"] == "pending"]
fire = [e["time"] for e in ev if e["to"] == "firing"]
assert pend and fire, ev
assert tb < pend[0] <= tb + 60 and fire[0] - pend[0] == 30, (pend, fire)
PY
    then
        fail "replay against $src: $(head -c 2000 "$TMP/replay.json")"
    fi
    ok "replay against $(name_of "$src"): rollback at T_b+15s, alert pending then firing 30s later"
done
$ROLLGATE replay --config "$TMP/rollgate.yml" --source "$PROM" --deployment healthy \
    --from $R0 --to $end_s >"$TMP/replay.txt" 2>&1
rc=$?
[ $rc = 0 ] && grep -q "healthy: no rollback; final verdict promote" "$TMP/replay.txt" ||
    fail "replay of the healthy service: exit $rc: $(tail -5 "$TMP/replay.txt")"
ok "replay of the healthy service: no rollback"

# --- check --source ------------------------------------------------------------------
# check runs the signals now, minutes after the data: signals read the last samples.
cat >"$TMP/check.yml" <<'YML'
phases:
  - name: canary
    min_observation: 10m
    gates:
      - {signal: present, op: ">", threshold: 0}
      - {signal: missing, op: "<", threshold: 1}
signals:
  present: {expr: 'sum(http_requests_total{<selector>})'}
  missing: {expr: 'sum(no_such_metric{<selector>})'}
deployments:
  - {name: healthy, selector: 'job="healthy"'}
YML
$ROLLGATE check --source "$PROM" "$TMP/check.yml" >"$TMP/check.out" 2>&1
rc=$?
[ $rc = 1 ] && grep -q "signal missing: no data" "$TMP/check.out" &&
    grep -q "signal present: ok" "$TMP/check.out" ||
    fail "check --source: exit $rc: $(cat "$TMP/check.out")"
ok "check --source reports the signal without data"
echo "$CHECKS checks passed"
