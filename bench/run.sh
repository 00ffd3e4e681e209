#!/bin/sh
# bench/run.sh - runs rollgate's benchmarks and prints their figures.
#
#   BUILD=build sh bench/run.sh [SECTION...]      (make bench runs it with no SECTION)
#
# The run is a list of sections, each a shell function bench_<name> run in the order
# of SECTIONS below; to add a benchmark (PromQL, detection latency, ...) write one more
# function and append its name to SECTIONS. Naming sections on the command line runs
# only those. Every step is bounded by `timeout`, every server listens on 127.0.0.1 on
# a free port, and every process started here is stopped on exit. The exit status is 1
# when any section failed; the others still run.
#
# Environment:
#   BUILD          build directory holding rollgate and bench/<name> (default build)
#   RW_LOAD_ARGS   workload options for bench/rw_load (default: the issue's workload,
#                  100k series x 10 labels, 2,000 samples per request, 20 rounds,
#                  4 keep-alive connections)
#   PROMQL_RUNS    timed runs per query and server in section promql (default 20)
#   PROMQL_WARMUP  untimed runs before them (default 3)
#   PROMETHEUS     the Prometheus binary for section promql (default prometheus)
#   DETECT_TRIALS  trials per evaluation interval in section detect (default 20)
#   DETECT_BACKGROUND  more deployments judged alongside the trials in section detect,
#                  as an evaluation load (default 0)
#   EVAL_ARGS      arguments of bench/bench_eval in section eval: jobs, cycles, query
#                  runs (default "1000 20 20")
#   QM_JOBS        deployments (services) in section querymode (default 100)
#   QM_RUNS        timed `rollgate eval` cycles in section querymode (default 10)
#   QM_DAEMON_SECONDS  measuring window of the daemon in section querymode (default 10)
#   BACKLOG_EVENTS events queued during the outage in section backlog (default 10000)
#   BACKLOG_TRIALS trials of section backlog, with seeds 1..N (default 3)
#   BACKLOG_ARGS   more options of bench/notify_backlog in section backlog (--in-flight N,
#                  --batch N, --outage-ms MS, ...)
BUILD=${BUILD:-build}
ALL_SECTIONS="micro ingest promql detect webhook eval querymode backlog"
SECTIONS=$ALL_SECTIONS
RW_LOAD_DEFAULT="--series 100000 --labels 10 --per-request 2000 --rounds 20 --connections 4"
RW_LOAD_ARGS=${RW_LOAD_ARGS:-$RW_LOAD_DEFAULT}
PROMETHEUS=${PROMETHEUS:-prometheus}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rollgate-bench.XXXXXX") || exit 1
PIDS=""

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() {
    echo "bench: $*"
}

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# wait_http URL SECONDS - until URL answers 200; 1 on timeout.
wait_http() {
    i=0
    while [ $i -lt $(($2 * 10)) ]; do
        [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# start_rollgate [ARGS...] - starts the daemon (with ARGS, e.g. --config FILE) on a free
# loopback port; sets RG_PORT, RG_URL, RG_PID. Returns 1 when it does not become ready
# within 30 s.
start_rollgate() {
    RG_PORT=$(free_port) || return 1
    RG_URL="http://127.0.0.1:$RG_PORT"
    rm -rf "$TMP/data"
    "$BUILD/rollgate" run "$@" --listen "127.0.0.1:$RG_PORT" --data-dir "$TMP/data" \
        --log-level warn >"$TMP/rollgate.log" 2>&1 &
    RG_PID=$!
    PIDS="$PIDS $RG_PID"
    if ! wait_http "$RG_URL/-/ready" 30; then
        say "rollgate did not become ready on $RG_URL; its log:"
        tail -20 "$TMP/rollgate.log"
        return 1
    fi
}

# stop_pid PID NAME - SIGTERM, then up to 15 s for a clean exit; 1 when it had to be
# killed (STOP_KILLED=1), else the process's exit status (STOP_KILLED=0).
stop_pid() {
    STOP_KILLED=0
    kill -TERM "$1" 2>/dev/null
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$1" 2>/dev/null; then
        say "$2 did not stop within 15 s of SIGTERM; killing it"
        STOP_KILLED=1
        kill -9 "$1" 2>/dev/null
        wait "$1" 2>/dev/null
        return 1
    fi
    wait "$1" 2>/dev/null
}

# stop_rollgate - stop_pid for rollgate; 1 when it had to be killed or exited non-zero.
stop_rollgate() {
    stop_pid "$RG_PID" rollgate
    rc=$?
    [ "$rc" = 0 ] || { say "rollgate exited with status $rc"; tail -20 "$TMP/rollgate.log"; }
    return "$rc"
}

# ---- Sections -----------------------------------------------------------------------

# Micro-benchmarks: every bench/bench_<name>.c binary that was built (decoder, store,
# ...), each within 5 minutes.
bench_micro() {
    found=0
    status=0
    for b in "$BUILD"/bench/bench_*; do
        [ -f "$b" ] && [ -x "$b" ] || continue
        case "$b" in *.o|*.d) continue ;; esac
        # bench_eval has a section of its own (eval).
        case "$b" in */bench_eval) continue ;; esac
        found=1
        say "running $(basename "$b")"
        timeout -k 5 300 "$b" || { say "$(basename "$b") failed (status $?)"; status=1; }
    done
    [ $found = 1 ] || say "no micro-benchmarks built in $BUILD/bench"
    return $status
}

