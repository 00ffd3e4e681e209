#!/bin/sh
# Bad input of every kind over real HTTP: each gets the status the remote-write
# specification asks for and a short reason, valid parts of a request are kept, and
# the daemon keeps serving afterwards.
. tests/integration/lib.inc

start_rollgate --log-level warn
B="python3 tests/integration/rwbody.py"

expect() {   # expect WANT GOT WHAT
    [ "$1" = "$2" ] || fail "$3: want $1, got $2 ($(head -c 300 "$TMP/resp" 2>/dev/null))"
    ok "$3 -> $1"
}
body_has() {
    grep -q "$1" "$TMP/resp" || fail "response body lacks '$1': $(head -c 300 "$TMP/resp")"
}

$B '{"series":[{"labels":[["__name__","it_up"],["job","a"]],"samples":[[1,"now-2000"]]}]}' >"$TMP/good"
expect 204 "$(post_write "$TMP/good")" "valid request"
[ ! -s "$TMP/resp" ] || fail "204 with a body"
expect 204 "$(post_write "$TMP/good")" "identical re-send (idempotent)"

code=$(curl -s -o "$TMP/resp" -w '%{http_code}' "$RG_URL/api/v1/write")
expect 405 "$code" "GET /api/v1/write"
expect 415 "$(post_write "$TMP/good" text/plain)" "Content-Type text/plain"
expect 415 "$(post_write "$TMP/good" 'application/x-protobuf;proto=io.prometheus.write.v2.Request')" \
    "remote-write 2.0 Content-Type"
expect 204 "$(post_write "$TMP/good" 'application/x-protobuf; proto=prometheus.WriteRequest')" \
    "proto=prometheus.WriteRequest"
expect 415 "$(post_write "$TMP/good" application/x-protobuf gzip)" "Content-Encoding gzip"

printf '\377\006\000\000sNaPpY\001\000\000\000' >"$TMP/framed"
expect 400 "$(post_write "$TMP/framed")" "framed snappy"
body_has "framed"
printf '\012\377\377\377\377\377\377' >"$TMP/corrupt"
expect 400 "$(post_write "$TMP/corrupt")" "corrupt snappy"
printf '\200\200\200\200\001\000' >"$TMP/huge"
expect 413 "$(post_write "$TMP/huge")" "declared length 256 MiB over the limit"
$B '{"raw":"0affff"}' >"$TMP/badproto"
expect 400 "$(post_write "$TMP/badproto")" "broken protobuf"
body_has "proto"
: >"$TMP/empty"
expect 400 "$(post_write "$TMP/empty")" "empty body"
head -c 40000000 /dev/zero >"$TMP/toolarge"
expect 413 "$(post_write "$TMP/toolarge")" "body over 32 MiB"

# Per-series rejections: the valid series of the same request is stored.
$B '{"series":[{"labels":[["job","x"]],"samples":[[1,"now"]]},
               {"labels":[["__name__","it_ok"],["job","x"]],"samples":[[1,"now"]]},
               {"labels":[["__name__","it_b"],["job","x"],["a","1"]],"samples":[[1,"now"]]},
               {"labels":[["__name__","it_c"],["job","x"],["job","y"]],"samples":[[1,"now"]]},
               {"labels":[["__name__","it_d"],["job",""]],"samples":[[1,"now"]]}]}' >"$TMP/mixed"
expect 400 "$(post_write "$TMP/mixed")" "invalid series among valid ones"
body_has "missing_metric_name"
body_has "unsorted_labels"
body_has "duplicate_label_name"
body_has "empty_label_value"
[ "$(metric 'rollgate_remote_write_rejected_series_total{reason="unsorted_labels"}')" = 1 ] ||
    fail "unsorted_labels not counted"
ok "rejections counted by reason"

# Per-sample rejections.
$B '{"series":[{"labels":[["__name__","it_seq"]],"samples":[[1,"now-1000"]]}]}' >"$TMP/s1"
$B '{"series":[{"labels":[["__name__","it_seq"]],"samples":[[1,"now-60000"]]}]}' >"$TMP/s0"
expect 204 "$(post_write "$TMP/s1")" "sample in order"
expect 400 "$(post_write "$TMP/s0")" "out-of-order sample"
body_has "out_of_order"
$B '{"series":[{"labels":[["__name__","it_future"]],"samples":[[1,"now+660000"]]}]}' >"$TMP/fut"
expect 400 "$(post_write "$TMP/fut")" "sample 11 min in the future"
body_has "too_far_in_future"
$B '{"series":[{"labels":[["__name__","it_old"]],"samples":[[1,"now-7200000"]]}]}' >"$TMP/old"
expect 400 "$(post_write "$TMP/old")" "sample older than the retention"
body_has "too_old"
$B '{"series":[{"labels":[["__name__","it_dup"]],"samples":[[1,"now-5000"],[2,"now-5000"]]}]}' >"$TMP/dup"
expect 400 "$(post_write "$TMP/dup")" "same timestamp, other value"
body_has "duplicate_timestamp"
$B '{"series":[{"labels":[["__name__","it_stale"]],"samples":[[1,"now-3000"],["stale","now-2000"],["NaN","now-1000"]]}]}' >"$TMP/stale"
expect 204 "$(post_write "$TMP/stale")" "stale marker and ordinary NaN"

# Transport edge cases: chunked body, Expect: 100-continue, keep-alive reuse.
code=$(curl -s -o "$TMP/resp" -w '%{http_code}' -X POST --data-binary "@$TMP/good" \
    -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/x-protobuf' \
    -H 'Content-Encoding: snappy' "$RG_URL/api/v1/write")
expect 204 "$code" "chunked request body"
code=$(curl -s -o "$TMP/resp" -w '%{http_code}' -X POST --data-binary "@$TMP/good" \
    -H 'Expect: 100-continue' -H 'Content-Type: application/x-protobuf' \
    -H 'Content-Encoding: snappy' "$RG_URL/api/v1/write")
expect 204 "$code" "Expect: 100-continue"
codes=$(curl -s -o /dev/null -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
    "$RG_URL/-/healthy" "$RG_URL/-/healthy" "$RG_URL/metrics" | tr '\n' ' ')
[ "$codes" = "200 1 200 0 200 0 " ] || fail "keep-alive: $codes"
ok "three requests on one keep-alive connection"

kill -0 "$RG_PID" || fail "rollgate died"
expect 200 "$(curl -s -o "$TMP/resp" -w '%{http_code}' "$RG_URL/-/healthy")" "still healthy"
$B '{"series":[{"labels":[["__name__","it_after"]],"samples":[[1,"now"]]}]}' >"$TMP/after"
expect 204 "$(post_write "$TMP/after")" "valid write after all the bad input"
n=$(metric rollgate_series_active)
[ "$n" -ge 6 ] || fail "expected at least 6 series stored, got $n"
ok "accepted series kept ($n)"
echo "$CHECKS checks passed"
