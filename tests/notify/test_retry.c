/* tests/notify/test_retry.c - the retry policy: classification, jittered backoff bounds,
 * Retry-After forms and the maximum age, all with a seeded random source.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "notify/retry.h"
#include "util/err.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void test_retry__classify_table(void **state)
{
    static const struct {
        int status;
        int err;
        enum rg_retry_class want;
    } cases[] = {
        { 200, 0, RG_RETRY_SUCCESS },
        { 202, 0, RG_RETRY_SUCCESS },
        { 204, 0, RG_RETRY_SUCCESS },
        { 299, 0, RG_RETRY_SUCCESS },
        { 200, RG_ETOOBIG, RG_RETRY_SUCCESS },     /* delivered, reply too long */
        { 100, 0, RG_RETRY_PERMANENT },
        { 301, 0, RG_RETRY_PERMANENT },
        { 400, 0, RG_RETRY_PERMANENT },
        { 401, 0, RG_RETRY_PERMANENT },
        { 403, 0, RG_RETRY_PERMANENT },
        { 404, 0, RG_RETRY_PERMANENT },
        { 408, 0, RG_RETRY_PERMANENT },
        { 413, 0, RG_RETRY_PERMANENT },
        { 422, 0, RG_RETRY_PERMANENT },
        { 429, 0, RG_RETRY_RETRYABLE },
        { 500, 0, RG_RETRY_RETRYABLE },
        { 502, 0, RG_RETRY_RETRYABLE },
        { 503, 0, RG_RETRY_RETRYABLE },
        { 599, 0, RG_RETRY_RETRYABLE },
        { 600, 0, RG_RETRY_PERMANENT },
        { 0, RG_EIO, RG_RETRY_RETRYABLE },
        { 0, RG_ETIMEDOUT, RG_RETRY_RETRYABLE },
        { 0, -ECONNREFUSED, RG_RETRY_RETRYABLE },
        { 0, RG_ECANCELED, RG_RETRY_RETRYABLE },
        { 0, RG_ETOOBIG, RG_RETRY_RETRYABLE },
        { 0, RG_EINVAL, RG_RETRY_PERMANENT },       /* malformed URL */
        { 0, RG_ENOTSUP, RG_RETRY_PERMANENT },      /* unsupported scheme */
    };
    (void)state;

    for (size_t i = 0; i < NELEM(cases); i++)
        assert_int_equal(rg_retry_classify(cases[i].status, cases[i].err), cases[i].want);
}

static void test_retry__policy_validate(void **state)
{
    struct rg_retry_policy p;
    (void)state;

    rg_retry_policy_default(&p);
    assert_int_equal(rg_retry_policy_validate(&p), 0);
    assert_int_equal(p.min_backoff_ms, 500);
    assert_int_equal(p.max_backoff_ms, 30000);
    p.min_backoff_ms = 0;
    assert_int_equal(rg_retry_policy_validate(&p), RG_EINVAL);
    rg_retry_policy_default(&p);
    p.max_backoff_ms = 100;
    assert_int_equal(rg_retry_policy_validate(&p), RG_EINVAL);
    rg_retry_policy_default(&p);
    p.multiplier = 0.5;
    assert_int_equal(rg_retry_policy_validate(&p), RG_EINVAL);
    rg_retry_policy_default(&p);
    p.max_age_ms = -1;
    assert_int_equal(rg_retry_policy_validate(&p), RG_EINVAL);
}