# Ingest: rw_load against a fresh daemon (samples/s, server CPU, RSS per series).
bench_ingest() {
    [ -x "$BUILD/rollgate" ] || { say "$BUILD/rollgate is missing"; return 1; }
    [ -x "$BUILD/bench/rw_load" ] || { say "$BUILD/bench/rw_load is missing"; return 1; }
    start_rollgate || return 1
    say "rollgate pid $RG_PID on $RG_URL"
    # shellcheck disable=SC2086
    timeout -k 5 900 "$BUILD/bench/rw_load" --url "$RG_URL/api/v1/write" --pid "$RG_PID" \
        $RW_LOAD_ARGS
    rc=$?
    [ $rc = 0 ] || say "rw_load failed (status $rc)"
    stop_rollgate || rc=1
    return $rc
}

# Prometheus for section promql: a remote-write receiver on a free loopback port with
# temporary storage and no scrape targets; sets PROM_URL, PROM_PID.
start_prometheus() {
    PROM_PORT=$(free_port) || return 1
    PROM_URL="http://127.0.0.1:$PROM_PORT"
    printf 'global:\n  scrape_interval: 1h\nscrape_configs: []\n' >"$TMP/prometheus.yml"
    "$PROMETHEUS" --config.file="$TMP/prometheus.yml" \
        --web.listen-address="127.0.0.1:$PROM_PORT" --storage.tsdb.path="$TMP/prom-data.$PROM_PORT" \
        --web.enable-remote-write-receiver --query.max-samples=500000000 \
        --query.timeout=2m --log.level=warn >"$TMP/prometheus.log" 2>&1 &
    PROM_PID=$!
    PIDS="$PIDS $PROM_PID"
    if ! wait_http "$PROM_URL/-/ready" 30; then
        say "prometheus did not become ready on $PROM_URL; its log:"
        tail -20 "$TMP/prometheus.log"
        return 1
    fi
}

# stop_prometheus - stop_pid for Prometheus; its exit status does not matter.
stop_prometheus() {
    stop_pid "$PROM_PID" prometheus
    [ "$STOP_KILLED" = 0 ]
}

# metric_value URL NAME - the value of the unlabelled sample NAME on URL/metrics (empty
# when absent).
metric_value() {
    curl -s -m 5 "$1/metrics" | awk -v m="$2" '$1 == m { v = $2 } END { print v }'
}

# PromQL: the same data (rwgen scenario bench: 100k request counters, 1,000 classic
# histograms of 12 buckets, 30 minutes every 15 s) in rollgate and in Prometheus, then
# the issue's two queries timed through both /api/v1/query, alternating, in the same
# run. Goal: rollgate's median at most 1/5 of Prometheus' for both, with answers equal
# within 1e-9 (relative), so that both servers did the same work.
bench_promql() {
    for f in "$BUILD/rollgate" "$BUILD/bench/promql_query"; do
        [ -x "$f" ] || { say "$f is missing"; return 1; }
    done
    if [ ! -x "$BUILD/tools/rwgen" ]; then
        say "building $BUILD/tools/rwgen"
        make -s BUILD="$BUILD" "$BUILD/tools/rwgen" >"$TMP/make.log" 2>&1 ||
            { say "cannot build $BUILD/tools/rwgen:"; tail -20 "$TMP/make.log"; return 1; }
    fi
    command -v "$PROMETHEUS" >/dev/null 2>&1 ||
        { say "$PROMETHEUS is not installed (make deps)"; return 1; }
    start_rollgate || return 1
    if ! start_prometheus; then
        stop_rollgate
        return 1
    fi
    # stop_rollgate sets rc, hence a name of our own.
    prc=0
    promql_measure || prc=1
    stop_rollgate || prc=1
    stop_prometheus || prc=1
    return $prc
}

