/* tests/util/test_metrics.c - metrics registry and text exposition; buffers; errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/metrics.h"

static void test_metrics__exposition(void **state)
{
    static const char *const code[] = { "code" };
    static const char *const v204[] = { "204" };
    static const char *const v400[] = { "400" };
    static const char *const weird[] = { "a\"b\\c\nd" };
    static const double bounds[] = { 0.1, 1 };
    struct rg_metrics *m = rg_metrics_new();
    struct rg_metrics_family *req, *lat, *g;
    struct rg_metrics_child *c;
    struct rg_buf out = { 0 };
    (void)state;

    req = rg_metrics_family(m, "x_requests_total", "Requests by code.", RG_METRICS_COUNTER,
                            code, 1, NULL, 0);
    assert_ptr_equal(req, rg_metrics_family(m, "x_requests_total", "again", RG_METRICS_COUNTER,
                                            code, 1, NULL, 0));
    rg_metrics_child(req, v400)->value += 2;
    c = rg_metrics_child(req, v204);
    c->value += 5;
    assert_ptr_equal(c, rg_metrics_child(req, v204));
    rg_metrics_child(req, weird)->value = 1;
    lat = rg_metrics_family(m, "a_seconds", "Latency\nwith \\ newline.", RG_METRICS_HISTOGRAM,
                            NULL, 0, bounds, 2);
    c = rg_metrics_child(lat, NULL);
    rg_metrics_observe(lat, c, 0.05);
    rg_metrics_observe(lat, c, 0.1);
    rg_metrics_observe(lat, c, 0.5);
    rg_metrics_observe(lat, c, 7);
    g = rg_metrics_family(m, "m_gauge", "A gauge.", RG_METRICS_GAUGE, NULL, 0, NULL, 0);
    rg_metrics_child(g, NULL)->value = 0.1;
    rg_metrics_family(m, "z_unused", "No children, not rendered.", RG_METRICS_GAUGE, NULL, 0,
                      NULL, 0);

    assert_int_equal(rg_metrics_render(m, &out), 0);
    assert_string_equal(out.data,
        "# HELP a_seconds Latency\\nwith \\\\ newline.\n"
        "# TYPE a_seconds histogram\n"
        "a_seconds_bucket{le=\"0.1\"} 2\n"
        "a_seconds_bucket{le=\"1\"} 3\n"
        "a_seconds_bucket{le=\"+Inf\"} 4\n"
        "a_seconds_sum 7.65\n"
        "a_seconds_count 4\n"
        "# HELP m_gauge A gauge.\n"
        "# TYPE m_gauge gauge\n"
        "m_gauge 0.1\n"
        "# HELP x_requests_total Requests by code.\n"
        "# TYPE x_requests_total counter\n"
        "x_requests_total{code=\"204\"} 5\n"
        "x_requests_total{code=\"400\"} 2\n"
        "x_requests_total{code=\"a\\\"b\\\\c\\nd\"} 1\n");
    rg_buf_cleanup(&out);
    rg_metrics_free(m);
    rg_metrics_free(NULL);
}

static void test_metrics__many_children(void **state)
{
    static const char *const names[] = { "deployment", "check" };
    struct rg_metrics *m = rg_metrics_new();
    struct rg_metrics_family *f;
    struct rg_metrics_child *first[500];
    char d[32], c[32];
    (void)state;

    f = rg_metrics_family(m, "x", "X.", RG_METRICS_GAUGE, names, 2, NULL, 0);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 500; i++) {
            const char *v[2] = { d, c };
            struct rg_metrics_child *ch;
            snprintf(d, sizeof(d), "dep-%d", i / 10);
            snprintf(c, sizeof(c), "check-%d", i % 10);
            ch = rg_metrics_child(f, v);
            assert_non_null(ch);
            if (round == 0) {
                first[i] = ch;
                ch->value = i;
            } else {
                assert_ptr_equal(ch, first[i]);   /* found again, never moved */
                assert_true(ch->value == i);
            }
        }
    }
    /* Values that concatenate alike are still different children. */
    {
        const char *a[2] = { "ab", "" }, *b[2] = { "a", "b" };
        assert_ptr_not_equal(rg_metrics_child(f, a), rg_metrics_child(f, b));
    }
    rg_metrics_free(m);
}

static void test_metrics__format_value(void **state)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        { 0, "0" }, { 1, "1" }, { 0.1, "0.1" }, { 1e21, "1e+21" }, { 123456789, "123456789" }, { 20000, "20000" },
        { 1e20, "100000000000000000000" }, { 0.0001, "0.0001" }, { 0.00001, "1e-05" },
        { 1795669475.147, "1795669475.147" },
        { 0.30000000000000004, "0.30000000000000004" }, { -2.5, "-2.5" },
        { INFINITY, "+Inf" }, { -INFINITY, "-Inf" }, { NAN, "NaN" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_buf b = { 0 };
        assert_int_equal(rg_metrics_format_value(cases[i].v, &b), 0);
        assert_string_equal(b.data, cases[i].want);
        rg_buf_cleanup(&b);
    }
}

static void test_buf__append_printf_steal(void **state)
{
    struct rg_buf b = { 0 };
    char *p;
    size_t n;
    (void)state;

    for (int i = 0; i < 1000; i++)
        assert_int_equal(rg_buf_printf(&b, "%d,", i % 10), 0);
    assert_int_equal(b.len, 2000);
    assert_int_equal(b.data[b.len], '\0');
    rg_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(rg_buf_puts(&b, "abc"), 0);
    p = rg_buf_steal(&b, &n);
    assert_string_equal(p, "abc");
    assert_int_equal(n, 3);
    assert_null(b.data);
    free(p);
    rg_buf_cleanup(&b);
    rg_buf_cleanup(NULL);
    assert_true(rg_slice_eq(RG_SLICE_LIT("snappy"), "snappy"));
    assert_false(rg_slice_eq(RG_SLICE_LIT("snappy"), "snapp"));
    assert_true(rg_slice_eq_nocase(RG_SLICE_LIT("SNAPPY"), "snappy"));
}

static void test_err__names_and_messages(void **state)
{
    char q[32];
    enum rg_log_level lvl;
    (void)state;

    assert_string_equal(rg_err_name(RG_ENOMEM), "RG_ENOMEM");
    assert_string_equal(rg_strerror(RG_EORDER), "out of order sample");
    assert_string_equal(rg_err_name(-2), "ENOENT");
    assert_string_equal(rg_strerror(RG_E__BASE - 999), "unknown error");
    assert_string_equal(rg_log_quote(q, sizeof(q), "a \"b\"\n", 6), "\"a \\\"b\\\"\\n\"");
    assert_string_equal(rg_log_quote(q, 12, "abcdefghijklmnop", 16), "\"abcdef...\"");
    assert_int_equal(rg_log_level_parse("warn", &lvl), 0);
    assert_int_equal(lvl, RG_LOG_WARN);
    assert_int_equal(rg_log_level_parse("loud", &lvl), RG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics__exposition),
        cmocka_unit_test(test_metrics__many_children),
        cmocka_unit_test(test_metrics__format_value),
        cmocka_unit_test(test_buf__append_printf_steal),
        cmocka_unit_test(test_err__names_and_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
