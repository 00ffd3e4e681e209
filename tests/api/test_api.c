/* tests/api/test_api.c - the Prometheus API answer envelope shared by the query, rules
 * and deployments handlers: exact bodies, status codes and content type, and the JSON
 * object of a label set. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "api/api.h"

static void response_cleanup(struct rg_http_response *res)
{
    rg_buf_cleanup(&res->headers);
    rg_buf_cleanup(&res->body);
}

static void test_api__error_envelope(void **state)
{
    static const struct {
        int status;
        const char *type, *arg;
        const char *body;
    } cases[] = {
        { 400, "bad_data", "x", "{\"status\":\"error\",\"errorType\":\"bad_data\","
                                "\"error\":\"unknown deployment \\\"x\\\"\"}" },
        { 404, "not_found", "a\nb<c>", "{\"status\":\"error\",\"errorType\":\"not_found\","
                                       "\"error\":\"unknown deployment \\\"a\\nb<c>\\\"\"}" },
        { 503, "timeout", "", "{\"status\":\"error\",\"errorType\":\"timeout\","
                              "\"error\":\"unknown deployment \\\"\\\"\"}" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_http_response res = { 0 };

        /* Whatever was written before is replaced. */
        assert_int_equal(rg_buf_puts(&res.body, "{\"status\":\"success\",\"data\":["), 0);
        rg__api_error(&res, cases[i].status, cases[i].type, "unknown deployment \"%s\"",
                      cases[i].arg);
        assert_int_equal(res.status, cases[i].status);
        assert_string_equal(res.body.data, cases[i].body);
        assert_string_equal(res.headers.data, "Content-Type: application/json\r\n");
        response_cleanup(&res);
    }
}

static void test_api__success_envelope(void **state)
{
    struct rg_http_response res = { 0 };
    (void)state;

    res.status = 418;
    assert_int_equal(rg_buf_puts(&res.body, "stale"), 0);
    rg__api_success_begin(&res);
    assert_int_equal(rg_buf_puts(&res.body, "[]}"), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body.data, "{\"status\":\"success\",\"data\":[]}");
    assert_string_equal(res.headers.data, "Content-Type: application/json\r\n");
    response_cleanup(&res);
}

static void test_api__labels_object(void **state)
{
    const struct rg_label l[] = {
        { "__name__", "up" },
        { "job", "a\"b" },
    };
    struct rg_buf b = { 0 };
    (void)state;

    rg__api_put_labels(&b, l, 2);
    rg_buf_putc(&b, ' ');
    rg__api_put_labels(&b, l, 0);
    assert_string_equal(b.data, "{\"__name__\":\"up\",\"job\":\"a\\\"b\"} {}");
    rg_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api__error_envelope),
        cmocka_unit_test(test_api__success_envelope),
        cmocka_unit_test(test_api__labels_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