# The body of section promql, with both servers running.
promql_measure() {
    say "rollgate $RG_URL (pid $RG_PID), prometheus $PROM_URL (pid $PROM_PID)"
    # Data up to 10 s ago on whole seconds; queries at 3 s ago, so the newest samples
    # (jittered up to 1 s after their step) are inside every window, and no window
    # bound falls on a sample (rwgen keeps samples off whole seconds), where
    # Prometheus 2.x's closed ranges and rollgate's left-open ones would differ.
    end_s=$(( $(date +%s) - 10 ))
    at=$((end_s + 7))
    t0=$(date +%s)
    if ! timeout -k 5 120 "$BUILD/tools/rwgen" --scenario bench --seed 1 \
            --start-ms $(( (end_s - 1800) * 1000 )) --end-ms $((end_s * 1000)) \
            --step-ms 15000 --url "$RG_URL/api/v1/write" --url "$PROM_URL/api/v1/write" \
            >"$TMP/rwgen.log" 2>&1; then
        say "rwgen failed:"
        tail -5 "$TMP/rwgen.log"
        return 1
    fi
    series=$(sed -n 's/.* series=\([0-9]*\) .*/\1/p' "$TMP/rwgen.log")
    say "loaded in $(( $(date +%s) - t0 )) s: $(sed -n 's/^rwgen: //p' "$TMP/rwgen.log")"
    i=0
    while :; do
        rg=$(metric_value "$RG_URL" rollgate_series_active)
        pr=$(metric_value "$PROM_URL" prometheus_tsdb_head_series)
        # rollgate also holds the series it exports about the deployments it
        # discovered in the data (rollgate_deployment_verdict, rollgate_check_*).
        [ "${rg:-0}" -ge "$series" ] && [ "$pr" = "$series" ] && break
        if [ $i -ge 300 ]; then
            say "series: expected $series, rollgate has ${rg:-?}, prometheus ${pr:-?}"
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    say "both hold $series series"

    verdict=PASS
    for q in 'histogram_quantile(0.99, sum by (le) (rate(req_duration_seconds_bucket[5m])))' \
             'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))'
    do
        say "query: $q (time $at)"
        timeout -k 5 150 "$BUILD/bench/promql_query" --url "$RG_URL" --url "$PROM_URL" \
            --query "$q" --time "$at" --warmup "${PROMQL_WARMUP:-3}" \
            --runs "${PROMQL_RUNS:-20}" >"$TMP/query.log" 2>&1
        qrc=$?
        sed 's/^promql_query: /    /' "$TMP/query.log"
        rg_med=$(awk -v u="url=$RG_URL" '$2 == u { sub("median_ms=", "", $5); print $5 }' \
            "$TMP/query.log")
        pr_med=$(awk -v u="url=$PROM_URL" '$2 == u { sub("median_ms=", "", $5); print $5 }' \
            "$TMP/query.log")
        if [ $qrc != 0 ] || [ -z "$rg_med" ] || [ -z "$pr_med" ]; then
            say "promql_query failed (status $qrc) or the answers differ"
            verdict=FAIL
            continue
        fi
        line=$(awk -v r="$rg_med" -v p="$pr_med" 'BEGIN {
            printf "median rollgate %.3f ms, prometheus %.3f ms, ratio %.4f (goal <= 0.2): %s",
                r, p, r / p, (r <= p / 5 ? "ok" : "missed") }')
        say "$line"
        case "$line" in *missed) verdict=FAIL ;; esac
    done
    say "promql: $verdict (rollgate <= 1/5 of Prometheus' median for both queries," \
        "answers equal within 1e-9)"
    [ $verdict = PASS ]
}

