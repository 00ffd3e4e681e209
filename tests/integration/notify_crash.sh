#!/bin/sh
# At-least-once delivery across a crash: with the webhook receiver down, deployment
# events are produced; rollgate is killed with SIGKILL, restarted, and only then the
# receiver comes up. Every event emitted before the kill arrives, signed, and any
# duplicate carries the same idempotency key.
. tests/integration/lib.inc

HOOK_PORT=$(free_port)
printf 'it-secret\n' >"$TMP/hook.secret"
cat >"$TMP/rollgate.yml" <<YML
global:
  evaluation_interval: 1s
notifiers:
  - name: hook
    type: webhook
    url: http://127.0.0.1:$HOOK_PORT/events
    signing_secret_file: hook.secret
    events: {alerts: false, deployments: true}
    retry: {min_backoff: 100ms, max_backoff: 500ms, max_age: 1h}
    timeout: 2s
phases:
  - {name: canary, min_observation: 1h}
  - {name: progressive, min_observation: 1h}
deployments:
  - {name: alpha, selector: 'job="alpha"'}
  - {name: beta, selector: 'job="beta"'}
YML
start_rollgate --config "$TMP/rollgate.yml"

# Each API call below emits at least one deployment event (phase started, human
# trigger, reset), all while nobody listens on the webhook port.
for d in alpha beta; do
    for body in '{"phase":"canary"}' '{"phase":"progressive"}'; do
        curl -s -o /dev/null -X POST -d "$body" "$RG_URL/api/v1/deployments/$d/phase"
    done
    curl -s -o /dev/null -X POST -d '{"reason":"security vulnerability found"}' "$RG_URL/api/v1/deployments/$d/trigger"
    curl -s -o /dev/null -X POST "$RG_URL/api/v1/deployments/$d/reset"
done
sleep 1
queued=$(metric 'rollgate_notification_queue_length{notifier="hook"}')
[ "${queued%.*}" -ge 8 ] || fail "expected at least 8 queued events, got $queued"
ok "$queued events queued while the receiver is down"

kill -9 "$RG_PID"
wait "$RG_PID" 2>/dev/null
ok "rollgate killed with SIGKILL"
"$ROLLGATE" run --config "$TMP/rollgate.yml" --listen "127.0.0.1:$RG_PORT" --data-dir "$TMP/data" \
    >>"$TMP/rollgate.log" 2>&1 &
RG_PID=$!; PIDS="$PIDS $RG_PID"
wait_http "$RG_URL/-/ready" 20 || fail "restart after SIGKILL"
ok "restarted"
sleep 3   # so that a signature made when the events were queued would be 3 s old

python3 tests/integration/receiver.py "$HOOK_PORT" "$TMP/received.jsonl" &
PIDS="$PIDS $!"
i=0
while :; do
    got=$(python3 -c '
import json, sys
keys = set()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["status"] == 200:
        keys.add(r["headers"].get("Idempotency-Key"))
print(len(keys))' "$TMP/received.jsonl" 2>/dev/null || echo 0)
    [ "$got" -ge "${queued%.*}" ] && break
    i=$((i + 1)); [ $i -lt 60 ] || fail "only $got of $queued events arrived"
    sleep 0.5
done
ok "all $queued events arrived after the restart ($got distinct keys)"

python3 - "$TMP/received.jsonl" "$TMP/hook.secret" <<'PY' || fail "bad signature or key"
import hashlib, hmac, json, sys
secret = open(sys.argv[2]).read().strip().encode()
bodies = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    h = r["headers"]
    sig = h["X-Rollgate-Signature"]
    parts = dict(p.split("=", 1) for p in sig.split(","))
    want = hmac.new(secret, (parts["t"] + "." + r["body"]).encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(want, parts["v1"]), sig
    # Signed when sent, not when queued before the crash.
    assert abs(r["arrived"] - int(parts["t"])) <= 2, (r["arrived"], parts["t"])
    key = h["Idempotency-Key"]
    doc = json.loads(r["body"])
    assert doc["dedup_key"] == key, (doc["dedup_key"], key)
    assert bodies.setdefault(key, r["body"]) == r["body"], "same key, different event"
PY
ok "every request signed at send time, keys stable, duplicates identical"
echo "$CHECKS checks passed"
