/* tests/promql/test_format.c - number and timestamp text as Prometheus (Go)
 * writes it: strconv.FormatFloat 'f' and 'g' with the shortest precision, and
 * the JSON API's timestamps.
 *
 * The table holds values whose Go spelling is documented or easy to derive by
 * hand; tests/data/promql/kernels/go_reference.txt adds two thousand
 * pseudo-random doubles as formatted by Go's strconv itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "promql/kernels.h"
#include "util/buf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define REFERENCE "tests/data/promql/kernels/go_reference.txt"

struct fmt_case {
    double v;
    const char *f;   /* FormatFloat(v, 'f', -1, 64) */
    const char *g;   /* FormatFloat(v, 'g', -1, 64) */
};

static const struct fmt_case cases[] = {
    { 0.0, "0", "0" },
    { -0.0, "-0", "-0" },
    { 1, "1", "1" },
    { -1, "-1", "-1" },
    { 0.1, "0.1", "0.1" },
    { 0.3, "0.3", "0.3" },
    { 100, "100", "100" },
    { 1.5, "1.5", "1.5" },
    { 123.456, "123.456", "123.456" },
    { 4.35, "4.35", "4.35" },
    { 12345.678, "12345.678", "12345.678" },
    { 2.0 / 3, "0.6666666666666666", "0.6666666666666666" },
    { 1.0 / 3, "0.3333333333333333", "0.3333333333333333" },
    { 3.0000000000000004, "3.0000000000000004", "3.0000000000000004" },
    /* 'g' switches to the exponent form below 1e-4 and from 1e6 on. */
    { 999999, "999999", "999999" },
    { 123456, "123456", "123456" },
    { 1e6, "1000000", "1e+06" },
    { 1234567, "1234567", "1.234567e+06" },
    { 123456789, "123456789", "1.23456789e+08" },
    { 0.0001, "0.0001", "0.0001" },
    { 0.000123, "0.000123", "0.000123" },
    { 0.00001, "0.00001", "1e-05" },
    { 1e-7, "0.0000001", "1e-07" },
    { -0.000001, "-0.000001", "-1e-06" },
    { 2.5e-7, "0.00000025", "2.5e-07" },
    { -2.5e-7, "-0.00000025", "-2.5e-07" },
    { 1e-10, "0.0000000001", "1e-10" },
    { 1e20, "100000000000000000000", "1e+20" },
    { 1e21, "1000000000000000000000", "1e+21" },
    { 1.2345678901234568e20, "123456789012345680000", "1.2345678901234568e+20" },
    /* The double nearest 1e23 is 9.999999999999999161e22, still shortest as 1e23. */
    { 1e23, "100000000000000000000000", "1e+23" },
    { 1e100, "1"
             "0000000000000000000000000000000000000000000000000"
             "000000000000000000000000000000000000000000000000000", "1e+100" },
    /* 2^53 + 1 is not representable: it rounds to 2^53. */
    { 9007199254740993.0, "9007199254740992", "9.007199254740992e+15" },
    { 9007199254740991.0, "9007199254740991", "9.007199254740991e+15" },
    { -4503599627370497.0, "-4503599627370497", "-4.503599627370497e+15" },
    { 18446744073709551616.0, "18446744073709552000", "1.8446744073709552e+19" },
    { 1e15 + 0.25, "1000000000000000.2", "1.0000000000000002e+15" },
    { INFINITY, "+Inf", "+Inf" },
    { -INFINITY, "-Inf", "-Inf" },
    { NAN, "NaN", "NaN" },
    { -NAN, "NaN", "NaN" },
};

static void test_format__table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(cases); i++) {
        struct rg_buf f = { 0 }, g = { 0 };

        assert_int_equal(rg_format_float(cases[i].v, &f), 0);
        assert_int_equal(rg_format_float_g(cases[i].v, &g), 0);
        if (strcmp(f.data, cases[i].f) || strcmp(g.data, cases[i].g))
            fail_msg("case %zu: got %s | %s want %s | %s", i, f.data, g.data, cases[i].f,
                     cases[i].g);
        rg_buf_cleanup(&f);
        rg_buf_cleanup(&g);
    }
}

/* 0.1 + 0.2 is computed at run time, so it is the famous 0.30000000000000004. */
static void test_format__point_one_plus_point_two(void **state)
{
    volatile double a = 0.1, b = 0.2;
    struct rg_buf out = { 0 };
    (void)state;

    assert_int_equal(rg_format_float(a + b, &out), 0);
    assert_string_equal(out.data, "0.30000000000000004");
    rg_buf_reset(&out);
    assert_int_equal(rg_format_float_g(a + b, &out), 0);
    assert_string_equal(out.data, "0.30000000000000004");
    rg_buf_cleanup(&out);
}