# Detection latency: from the POST of the first breaching sample (2% errors, so the
# bundled trigger error_ratio_instant > 1% trips) to `rollback` in GET
# /api/v1/deployments/<name>, DETECT_TRIALS trials on fresh discovered deployments, with
# the bundled production checklist at evaluation intervals of 1 s (the default) and
# 100 ms. Goals: p99 <= 1.2 s and <= 150 ms. The checklist is copied next to the
# temporary configurations, since include paths are relative to the including file.
# DETECT_BACKGROUND=1000 measures the same with 1,000 more deployments being judged.
bench_detect() {
    for f in "$BUILD/rollgate" "$BUILD/bench/detect_latency"; do
        [ -x "$f" ] || { say "$f is missing"; return 1; }
    done
    cp "$(dirname "$0")/../rules/production-checklist.yaml" "$TMP/" ||
        { say "cannot copy rules/production-checklist.yaml"; return 1; }
    drc=0
    summary=""
    # A background load makes the trials slower (history, discovery, slow ticks).
    tmo=60
    [ "${DETECT_BACKGROUND:-0}" = 0 ] || tmo=180
    for run in "1000 1s 1200" "100 100ms 150"; do
        # shellcheck disable=SC2086
        set -- $run
        printf 'global:\n  evaluation_interval: %s\ninclude:\n  - production-checklist.yaml\n%s\n' \
            "$2" 'discovery: {interval: 100ms}' >"$TMP/detect.yml"
        start_rollgate --config "$TMP/detect.yml" || return 1
        say "evaluation_interval $2: rollgate pid $RG_PID on $RG_URL"
        timeout -k 5 "$tmo" "$BUILD/bench/detect_latency" --url "$RG_URL" --interval-ms "$1" \
            --goal-ms "$3" --trials "${DETECT_TRIALS:-20}" \
            --background "${DETECT_BACKGROUND:-0}" >"$TMP/detect.log" 2>&1
        lrc=$?
        sed 's/^detect_latency: /    /' "$TMP/detect.log"
        line=$(sed -n 's/^detect_latency: summary //p' "$TMP/detect.log")
        if [ -z "$line" ]; then
            say "detect_latency failed (status $lrc)"
            line="interval_ms=$1 result=FAIL (no figures)"
            drc=1
        elif [ $lrc != 0 ]; then
            drc=1
        fi
        summary="$summary
    $line"
        stop_rollgate || drc=1
    done
    say "detect: breaching sample POST to rollback in the API:$summary"
    say "detect: goals p99 <= 1200 ms at 1 s and <= 150 ms at 100 ms:" \
        "$([ $drc = 0 ] && echo PASS || echo FAIL)"
    return $drc
}

# End-to-end notification latency: as section detect at the default 1 s interval,
# with a webhook notifier for rollback events pointed at a receiver inside
# detect_latency; from the POST of the first breaching sample to the webhook request
# received. Goal: p99 <= 1.5 s.
bench_webhook() {
    for f in "$BUILD/rollgate" "$BUILD/bench/detect_latency"; do
        [ -x "$f" ] || { say "$f is missing"; return 1; }
    done
    cp "$(dirname "$0")/../rules/production-checklist.yaml" "$TMP/" ||
        { say "cannot copy rules/production-checklist.yaml"; return 1; }
    hook_port=$(free_port) || return 1
    cat >"$TMP/webhook.yml" <<YML
global:
  evaluation_interval: 1s
include:
  - production-checklist.yaml
discovery: {interval: 100ms}
notifiers:
  - name: bench-hook
    type: webhook
    url: http://127.0.0.1:$hook_port/hook
    events: {alerts: false, deployments: true, kinds: [rollback]}
YML
    start_rollgate --config "$TMP/webhook.yml" || return 1
    say "rollgate pid $RG_PID on $RG_URL, webhook receiver on 127.0.0.1:$hook_port"
    timeout -k 5 80 "$BUILD/bench/detect_latency" --url "$RG_URL" --interval-ms 1000 \
        --goal-ms 1200 --webhook-port "$hook_port" --webhook-goal-ms 1500 \
        --trials "${DETECT_TRIALS:-20}" --timeout-ms 3000 >"$TMP/webhook.log" 2>&1
    wrc=$?
    sed 's/^detect_latency: /    /' "$TMP/webhook.log"
    line=$(sed -n 's/^detect_latency: webhook_summary //p' "$TMP/webhook.log")
    [ -n "$line" ] || { say "detect_latency failed (status $wrc)"; wrc=1; }
    stop_rollgate || wrc=1
    say "webhook: breaching sample POST to the webhook request received: ${line:-no figures}"
    return $wrc
}

