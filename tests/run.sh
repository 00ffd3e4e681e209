#!/bin/sh
# tests/run.sh - runs every cmocka unit binary and every integration script,
# then prints one closing line "N passed, N failed".
#
#   BUILD=build sh tests/run.sh [unit|integration]
# A unit binary counts its cmocka cases; an integration script counts as one test
# each (its own checks print as they go). Any failure makes the exit status 1.
BUILD=${BUILD:-build}
what=${1:-all}
passed=0
failed=0
failures=""

if [ "$what" = all ] || [ "$what" = unit ]; then
    for t in $(find "$BUILD/tests" -type f -name 'test_*' ! -name '*.o' ! -name '*.d' 2>/dev/null | sort); do
        out=$("$t" 2>&1)
        rc=$?
        printf '%s\n' "$out" | grep -E '^\[ *(PASSED|FAILED|  OK|RUN) *\]|^\[  ERROR' | grep -v '^\[ RUN' | grep -v '^\[       OK' >/dev/null
        p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
        f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
        p=${p:-0}; f=${f:-0}
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
        passed=$((passed + p)); failed=$((failed + f))
        if [ "$f" != 0 ]; then
            printf '%s\n' "$out"
            failures="$failures ${t#$BUILD/tests/}"
            echo "unit: FAIL ${t#$BUILD/tests/} ($p passed, $f failed)"
        else
            echo "unit: ok   ${t#$BUILD/tests/} ($p passed)"
        fi
    done
fi

if [ "$what" = all ] || [ "$what" = integration ]; then
    for s in tests/integration/*.sh; do
        [ -f "$s" ] || continue
        name=$(basename "$s" .sh)
        log="$BUILD/integration-$name.log"
        start=$(date +%s)
        if BUILD="$BUILD" sh "$s" >"$log" 2>&1; then
            passed=$((passed + 1))
            echo "integration: ok   $name ($(( $(date +%s) - start ))s)"
        else
            failed=$((failed + 1))
            failures="$failures $name"
            echo "integration: FAIL $name ($(( $(date +%s) - start ))s); last lines of $log:"
            tail -40 "$log"
        fi
    done
fi

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
