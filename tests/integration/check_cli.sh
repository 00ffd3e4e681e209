#!/bin/sh
# `rollgate check`: every bundled and example file is valid and dumps to its golden
# canonical form; broken files give exactly the expected file:line:col errors and
# exit 1. RG_APPROVE=1 rewrites the golden files.
. tests/integration/lib.inc

golden() {   # golden FILE GOLDEN: compares, or rewrites with RG_APPROVE=1
    if [ -n "$RG_APPROVE" ]; then cp "$1" "$2"; return 0; fi
    diff -u "$2" "$1" >"$TMP/diff" || fail "$2 differs: $(head -40 "$TMP/diff")"
}

for f in rules/*.yml rules/*.yaml examples/*.yml tests/data/rules/*.yml; do
    [ -f "$f" ] || continue
    "$ROLLGATE" check "$f" >"$TMP/out" 2>&1 || fail "check $f: $(cat "$TMP/out")"
    name=$(echo "$f" | tr '/' '_')
    "$ROLLGATE" check --dump "$f" >"$TMP/dump" 2>&1 || fail "check --dump $f"
    golden "$TMP/dump" "tests/data/check/$name.dump"
    # The canonical form is itself valid and a fixed point for rule files.
    case "$f" in
    tests/data/rules/*)
        cp "$TMP/dump" "$TMP/again.yml"
        "$ROLLGATE" check --dump "$TMP/again.yml" >"$TMP/dump2" 2>&1 || fail "dump of $f does not check"
        cmp -s "$TMP/dump" "$TMP/dump2" || fail "dump of $f is not a fixed point" ;;
    esac
done
ok "bundled, example and rule files check and dump to their golden forms"

for f in tests/data/check/bad/*.yml; do
    "$ROLLGATE" check "$f" >"$TMP/out" 2>&1 && fail "check $f succeeded"
    [ $? = 1 ] || fail "check $f: exit code not 1"
    golden "$TMP/out" "${f%.yml}.err"
done
ok "broken files give their exact errors and exit 1"

"$ROLLGATE" check >/dev/null 2>&1; [ $? = 2 ] || fail "no file: exit code not 2"
"$ROLLGATE" check tests/data/check/none.yml >"$TMP/out" 2>&1; [ $? = 1 ] || fail "missing file"
grep -q 'no such file' "$TMP/out" || fail "missing file message: $(cat "$TMP/out")"
ok "usage errors and missing files"
echo "$CHECKS checks passed"