# Evaluation cost (issue 4): bench_eval builds a 1,000-job fleet in process (124,000
# series, 20 samples each), times the PromQL benchmark's two instant queries cold and
# warm, then the deployments manager on the bundled configuration (every job a
# discovered deployment in its canary phase), one rg_deploy_tick per cycle, warm and
# cold (as after a collection removed series), in wall-clock and CPU time. Goal: <= 50
# ms of evaluation cost per cycle (median CPU time, which other work on the machine
# does not inflate). Run from the repository root, where rules/rollgate.yml is.
bench_eval() {
    [ -x "$BUILD/bench/bench_eval" ] || { say "$BUILD/bench/bench_eval is missing"; return 1; }
    eval_bin=$(cd "$BUILD/bench" && pwd)/bench_eval
    # shellcheck disable=SC2086
    (cd "$(dirname "$0")/.." && timeout -k 5 300 "$eval_bin" ${EVAL_ARGS:-1000 20 20}) \
        >"$TMP/eval.log" 2>&1
    erc=$?
    sed 's/^bench_eval: /    /' "$TMP/eval.log"
    line=$(sed -n 's/^bench_eval: \(PASS\|FAIL\) /\1 /p' "$TMP/eval.log")
    [ -n "$line" ] || { say "bench_eval failed (status $erc)"; return 1; }
    say "eval: $line"
    return $erc
}

# Query mode (issue 6): the bundled checklist judged for QM_JOBS (100) healthy services
# by asking Debian's real Prometheus. Prometheus gets ten minutes of every service
# (rwgen scenario service --jobs, every 5 s, up to a second ago) by remote write; then
#   - `rollgate eval --config rules/rollgate.yml --source PROM --output json`, which
#     discovers every job on the source, is one evaluation cycle: run_cycles times
#     QM_RUNS of them after one warm-up, wall time and the eval process's own CPU
#     (user + system from wait4), at a fixed --time so every cycle asks the same;
#     Prometheus' CPU per cycle (from /proc, over these runs and the warm-up) is shown
#     beside it. Every service must get a verdict, and the verdict must be promote (the
#     data is healthy, so anything else means the cycle did not do the full work);
#   - the daemon with the same checklist and one deployment per service with
#     `source: prom`, evaluated every second through the asynchronous client: its CPU
#     (from /proc) over QM_DAEMON_SECONDS after two warm-up cycles, per cycle, where
#     cycles are counted by rollgate_queries_total over the queries of one eval cycle;
#     then its wall time per cycle (querymode_cycle_wall); no query may fail;
#   - bench_query_json --check: parse throughput on a 50 MB vector answer, goal
#     >= 200 MB/s.
# The wall time and CPU per cycle have no goal in the issue; they are reported.
bench_querymode() {
    for t in tools/rwgen bench/run_cycles bench/bench_query_json; do
        [ -x "$BUILD/$t" ] && continue
        say "building $BUILD/$t"
        make -s BUILD="$BUILD" "$BUILD/$t" >"$TMP/make.log" 2>&1 ||
            { say "cannot build $BUILD/$t:"; tail -20 "$TMP/make.log"; return 1; }
    done
    [ -x "$BUILD/rollgate" ] || { say "$BUILD/rollgate is missing"; return 1; }
    command -v "$PROMETHEUS" >/dev/null 2>&1 ||
        { say "$PROMETHEUS is not installed (make deps)"; return 1; }
    start_prometheus || return 1
    qrc=0
    querymode_measure || qrc=1
    stop_prometheus || qrc=1
    return $qrc
}

# proc_cpu_ticks PID - utime + stime of PID in clock ticks (empty when it is gone).
proc_cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null
}

# prom_counter URL NAME - the sum of the samples of NAME on URL/metrics (0 when absent).
prom_counter() {
    curl -s -m 5 "$1/metrics" |
        awk -v m="$2" 'index($1, m "{") == 1 || $1 == m { s += $2 } END { printf "%.6f\n", s }'
}

