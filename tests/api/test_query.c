/* tests/api/test_query.c - Prometheus API parameter parsing: times and durations. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>

#include "api/api.h"
#include "util/err.h"

static void test_query__parse_time(void **state)
{
    static const struct {
        const char *in;
        int rc;
        int64_t want;
    } cases[] = {
        { "1435781451.781", 0, 1435781451781 },
        { "1435781451", 0, 1435781451000 },
        { "1435781451.7815", 0, 1435781451782 },   /* rounded to ms, as Prometheus */
        { "0", 0, 0 },
        { "-1.5", 0, -1500 },
        { "1e3", 0, 1000000 },
        { "2015-07-01T20:10:51.781Z", 0, 1435781451781 },
        { "2015-07-01T20:10:51Z", 0, 1435781451000 },
        { "2015-07-01T20:10:51.78Z", 0, 1435781451780 },
        { "2015-07-01T22:10:51.781+02:00", 0, 1435781451781 },
        { "2015-07-01T18:10:51-02:00", 0, 1435781451000 },
        { "2015-07-01T20:10:51.781123456Z", 0, 1435781451781 },
        { "", RG_EINVAL, 0 },
        { "yesterday", RG_EINVAL, 0 },
        { "2015-07-01 20:10:51Z", RG_EINVAL, 0 },
        { "2015-07-01T20:10:51", RG_EINVAL, 0 },
        { "2015-13-01T20:10:51Z", RG_EINVAL, 0 },
        { "NaN", RG_EINVAL, 0 },
        { "Inf", RG_EINVAL, 0 },
        { "1e300", RG_EINVAL, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t t = -42;
        int rc = rg__api_parse_time(cases[i].in, &t);
        if (rc != cases[i].rc)
            fail_msg("parse_time(\"%s\") = %d, want %d", cases[i].in, rc, cases[i].rc);
        if (rc == 0 && t != cases[i].want)
            fail_msg("parse_time(\"%s\") = %lld, want %lld", cases[i].in, (long long)t,
                     (long long)cases[i].want);
    }
}

static void test_query__parse_duration(void **state)
{
    static const struct {
        const char *in;
        int rc;
        int64_t want;
    } cases[] = {
        { "15", 0, 15000 },
        { "0.5", 0, 500 },
        { "1m", 0, 60000 },
        { "1h30m", 0, 5400000 },
        { "250ms", 0, 250 },
        { "", RG_EINVAL, 0 },
        { "fast", RG_EINVAL, 0 },
        { "NaN", RG_EINVAL, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t d = -42;
        int rc = rg__api_parse_duration(cases[i].in, &d);
        if (rc != cases[i].rc)
            fail_msg("parse_duration(\"%s\") = %d, want %d", cases[i].in, rc, cases[i].rc);
        if (rc == 0 && d != cases[i].want)
            fail_msg("parse_duration(\"%s\") = %lld, want %lld", cases[i].in, (long long)d,
                     (long long)cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query__parse_time),
        cmocka_unit_test(test_query__parse_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
