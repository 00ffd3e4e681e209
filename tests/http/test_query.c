/* tests/http/test_query.c - urlencoded lookups: decoding, repeated names, errors.
 *
 * Table-driven: each row is a query string, a name, an occurrence index and the
 * expected return code and decoded value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "http/query.h"
#include "util/err.h"

static void test_query__get_table(void **state)
{
    static const struct {
        const char *qs;
        const char *name;
        size_t index;
        int rc;
        const char *want;
    } rows[] = {
        { "query=up&time=10", "query", 0, 0, "up" },
        { "query=up&time=10", "time", 0, 0, "10" },
        { "query=up&time=10", "step", 0, RG_ENOENT, "" },
        { "query=up&time=10", "query", 1, RG_ENOENT, "" },
        { "q=rate%28x%5B5m%5D%29", "q", 0, 0, "rate(x[5m])" },
        { "q=a+b%20c", "q", 0, 0, "a b c" },
        { "q=%2B%2b", "q", 0, 0, "++" },
        { "match%5B%5D=up&match[]=a%7Bjob%3D%22x%22%7D&x=1&match%5b%5d=3", "match[]", 0, 0,
          "up" },
        { "match%5B%5D=up&match[]=a%7Bjob%3D%22x%22%7D&x=1&match%5b%5d=3", "match[]", 1, 0,
          "a{job=\"x\"}" },
        { "match%5B%5D=up&match[]=a%7Bjob%3D%22x%22%7D&x=1&match%5b%5d=3", "match[]", 2, 0,
          "3" },
        { "match%5B%5D=up&match[]=a%7Bjob%3D%22x%22%7D&x=1&match%5b%5d=3", "match[]", 3,
          RG_ENOENT, "" },
        { "flag&x=1", "flag", 0, 0, "" },
        { "x=&y=2", "x", 0, 0, "" },
        { "a=1&&b=2&", "b", 0, 0, "2" },
        { "a=b=c", "a", 0, 0, "b=c" },
        { "", "a", 0, RG_ENOENT, "" },
        { "ab=1", "a", 0, RG_ENOENT, "" },
        { "a=1", "ab", 0, RG_ENOENT, "" },
        { "a+b=1", "a b", 0, 0, "1" },
        { "a=%zz", "a", 0, RG_EBADMSG, "" },
        { "a=1&b=%4", "a", 0, RG_EBADMSG, "" },
        { "a=1&b=%", "a", 0, RG_EBADMSG, "" },
        { "a=%00x", "a", 0, 0, "" },   /* embedded NUL: C-string view ends early */
    };
    struct rg_buf out = { 0 };
    (void)state;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct rg_slice qs = { rows[i].qs, strlen(rows[i].qs) };
        int rc = rg_http_query_get(qs, rows[i].name, rows[i].index, &out);
        if (rc != rows[i].rc)
            fail_msg("row %zu (%s): rc %d, want %d", i, rows[i].qs, rc, rows[i].rc);
        if (rc == 0)
            assert_string_equal(out.data, rows[i].want);
    }
    rg_buf_cleanup(&out);
}

static void test_query__get_keeps_length_with_nul(void **state)
{
    struct rg_slice qs = RG_SLICE_LIT("a=x%00y");
    struct rg_buf out = { 0 };
    (void)state;

    assert_int_equal(rg_http_query_get(qs, "a", 0, &out), 0);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "x\0y", 3);
    rg_buf_cleanup(&out);
}

static void test_query__count(void **state)
{
    size_t n = 99;
    (void)state;

    assert_int_equal(rg_http_query_count(RG_SLICE_LIT("m=1&m=2&x=3&m%3D=4&m"), "m", &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rg_http_query_count(RG_SLICE_LIT("m=1"), "x", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rg_http_query_count(RG_SLICE_LIT("m=%G1"), "m", &n), RG_EBADMSG);
}

static void test_query__urldecode(void **state)
{
    struct rg_buf out = { 0 };
    (void)state;

    assert_int_equal(rg_http_urldecode(RG_SLICE_LIT("%41+b%2f"), &out), 0);
    assert_string_equal(out.data, "A b/");
    assert_int_equal(rg_http_urldecode(RG_SLICE_LIT("%4"), &out), RG_EBADMSG);
    rg_buf_cleanup(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query__get_table),
        cmocka_unit_test(test_query__get_keeps_length_with_nul),
        cmocka_unit_test(test_query__count),
        cmocka_unit_test(test_query__urldecode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