# The body of section querymode, with Prometheus running.
querymode_measure() {
    jobs=${QM_JOBS:-100}
    runs=${QM_RUNS:-10}
    window=${QM_DAEMON_SECONDS:-10}
    hz=$(getconf CLK_TCK) || hz=100
    say "prometheus $PROM_URL (pid $PROM_PID)"
    # Whole seconds for the data, a jittered sample time inside each step so that no
    # window bound falls on a sample; the eval cycles run at the end of the data.
    end_s=$(( $(date +%s) - 1 ))
    t0=$(date +%s)
    if ! timeout -k 5 60 "$BUILD/tools/rwgen" --scenario service --job svc --jobs "$jobs" \
            --seed 1 --jitter-ms 999 --start-ms $(( (end_s - 600) * 1000 )) \
            --end-ms $((end_s * 1000)) --step-ms 5000 --chunk 100000 \
            --url "$PROM_URL/api/v1/write" >"$TMP/rwgen.log" 2>&1; then
        say "rwgen failed:"
        tail -5 "$TMP/rwgen.log"
        return 1
    fi
    say "loaded in $(( $(date +%s) - t0 )) s: $(sed -n 's/^rwgen: //p' "$TMP/rwgen.log")"

    mrc=0
    config=$(cd "$(dirname "$0")/.." && pwd)/rules/rollgate.yml
    p0=$(proc_cpu_ticks "$PROM_PID")
    timeout -k 5 120 "$BUILD/bench/run_cycles" --runs "$runs" --warmup 1 --max-status 2 \
        --out "$TMP/qm-eval.json" -- "$BUILD/rollgate" eval --config "$config" \
        --source "$PROM_URL" --time "$end_s" --output json >"$TMP/qm-cycles.log" 2>&1
    crc=$?
    p1=$(proc_cpu_ticks "$PROM_PID")
    sed 's/^run_cycles: /    /' "$TMP/qm-cycles.log"
    sum=$(sed -n 's/^run_cycles: summary //p' "$TMP/qm-cycles.log")
    if [ $crc != 0 ] || [ -z "$sum" ]; then
        say "rollgate eval failed (run_cycles status $crc)"
        return 1
    fi
    # Deployments with a verdict, the verdicts, and the queries of one cycle.
    verdicts=$(python3 - "$TMP/qm-eval.json" <<'PY'
import collections, json, sys
deps = json.load(open(sys.argv[1]))["deployments"]
named = {d["deployment"] for d in deps if d.get("verdict")}
count = collections.Counter(d.get("verdict") for d in deps)
queries = sum(bool(d.get("requests_query")) + sum(bool(c.get("query")) for c in d["checks"])
              for d in deps)
print(len(named), queries, ",".join("%s=%d" % kv for kv in sorted(count.items())))
PY
) || { say "cannot read the eval output: $(head -c 300 "$TMP/qm-eval.json")"; return 1; }
    # shellcheck disable=SC2086
    set -- $verdicts
    judged=$1 qpc=$2 vlist=$3
    line=$(echo "$sum" | awk -v p="$((p1 - p0))" -v hz="$hz" -v n="$((runs + 1))" '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "wall per cycle median %.1f ms (min %.1f, max %.1f), rollgate CPU per " \
            "cycle median %.1f ms (min %.1f, max %.1f), prometheus CPU per cycle %.0f ms",
            f["wall_ms_median"], f["wall_ms_min"], f["wall_ms_max"], f["cpu_ms_median"],
            f["cpu_ms_min"], f["cpu_ms_max"], p * 1000 / hz / n }')
    say "eval of $judged deployments ($qpc queries per cycle): $line; verdicts $vlist"
    eval_line="eval: $line"
    if [ "$judged" != "$jobs" ] || [ "$vlist" != "promote=$jobs" ]; then
        say "want a verdict, promote, for each of the $jobs deployments"
        mrc=1
    fi

    querymode_daemon "$qpc" || mrc=1

    timeout -k 5 120 "$BUILD/bench/bench_query_json" --check >"$TMP/qm-json.log" 2>&1
    jrc=$?
    sed 's/^bench_query_json: /    /' "$TMP/qm-json.log"
    mbs=$(sed -n 's/^bench_query_json: vector .* median \([0-9.]*\) MB\/s.*/\1/p' \
        "$TMP/qm-json.log")
    if [ $jrc != 0 ] || [ -z "$mbs" ]; then
        say "bench_query_json: vector ${mbs:-?} MB/s, goal >= 200 (status $jrc)"
        mrc=1
    fi
    say "querymode: $([ $mrc = 0 ] && echo PASS || echo FAIL):"
    say "    $eval_line"
    say "    daemon: ${daemon_line:-no figures}"
    say "    JSON vector parse: median ${mbs:-?} MB/s (goal >= 200 MB/s)"
    return $mrc
}

