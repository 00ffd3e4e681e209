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
BUILD=${BUILD:-build}
ALL_SECTIONS="micro ingest"
SECTIONS=$ALL_SECTIONS
RW_LOAD_DEFAULT="--series 100000 --labels 10 --per-request 2000 --rounds 20 --connections 4"
RW_LOAD_ARGS=${RW_LOAD_ARGS:-$RW_LOAD_DEFAULT}

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

# start_rollgate - starts the daemon on a free loopback port; sets RG_PORT, RG_URL,
# RG_PID. Returns 1 when it does not become ready within 30 s.
start_rollgate() {
    RG_PORT=$(free_port) || return 1
    RG_URL="http://127.0.0.1:$RG_PORT"
    rm -rf "$TMP/data"
    "$BUILD/rollgate" run --listen "127.0.0.1:$RG_PORT" --data-dir "$TMP/data" \
        --log-level warn >"$TMP/rollgate.log" 2>&1 &
    RG_PID=$!
    PIDS="$PIDS $RG_PID"
    if ! wait_http "$RG_URL/-/ready" 30; then
        say "rollgate did not become ready on $RG_URL; its log:"
        tail -20 "$TMP/rollgate.log"
        return 1
    fi
}

# stop_rollgate - SIGTERM, then up to 15 s for a clean exit; 1 when it had to be killed
# or exited non-zero.
stop_rollgate() {
    kill -TERM "$RG_PID" 2>/dev/null
    i=0
    while kill -0 "$RG_PID" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$RG_PID" 2>/dev/null; then
        say "rollgate did not stop within 15 s of SIGTERM; killing it"
        kill -9 "$RG_PID" 2>/dev/null
        wait "$RG_PID" 2>/dev/null
        return 1
    fi
    wait "$RG_PID"
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
