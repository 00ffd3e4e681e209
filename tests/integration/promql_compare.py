#!/usr/bin/env python3
"""Compares PromQL answers of two Prometheus-compatible servers.

    promql_compare.py REFERENCE_URL CANDIDATE_URL CORPUS TIME...

For every expression of CORPUS (one per line, '#' comments) and every evaluation
TIME (Unix seconds), queries /api/v1/query on both servers and requires the same
result type, the same label sets and values equal within 1e-9 relative (NaN equals
NaN; values whose magnitudes are both below 1e-12 count as equal, to absorb the last
bits of cancellation that 2.42's plain summation and 3.x's Kahan summation leave).
Prints one line per mismatch and a summary; exits 1 when anything differs.
"""
import json
import math
import sys
import urllib.parse
import urllib.request


def query(base, expr, t):
    data = urllib.parse.urlencode({"query": expr, "time": t}).encode()
    req = urllib.request.Request(base + "/api/v1/query", data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def num(s):
    return float(s)   # float() reads NaN, +Inf, -Inf as Prometheus writes them


def same(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    if abs(a) < 1e-12 and abs(b) < 1e-12:
        return True
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def normalise(resp):
    if resp.get("status") != "success":
        return ("error", resp.get("errorType"))
    d = resp["data"]
    t = d["resultType"]
    if t in ("scalar", "string"):
        return (t, {(): d["result"][1]})
    out = {}
    for s in d["result"]:
        key = tuple(sorted(s["metric"].items()))
        out[key] = s["value"][1] if "value" in s else [v[1] for v in s["values"]]
    return (t, out)


def compare(expr, t, ref, cand):
    rt, rv = normalise(ref)
    ct, cv = normalise(cand)
    if rt != ct:
        return "result type %s != %s (%s / %s)" % (rt, ct, ref.get("error"), cand.get("error"))
    if rt == "error":
        return None
    if set(rv) != set(cv):
        only_r = [dict(k) for k in set(rv) - set(cv)][:3]
        only_c = [dict(k) for k in set(cv) - set(rv)][:3]
        return "label sets differ: only reference %s; only rollgate %s" % (only_r, only_c)
    for k in rv:
        a, b = rv[k], cv[k]
        if rt == "string":
            if a != b:
                return "string %r != %r" % (a, b)
        elif not same(num(a), num(b)):
            return "%s: %s != %s" % (dict(k), a, b)
    return None


def main():
    ref, cand, corpus = sys.argv[1], sys.argv[2], sys.argv[3]
    times = sys.argv[4:]
    exprs = [l.strip() for l in open(corpus) if l.strip() and not l.startswith("#")]
    checked = failed = nonempty = 0
    for e in exprs:
        for t in times:
            r, c = query(ref, e, t), query(cand, e, t)
            diff = compare(e, t, r, c)
            checked += 1
            if r.get("status") == "success" and r["data"]["result"]:
                nonempty += 1
            if diff:
                failed += 1
                print("DIFF at %s: %s\n    %s" % (t, e, diff))
    print("compared %d expressions x %d times = %d queries (%d non-empty): %d differ"
          % (len(exprs), len(times), checked, nonempty, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