# querymode_cycle_wall URL QPC - the daemon's wall time per cycle, "median N ms (M
# cycles)": its GET /metrics is polled for 4 s over one keep-alive connection, and a
# cycle lasts from the last poll that still shows the previous cycle's total of
# rollgate_queries_total (a multiple of QPC, the queries of one cycle) to the first
# that shows all of its QPC answers. This is after the CPU window, since the polling
# costs the daemon CPU. "not measured" when the cycles do not come apart (a cycle
# still running when the next one starts).
querymode_cycle_wall() {
    python3 - "$1" "$2" <<'PY'
import http.client, statistics, sys, time, urllib.parse
url = urllib.parse.urlparse(sys.argv[1])
qpc = int(sys.argv[2])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
points = []
end = time.monotonic() + 4
while time.monotonic() < end:
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    points.append((time.monotonic(), sum(float(l.split()[-1]) for l in body.splitlines()
                                         if l.startswith("rollgate_queries_total{"))))
    time.sleep(0.002)
walls = []
for i in range(1, len(points)):
    t_prev, q_prev = points[i - 1]
    if q_prev % qpc or points[i][1] == q_prev:
        continue
    # The cycle starting after q_prev: its end is the first poll at q_prev + qpc.
    for t, q in points[i:]:
        if q >= q_prev + qpc:
            if q == q_prev + qpc:
                walls.append((t - t_prev) * 1000)
            break
if walls:
    print("median %.0f ms (%d cycles)" % (statistics.median(walls), len(walls)))
else:
    print("not measured")
PY
}

# The daemon part of section querymode: QPC is the number of queries of one cycle.
# Sets daemon_line.
querymode_daemon() {
    qpc=$1
    daemon_line=""
    dir=$TMP/qm-daemon
    mkdir -p "$dir"
    cp "$(dirname "$0")/../rules/production-checklist.yaml" "$dir/" ||
        { say "cannot copy rules/production-checklist.yaml"; return 1; }
    {
        printf 'global:\n  evaluation_interval: 1s\ninclude:\n  - production-checklist.yaml\n'
        printf 'discovery:\n  enabled: false\n'
        printf 'sources:\n  - name: prom\n    url: %s\n    timeout: 10s\n' "$PROM_URL"
        printf 'deployments:\n'
        for n in $(seq -w 1 "$jobs"); do
            printf "  - {name: svc-%s, selector: 'job=\"svc-%s\"', source: prom}\n" "$n" "$n"
        done
    } >"$dir/rollgate.yml"
    start_rollgate --config "$dir/rollgate.yml" || return 1
    say "daemon: rollgate pid $RG_PID on $RG_URL, $jobs deployments with source: prom"
    drc=0
    # Two cycles' answers in before the window opens (at most 20 s).
    i=0
    while :; do
        q=$(prom_counter "$RG_URL" rollgate_queries_total)
        awk -v q="$q" -v w="$((2 * qpc))" 'BEGIN { exit !(q >= w) }' && break
        if [ $i -ge 200 ]; then
            say "daemon: only ${q:-?} queries after 20 s"
            stop_rollgate
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    q0=$(prom_counter "$RG_URL" rollgate_queries_total)
    e0=$(prom_counter "$RG_URL" rollgate_query_errors_total)
    s0=$(prom_counter "$RG_URL" rollgate_query_duration_seconds_sum)
    c0=$(proc_cpu_ticks "$RG_PID")
    p0=$(proc_cpu_ticks "$PROM_PID")
    w0=$(date +%s.%N)
    sleep "$window"
    q1=$(prom_counter "$RG_URL" rollgate_queries_total)
    e1=$(prom_counter "$RG_URL" rollgate_query_errors_total)
    s1=$(prom_counter "$RG_URL" rollgate_query_duration_seconds_sum)
    c1=$(proc_cpu_ticks "$RG_PID")
    p1=$(proc_cpu_ticks "$PROM_PID")
    w1=$(date +%s.%N)
    cycle_wall=$(querymode_cycle_wall "$RG_URL" "$qpc")
    vlist=$(curl -s -m 5 "$RG_URL/api/v1/deployments" | python3 -c '
import collections, json, sys
d = json.load(sys.stdin)["data"]
print(",".join("%s=%d" % kv for kv in sorted(collections.Counter(x["verdict"] for x in d).items())))
') || vlist="?"
    stop_rollgate || drc=1
    daemon_line=$(awk -v q="$((${q1%.*} - ${q0%.*}))" -v e="$((${e1%.*} - ${e0%.*}))" \
        -v s0="$s0" -v s1="$s1" -v c="$((c1 - c0))" -v p="$((p1 - p0))" -v hz="$hz" \
        -v w0="$w0" -v w1="$w1" -v qpc="$qpc" -v n="$jobs" -v cw="$cycle_wall" 'BEGIN {
        wall = w1 - w0; cycles = q / qpc
        if (cycles <= 0) { print "no cycle completed"; exit }
        printf "%d deployments every 1 s: %.1f cycles in %.1f s (%d queries, %d errors, " \
            "mean query latency %.1f ms), wall per cycle %s, rollgate CPU per cycle " \
            "%.1f ms (%.1f%% of a core), prometheus CPU per cycle %.0f ms",
            n, cycles, wall, q, e, (s1 - s0) * 1000 / (q ? q : 1), cw,
            c * 1000 / hz / cycles, c * 100 / hz / wall, p * 1000 / hz / cycles }')
    say "daemon: $daemon_line; verdicts $vlist"
    case $daemon_line in
        "no cycle"*) drc=1 ;;
        *", 0 errors,"*) ;;
        *) say "daemon: queries failed"; drc=1 ;;
    esac
    return $drc
}

