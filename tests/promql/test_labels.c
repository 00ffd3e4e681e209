/* tests/promql/test_labels.c - a label set written as a JSON object: each table row is a
 * label array and the exact text rg_promql_labels_json appends, covering the empty set,
 * order kept as given, and escaping of quotes, control bytes and invalid UTF-8. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "promql/labels.h"

static const struct rg_label two[] = { { "__name__", "up" }, { "job", "a\"b" } };
static const struct rg_label unsorted[] = { { "z", "1" }, { "a", "2" } };
static const struct rg_label odd[] = { { "msg", "x\n\t\\y" }, { "bad", "\xff" "ok" } };

static const struct {
    const struct rg_label *l;
    size_t n;
    const char *want;
} cases[] = {
    { NULL, 0, "{}" },
    { two, 2, "{\"__name__\":\"up\",\"job\":\"a\\\"b\"}" },
    { unsorted, 2, "{\"z\":\"1\",\"a\":\"2\"}" },
    { odd, 2, "{\"msg\":\"x\\n\\t\\\\y\",\"bad\":\"\xef\xbf\xbd" "ok\"}" },
};

static void test_labels_json__table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg_buf b = { 0 };
        assert_int_equal(rg_buf_puts(&b, "x="), 0);
        assert_int_equal(rg_promql_labels_json(cases[i].l, cases[i].n, &b), 0);
        assert_string_equal(b.data + 2, cases[i].want);
        rg_buf_cleanup(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_json__table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
