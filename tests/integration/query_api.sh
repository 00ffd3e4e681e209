#!/bin/sh
# The Prometheus HTTP query API over remote-written data: shapes, parameters, status
# codes and error types as Prometheus answers them.
. tests/integration/lib.inc

start_rollgate --log-level warn
B="python3 tests/integration/rwbody.py"
now=$(date +%s)
t0=$(( (now - 600) * 1000 + 500 ))
series=""
for i in 0 1 2 3 4 5 6 7 8 9; do
    ts=$(( t0 + i * 60000 ))
    series="$series{\"labels\":[[\"__name__\",\"it_req_total\"],[\"code\",\"200\"],[\"job\",\"api\"]],\"samples\":[[$((i * 60)),$ts]]},"
    series="$series{\"labels\":[[\"__name__\",\"it_req_total\"],[\"code\",\"500\"],[\"job\",\"api\"]],\"samples\":[[$((i * 6)),$ts]]},"
done
$B "{\"series\":[${series%,}],\"metadata\":[[1,\"it_req_total\",\"Requests.\",\"\"]]}" >"$TMP/body"
[ "$(post_write "$TMP/body")" = 204 ] || fail "write: $(cat "$TMP/resp")"
ok "data written"

q() {   # q PATH [curl args...] -> status in $code, body in $TMP/out
    path=$1; shift
    code=$(curl -s -o "$TMP/out" -w '%{http_code}' "$@" "$RG_URL$path")
}
json() {   # json PYTHON-EXPR on the parsed body as d
    python3 -c "import json,sys; d=json.load(open('$TMP/out')); print($1)"
}
want() {   # want WHAT EXPECTED GOT
    [ "$2" = "$3" ] || fail "$1: want $2, got $3 ($(head -c 300 "$TMP/out"))"
    ok "$1"
}

tq=$(( now - 1 ))
q /api/v1/query -G --data-urlencode 'query=sum by (code) (it_req_total)' --data-urlencode "time=$tq"
want "instant query 200" 200 "$code"
want "vector result" "vector 2" "$(json '" ".join([d["data"]["resultType"], str(len(d["data"]["result"]))])')"
want "value of code=500" "54" "$(json '[r["value"][1] for r in d["data"]["result"] if r["metric"]["code"]=="500"][0]')"
want "value time is the evaluation time" "$tq" "$(json 'd["data"]["result"][0]["value"][0]')"

q /api/v1/query --data-urlencode 'query=rate(it_req_total{code="200"}[5m])' --data-urlencode "time=$tq"
want "POST form query" "success 1" "$(json 'd["status"]+" "+str(len(d["data"]["result"]))')"
want "rate drops the metric name" "False" "$(json '"__name__" in d["data"]["result"][0]["metric"]')"

q /api/v1/query -G --data-urlencode 'query=1 + 2' --data-urlencode "time=1700000000.5"
want "scalar result" "['scalar', [1700000000.5, '3']]" "$(json '[d["data"]["resultType"], d["data"]["result"]]')"
q /api/v1/query -G --data-urlencode 'query="hello"' --data-urlencode "time=2023-11-14T22:13:20Z"
want "string result, RFC 3339 time" "['string', [1700000000, 'hello']]" "$(json '[d["data"]["resultType"], d["data"]["result"]]')"

q /api/v1/query -G --data-urlencode 'query=sum(rate(it_req_total[5m])' 
want "parse error is 400 bad_data" "400 bad_data" "$code $(json 'd["errorType"]')"
json 'd["error"]' | grep -q 'parse error' || fail "parse error message: $(cat "$TMP/out")"
q /api/v1/query -G --data-urlencode 'query=up' --data-urlencode 'time=soon'
want "bad time is 400" "400 bad_data" "$code $(json 'd["errorType"]')"
q /api/v1/query
want "missing query is 400" "400" "$code"
q /api/v1/query -G --data-urlencode 'query=it_req_total + on(job) it_req_total' --data-urlencode "time=$tq"
want "many-to-many matching is 422 execution" "422 execution" "$code $(json 'd["errorType"]')"
q /api/v1/query -X DELETE
want "DELETE is 405" "405" "$code"

s=$(( now - 600 )); e=$(( now ))
q /api/v1/query_range -G --data-urlencode 'query=sum(it_req_total)' -d "start=$s" -d "end=$e" -d step=60
want "range query matrix" "matrix 1" "$(json 'd["data"]["resultType"]+" "+str(len(d["data"]["result"]))')"
# Steps at s, s+60, ..., s+600; the first sample is 0.5 s after s, so s has no value.
want "range query points" "10 $(( s + 60 )) 594" \
    "$(json '" ".join(str(x) for x in [len(d["data"]["result"][0]["values"]), d["data"]["result"][0]["values"][0][0], d["data"]["result"][0]["values"][-1][1]])')"
q /api/v1/query_range -G --data-urlencode 'query=up' -d "start=$e" -d "end=$s" -d step=60
want "end before start is 400" "400" "$code"
q /api/v1/query_range -G --data-urlencode 'query=up' -d "start=$s" -d "end=$e" -d step=0
want "zero step is 400" "400" "$code"
q /api/v1/query_range -G --data-urlencode 'query=up' -d "start=0" -d "end=$e" -d step=1
want "over 11,000 points is 400" "400" "$code"
json 'd["error"]' | grep -q '11000 points' || fail "points limit message: $(cat "$TMP/out")"

q /api/v1/series -G --data-urlencode 'match[]=it_req_total{code="500"}'
want "series" "[{'__name__': 'it_req_total', 'code': '500', 'job': 'api'}]" "$(json 'd["data"]')"
q /api/v1/series
want "series without match[] is 400" "400" "$code"
q /api/v1/labels -G --data-urlencode 'match[]=it_req_total'
want "labels of matching series" "['__name__', 'code', 'job']" "$(json 'd["data"]')"
q /api/v1/labels
want "all label names, sorted and unique" "True" \
    "$(json 'd["data"] == sorted(set(d["data"])) and {"__name__", "code", "job"} <= set(d["data"])')"
q /api/v1/label/code/values
want "label values" "['200', '500']" "$(json 'd["data"]')"
q /api/v1/label/job/values -G --data-urlencode 'match[]={code="500"}'
want "label values with match[]" "['api']" "$(json 'd["data"]')"
q /api/v1/metadata -G -d metric=it_req_total
want "metadata" "[{'type': 'counter', 'help': 'Requests.', 'unit': ''}]" "$(json 'd["data"]["it_req_total"]')"
q /api/v1/status/buildinfo
want "buildinfo" "success" "$(json 'd["status"]')"
echo "$CHECKS checks passed"