static void test_retry__backoff_none_exponential(void **state)
{
    static const int64_t want[] = { 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
    struct rg_retry_policy p;
    struct rg_retry_rng rng;
    (void)state;

    rg_retry_policy_default(&p);
    p.jitter = RG_RETRY_JITTER_NONE;
    rg_retry_rng_seed(&rng, 1);
    for (size_t i = 0; i < NELEM(want); i++)
        assert_int_equal(rg_retry_backoff(&p, (uint32_t)i + 1, 0, &rng), want[i]);
    /* A huge attempt count neither overflows nor leaves the bounds. */
    assert_int_equal(rg_retry_backoff(&p, UINT32_MAX, 0, &rng), 30000);
}

static void test_retry__backoff_full_jitter_bounds(void **state)
{
    struct rg_retry_policy p;
    struct rg_retry_rng rng;
    (void)state;

    rg_retry_policy_default(&p);
    rg_retry_rng_seed(&rng, 42);
    for (uint32_t n = 1; n <= 12; n++) {
        int64_t ceil = 500;
        int64_t lo = INT64_MAX, hi = 0;
        for (uint32_t i = 1; i < n; i++)
            ceil = ceil * 2 > 30000 ? 30000 : ceil * 2;
        for (int k = 0; k < 2000; k++) {
            int64_t d = rg_retry_backoff(&p, n, 0, &rng);
            assert_true(d >= 500 && d <= ceil);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        if (n == 1) {
            assert_int_equal(lo, 500);
            assert_int_equal(hi, 500);
        } else {
            /* The jitter covers the interval: both ends are approached. */
            assert_true(lo < 500 + (ceil - 500) / 10);
            assert_true(hi > ceil - (ceil - 500) / 10);
        }
    }
}

static void test_retry__backoff_decorrelated_bounds(void **state)
{
    struct rg_retry_policy p;
    struct rg_retry_rng rng;
    int64_t prev = 0;
    int reached_max = 0;
    (void)state;

    rg_retry_policy_default(&p);
    p.jitter = RG_RETRY_JITTER_DECORRELATED;
    rg_retry_rng_seed(&rng, 7);
    for (uint32_t n = 1; n <= 2000; n++) {
        int64_t d = rg_retry_backoff(&p, n, prev, &rng);
        int64_t top = (prev < 500 ? 500 : prev) * 3;
        assert_true(d >= 500);
        assert_true(d <= 30000);
        assert_true(d <= top);
        reached_max |= d > 25000;
        prev = d;
    }
    assert_true(reached_max);
}

static void test_retry__rng_deterministic(void **state)
{
    struct rg_retry_rng a, b, c;
    int differ = 0;
    (void)state;

    rg_retry_rng_seed(&a, 1234);
    rg_retry_rng_seed(&b, 1234);
    rg_retry_rng_seed(&c, 1235);
    for (int i = 0; i < 100; i++) {
        uint64_t x = rg_retry_rng_next(&a);
        assert_true(x == rg_retry_rng_next(&b));
        differ |= x != rg_retry_rng_next(&c);
    }
    assert_true(differ);
}

/* 1994-11-06T08:49:37Z, the example date of RFC 9110. */
#define EX_MS INT64_C(784111777000)

static void test_retry__retry_after_forms(void **state)
{
    static const struct {
        const char *in;
        int64_t now_ms;
        int rc;
        int64_t want_ms;
    } cases[] = {
        { "120", 0, 0, 120000 },
        { "0", 0, 0, 0 },
        { " 3 ", 0, 0, 3000 },
        { "99999999999999999999", 0, 0, INT64_C(10000000000) * 1000 },
        { "Sun, 06 Nov 1994 08:49:37 GMT", EX_MS - 10000, 0, 10000 },
        { "Sunday, 06-Nov-94 08:49:37 GMT", EX_MS - 10000, 0, 10000 },
        { "Sun Nov  6 08:49:37 1994", EX_MS - 10000, 0, 10000 },
        { "Sun Nov 16 08:49:37 1994", EX_MS, 0, 10 * 86400000 },
        { "Sun, 06 Nov 1994 08:49:37 GMT", EX_MS + 5000, 0, 0 },     /* in the past */
        { "Thu, 01 Jan 1970 00:00:00 GMT", 0, 0, 0 },
        { "Fri, 31 Dec 1999 23:59:59 GMT", 946684799000 - 1000, 0, 1000 },
        { "Tue, 29 Feb 2028 12:00:00 GMT", 1835438400000 - 60000, 0, 60000 },
        { "", 0, RG_EINVAL, 0 },
        { "abc", 0, RG_EINVAL, 0 },
        { "1.5", 0, RG_EINVAL, 0 },
        { "-1", 0, RG_EINVAL, 0 },
        { "5s", 0, RG_EINVAL, 0 },
        { "Sun, 06 Nov 1994 08:49:37 PST", 0, RG_EINVAL, 0 },
        { "Sun, 06 Nov 1994 24:49:37 GMT", 0, RG_EINVAL, 0 },
        { "Sun, 32 Nov 1994 08:49:37 GMT", 0, RG_EINVAL, 0 },
        { "Sun, 06 Foo 1994 08:49:37 GMT", 0, RG_EINVAL, 0 },
        { "Sun, 06 Nov 94 08:49:37 GMT", 0, RG_EINVAL, 0 },
        { "Sun, 06 Nov 1994 08:49:37 GMT trailing", 0, RG_EINVAL, 0 },
    };
    (void)state;

    for (size_t i = 0; i < NELEM(cases); i++) {
        int64_t d = -1;
        int rc = rg_retry_after_parse(cases[i].in, cases[i].now_ms, &d);
        if (rc != cases[i].rc)
            fail_msg("case %zu \"%s\": rc %d", i, cases[i].in, rc);
        if (rc == 0 && d != cases[i].want_ms)
            fail_msg("case %zu \"%s\": %lld ms", i, cases[i].in, (long long)d);
    }
    assert_int_equal(rg_retry_after_parse(NULL, 0, &(int64_t){ 0 }), RG_EINVAL);
}

static void test_retry__decide_table(void **state)
{
    static const struct {
        int status;
        int err;
        const char *retry_after;
        int64_t age_ms;               /* now - created */
        enum rg_retry_action want;
        int64_t want_delay;           /* -1: any in [500, 500] for attempt 1 */
        int ra_used;
    } cases[] = {
        { 200, 0, NULL, 0, RG_RETRY_ACK, 0, 0 },
        { 202, 0, "5", 0, RG_RETRY_ACK, 0, 0 },
        { 400, 0, NULL, 0, RG_RETRY_DROP_REJECTED, 0, 0 },
        { 404, 0, "1", 0, RG_RETRY_DROP_REJECTED, 0, 0 },
        { 500, 0, NULL, 0, RG_RETRY_AGAIN, 500, 0 },
        { 0, RG_ETIMEDOUT, NULL, 0, RG_RETRY_AGAIN, 500, 0 },
        { 0, -ECONNREFUSED, NULL, 0, RG_RETRY_AGAIN, 500, 0 },
        { 429, 0, "1", 0, RG_RETRY_AGAIN, 1000, 1 },
        { 503, 0, "7", 0, RG_RETRY_AGAIN, 7000, 1 },
        { 429, 0, "3600", 0, RG_RETRY_AGAIN, 30000, 1 },     /* capped by the max */
        { 429, 0, "0", 0, RG_RETRY_AGAIN, 500, 1 },          /* raised to the min */
        { 429, 0, "soon", 0, RG_RETRY_AGAIN, 500, 0 },       /* ignored when invalid */
        { 500, 0, NULL, 3599500, RG_RETRY_AGAIN, 500, 0 },   /* exactly at max age */
        { 500, 0, NULL, 3599501, RG_RETRY_DROP_EXPIRED, 0, 0 },
        { 429, 0, "60", 3580000, RG_RETRY_DROP_EXPIRED, 0, 0 },
        { 400, 0, NULL, 99999999, RG_RETRY_DROP_REJECTED, 0, 0 },
    };
    struct rg_retry_policy p;
    struct rg_retry_rng rng;
    (void)state;

    rg_retry_policy_default(&p);
    rg_retry_rng_seed(&rng, 9);
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct rg_retry_attempt a = {
            .status = cases[i].status, .err = cases[i].err,
            .retry_after = cases[i].retry_after, .attempts = 1,
            .created_ms = 1000000000 - cases[i].age_ms, .now_ms = 1000000000,
        };
        struct rg_retry_decision d;
        rg_retry_decide(&p, &a, &rng, &d);
        if (d.action != cases[i].want)
            fail_msg("case %zu: action %d", i, (int)d.action);
        if (d.action == RG_RETRY_AGAIN) {
            assert_int_equal(d.delay_ms, cases[i].want_delay);
            assert_int_equal(d.next_attempt_ms, 1000000000 + cases[i].want_delay);
            assert_int_equal(d.retry_after_used, cases[i].ra_used);
        }
    }
}

static void test_retry__max_age(void **state)
{
    struct rg_retry_policy p;
    (void)state;

    rg_retry_policy_default(&p);
    assert_false(rg_retry_expired(&p, 0, 3600000));
    assert_true(rg_retry_expired(&p, 0, 3600001));
    p.max_age_ms = 0;                            /* never */
    assert_false(rg_retry_expired(&p, 0, INT64_C(1) << 50));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry__classify_table),
        cmocka_unit_test(test_retry__policy_validate),
        cmocka_unit_test(test_retry__backoff_none_exponential),
        cmocka_unit_test(test_retry__backoff_full_jitter_bounds),
        cmocka_unit_test(test_retry__backoff_decorrelated_bounds),
        cmocka_unit_test(test_retry__rng_deterministic),
        cmocka_unit_test(test_retry__retry_after_forms),
        cmocka_unit_test(test_retry__decide_table),
        cmocka_unit_test(test_retry__max_age),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