/* Builds "0." + zeros + digits, or digits + zeros, for the extreme cases. */
static void expect_long(double v, const char *lead, int zeros, const char *digits,
                        const char *g)
{
    struct rg_buf out = { 0 }, want = { 0 };

    assert_int_equal(rg_buf_puts(&want, lead), 0);
    if (*lead == '0') {
        for (int i = 0; i < zeros; i++)
            assert_int_equal(rg_buf_putc(&want, '0'), 0);
        assert_int_equal(rg_buf_puts(&want, digits), 0);
    } else {
        for (int i = 0; i < zeros; i++)
            assert_int_equal(rg_buf_putc(&want, '0'), 0);
    }
    assert_int_equal(rg_format_float(v, &out), 0);
    assert_string_equal(out.data, want.data);
    rg_buf_reset(&out);
    assert_int_equal(rg_format_float_g(v, &out), 0);
    assert_string_equal(out.data, g);
    rg_buf_cleanup(&out);
    rg_buf_cleanup(&want);
}

static void test_format__extremes(void **state)
{
    (void)state;
    /* Smallest subnormal: 323 zeros after the point, then 5. */
    expect_long(5e-324, "0.", 323, "5", "5e-324");
    expect_long(1.5e-323, "0.", 322, "15", "1.5e-323");
    /* Smallest normal: 307 zeros, then its 17 digits. */
    expect_long(2.2250738585072014e-308, "0.", 307, "22250738585072014",
                "2.2250738585072014e-308");
    /* Largest double: 17 digits and 292 zeros (309 digits before the point). */
    expect_long(1.7976931348623157e308, "17976931348623157", 292, "",
                "1.7976931348623157e+308");
}

static void test_format__appends(void **state)
{
    struct rg_buf out = { 0 };
    (void)state;

    assert_int_equal(rg_buf_puts(&out, "v="), 0);
    assert_int_equal(rg_format_float(-12.5, &out), 0);
    assert_int_equal(rg_buf_putc(&out, ' '), 0);
    assert_int_equal(rg_format_float_g(-1.25e-9, &out), 0);
    assert_int_equal(rg_buf_putc(&out, ' '), 0);
    assert_int_equal(rg_format_time(-1, &out), 0);
    assert_string_equal(out.data, "v=-12.5 -1.25e-09 -0.001");
    rg_buf_cleanup(&out);
}

static void test_format__time(void **state)
{
    static const struct { int64_t ms; const char *want; } t[] = {
        { 1435781451781, "1435781451.781" },
        { 1435781451000, "1435781451" },
        /* Prometheus pads the millisecond part to three digits and keeps
         * trailing zeros (jsonutil.MarshalTimestamp). */
        { 1435781451500, "1435781451.500" },
        { 1435781451050, "1435781451.050" },
        { 5, "0.005" },
        { 50, "0.050" },
        { 0, "0" },
        { 999, "0.999" },
        { -1500, "-1.500" },
        { -1000, "-1" },
        { -5, "-0.005" },
        { INT64_MAX, "9223372036854775.807" },
        { INT64_MIN, "-9223372036854775.808" },
    };
    (void)state;

    for (size_t i = 0; i < N(t); i++) {
        struct rg_buf out = { 0 };

        assert_int_equal(rg_format_time(t[i].ms, &out), 0);
        assert_string_equal(out.data, t[i].want);
        rg_buf_cleanup(&out);
    }
}

static void test_format__go_reference(void **state)
{
    FILE *fp = fopen(REFERENCE, "r");
    char line[1024], f[512], g[512];
    size_t checked = 0;
    (void)state;

    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp)) {
        uint64_t bits;
        double v;
        struct rg_buf a = { 0 }, b = { 0 };

        if (line[0] != 'F')
            continue;
        assert_int_equal(sscanf(line, "F %" SCNx64 " %511s %511s", &bits, f, g), 3);
        memcpy(&v, &bits, sizeof(v));
        assert_int_equal(rg_format_float(v, &a), 0);
        assert_int_equal(rg_format_float_g(v, &b), 0);
        if (strcmp(a.data, f) || strcmp(b.data, g))
            fail_msg("%016" PRIx64 ": got %s | %s want %s | %s", bits, a.data, b.data, f, g);
        rg_buf_cleanup(&a);
        rg_buf_cleanup(&b);
        checked++;
    }
    fclose(fp);
    assert_true(checked >= 1900);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format__table),
        cmocka_unit_test(test_format__point_one_plus_point_two),
        cmocka_unit_test(test_format__extremes),
        cmocka_unit_test(test_format__appends),
        cmocka_unit_test(test_format__time),
        cmocka_unit_test(test_format__go_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