# Notification throughput (issue 5): notify_backlog emits BACKLOG_EVENTS webhook events
# (rollgate deployment-event documents of about 1.2 KB, each with its own idempotency
# key) in batches into a fresh outbox while the receiver's port refuses connections,
# lets the dispatcher fail for 2 to 2.5 s, then starts a receiver in the same process on
# that port and times the last acknowledgement from the receiver's start. One libuv
# loop, the dispatcher's production retry settings. BACKLOG_TRIALS trials with seeds
# 1..N, so the receiver returns at different points of the dispatcher's probe cycle.
# Goal: every trial delivers every event within 10 s of the receiver's return.
bench_backlog() {
    [ -x "$BUILD/bench/notify_backlog" ] ||
        { say "$BUILD/bench/notify_backlog is missing"; return 1; }
    brc=0
    summary=""
    for seed in $(seq 1 "${BACKLOG_TRIALS:-3}"); do
        # shellcheck disable=SC2086
        timeout -k 5 300 "$BUILD/bench/notify_backlog" --events "${BACKLOG_EVENTS:-10000}" \
            --seed "$seed" $BACKLOG_ARGS >"$TMP/backlog.log" 2>&1
        lrc=$?
        sed 's/^notify_backlog: /    /' "$TMP/backlog.log"
        line=$(sed -n 's/^notify_backlog: summary //p' "$TMP/backlog.log")
        if [ -z "$line" ]; then
            say "notify_backlog failed (status $lrc)"
            line="result=FAIL (no figures)"
            brc=1
        elif [ $lrc != 0 ]; then
            brc=1
        fi
        summary="$summary
    seed=$seed $line"
    done
    say "backlog: events queued while the receiver was down, delivered after its return:" \
        "$summary"
    say "backlog: goal every event acknowledged <= 10 s after the receiver's return:" \
        "$([ $brc = 0 ] && echo PASS || echo FAIL)"
    return $brc
}

# ---- Driver -------------------------------------------------------------------------

[ $# -gt 0 ] && SECTIONS="$*"
failed=""
for s in $SECTIONS; do
    if ! command -v "bench_$s" >/dev/null 2>&1; then
        say "unknown section $s (known: $ALL_SECTIONS)"
        failed="$failed $s"
        continue
    fi
    say "== $s"
    start=$(date +%s)
    if "bench_$s"; then
        say "== $s: ok ($(( $(date +%s) - start )) s)"
    else
        say "== $s: FAILED ($(( $(date +%s) - start )) s)"
        failed="$failed $s"
    fi
done
[ -z "$failed" ] || { say "failed sections:$failed"; exit 1; }
say "all sections ok"
