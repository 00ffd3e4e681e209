/* tests/util/test_json.c - JSON string escaping in both styles: Prometheus' API answers
 * (the default) and Go's encoding/json (RG_JSON_GO_HTML). Each row gives the input bytes
 * and the exact output of each style. Sample values are checked the same way. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "util/json.h"

static const struct {
    const char *in;
    size_t len;
    const char *api;               /* flags 0 */
    const char *go;                /* RG_JSON_GO_HTML */
} cases[] = {
    { "", 0, "\"\"", "\"\"" },
    { "plain text", 10, "\"plain text\"", "\"plain text\"" },
    { "q\"b\\", 4, "\"q\\\"b\\\\\"", "\"q\\\"b\\\\\"" },
    { "\n\r\t", 3, "\"\\n\\r\\t\"", "\"\\n\\r\\t\"" },
    { "\b\f\x01\x1f", 4, "\"\\u0008\\u000c\\u0001\\u001f\"", "\"\\b\\f\\u0001\\u001f\"" },
    { "<a&b>", 5, "\"<a&b>\"", "\"\\u003ca\\u0026b\\u003e\"" },
    { "\xc3\xa9\xf0\x9f\x98\x80", 6, "\"\xc3\xa9\xf0\x9f\x98\x80\"",
      "\"\xc3\xa9\xf0\x9f\x98\x80\"" },
    { "a\xe2\x80\xa8" "b\xe2\x80\xa9", 8, "\"a\xe2\x80\xa8" "b\xe2\x80\xa9\"",
      "\"a\\u2028b\\u2029\"" },
    { "x\xffy", 3, "\"x\xef\xbf\xbdy\"", "\"x\\ufffdy\"" },
    { "\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"",
      "\"\\ufffd\\ufffd\\ufffd\"" },
    { "a\0b", 3, "\"a\\u0000b\"", "\"a\\u0000b\"" },
};

static void test_json__string_styles(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_buf a = { 0 }, g = { 0 }, d = { 0 };

        assert_int_equal(rg_json_string_flags(&a, cases[i].in, cases[i].len, 0), 0);
        assert_int_equal(rg_json_string_flags(&g, cases[i].in, cases[i].len,
                                              RG_JSON_GO_HTML), 0);
        assert_int_equal(rg_json_string(&d, cases[i].in, cases[i].len), 0);
        assert_int_equal(a.len, strlen(cases[i].api));
        assert_memory_equal(a.data, cases[i].api, a.len);
        assert_int_equal(g.len, strlen(cases[i].go));
        assert_memory_equal(g.data, cases[i].go, g.len);
        assert_int_equal(d.len, a.len);
        assert_memory_equal(d.data, a.data, a.len);
        rg_buf_cleanup(&a);
        rg_buf_cleanup(&g);
        rg_buf_cleanup(&d);
    }
}

static void test_json__numbers(void **state)
{
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        { 0, "0" },
        { 1.5, "1.5" },
        { -0.25, "-0.25" },
        { 20000, "20000" },
        { 0.1, "0.1" },
        { 1e21, "1e+21" },
    };
    struct rg_buf b = { 0 };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rg_buf_reset(&b);
        assert_int_equal(rg_json_number(&b, cases[i].v), 0);
        assert_string_equal(b.data, cases[i].want);
    }
    rg_buf_reset(&b);
    assert_int_equal(rg_json_number(&b, NAN), 0);
    assert_int_equal(rg_buf_putc(&b, ','), 0);
    assert_int_equal(rg_json_number(&b, INFINITY), 0);
    assert_int_equal(rg_buf_putc(&b, ','), 0);
    assert_int_equal(rg_json_number(&b, -INFINITY), 0);
    assert_string_equal(b.data, "null,\"+Inf\",\"-Inf\"");
    rg_buf_cleanup(&b);
}

static void test_json__appends(void **state)
{
    struct rg_buf b = { 0 };
    (void)state;

    assert_int_equal(rg_buf_puts(&b, "{\"k\":"), 0);
    assert_int_equal(rg_json_cstr(&b, "v"), 0);
    assert_int_equal(rg_buf_putc(&b, '}'), 0);
    assert_string_equal(b.data, "{\"k\":\"v\"}");
    rg_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json__string_styles),
        cmocka_unit_test(test_json__numbers),
        cmocka_unit_test(test_json__appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
