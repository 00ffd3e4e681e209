/* tests/store/test_intern.c - the string interning table used for label strings.
 *
 * Checks that equal bytes share one symbol and one copy, that references are
 * counted and the last release frees the string and recycles its id, that
 * lookups never create, and that ordering is byte-wise like Go's strings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "store/intern.h"
#include "util/err.h"

static void test_intern__same_bytes_same_symbol(void **state)
{
    struct rg__intern in;
    char buf[8] = "job";
    uint32_t a, b, c, f;
    (void)state;

    rg__intern_init(&in);

    assert_int_equal(rg__intern_get(&in, "job", 3, &a), 0);
    assert_int_equal(rg__intern_get(&in, buf, 3, &b), 0);
    assert_int_equal(rg__intern_get(&in, "jobs", 4, &c), 0);
    assert_int_equal(a, b);
    assert_int_not_equal(a, c);
    assert_ptr_equal(rg__intern_str(&in, a), rg__intern_str(&in, b));
    assert_ptr_not_equal(rg__intern_str(&in, a), buf);
    assert_string_equal(rg__intern_str(&in, c), "jobs");
    assert_int_equal(in.live, 2);
    assert_int_equal(rg__intern_sym(&in, a)->refs, 2);
    assert_int_equal(rg__intern_find(&in, "job", 3, &f), 0);
    assert_int_equal(f, a);
    assert_int_equal(rg__intern_find(&in, "jo", 2, &f), RG_ENOENT);
    assert_int_equal(rg__intern_sym(&in, a)->refs, 2);
    rg__intern_cleanup(&in);
    rg__intern_cleanup(NULL);
}

static void test_intern__release_frees_and_recycles(void **state)
{
    struct rg__intern in;
    uint32_t a, b, c, f;
    size_t bytes0;
    (void)state;

    rg__intern_init(&in);

    bytes0 = in.bytes;
    assert_int_equal(rg__intern_get(&in, "", 0, &a), 0);
    assert_int_equal(rg__intern_get(&in, "x", 1, &b), 0);
    assert_int_equal(rg__intern_get(&in, "x", 1, &b), 0);
    rg__intern_release(&in, b);
    assert_int_equal(rg__intern_find(&in, "x", 1, &f), 0);
    rg__intern_release(&in, b);
    assert_int_equal(rg__intern_find(&in, "x", 1, &f), RG_ENOENT);
    assert_int_equal(in.live, 1);
    /* The freed id is handed out again. */
    assert_int_equal(rg__intern_get(&in, "y", 1, &c), 0);
    assert_int_equal(c, b);
    rg__intern_release(&in, a);
    rg__intern_release(&in, c);
    assert_int_equal(in.live, 0);
    assert_int_equal(in.bytes, bytes0);
    rg__intern_cleanup(&in);
}

static void test_intern__many_strings_and_churn(void **state)
{
    struct rg__intern in;
    static uint32_t ids[20000];
    char s[32];
    uint32_t f;
    (void)state;

    rg__intern_init(&in);

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20000; i++) {
            snprintf(s, sizeof(s), "value-%d", i);
            assert_int_equal(rg__intern_get(&in, s, strlen(s), &ids[i]), 0);
        }
        for (int i = 0; i < 20000; i++) {
            snprintf(s, sizeof(s), "value-%d", i);
            assert_int_equal(rg__intern_find(&in, s, strlen(s), &f), 0);
            assert_int_equal(f, ids[i]);
            assert_string_equal(rg__intern_str(&in, f), s);
        }
        /* Release the odd ones (all of them in the last round). */
        for (int i = 0; i < 20000; i++)
            if (i % 2 || round == 2)
                rg__intern_release(&in, ids[i]);
        /* Even strings stay from earlier rounds with more references. */
        assert_true(in.used <= 20000);
    }
    for (int i = 0; i < 20000; i += 2) {
        snprintf(s, sizeof(s), "value-%d", i);
        assert_int_equal(rg__intern_find(&in, s, strlen(s), &f), 0);
        assert_int_equal(rg__intern_sym(&in, f)->refs, 2);
    }
    rg__intern_cleanup(&in);
}

static void test_intern__byte_order(void **state)
{
    static const struct {
        const char *a; size_t na; const char *b; size_t nb; int sign;
    } cases[] = {
        { "a", 1, "b", 1, -1 },
        { "a", 1, "a_", 2, -1 },
        { "B", 1, "a", 1, -1 },
        { "", 0, "a", 1, -1 },
        { "\xc3\xa9", 2, "z", 1, 1 },     /* bytes compare unsigned */
        { "a\0b", 3, "a\0a", 3, 1 },
        { "same", 4, "same", 4, 0 },
    };
    struct rg__intern in;
    (void)state;

    rg__intern_init(&in);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t a, b;
        int c;

        assert_int_equal(rg__intern_get(&in, cases[i].a, cases[i].na, &a), 0);
        assert_int_equal(rg__intern_get(&in, cases[i].b, cases[i].nb, &b), 0);
        c = rg__intern_cmp(&in, a, b);
        assert_int_equal((c > 0) - (c < 0), cases[i].sign);
        c = rg__intern_cmp(&in, b, a);
        assert_int_equal((c > 0) - (c < 0), -cases[i].sign);
    }
    rg__intern_cleanup(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern__same_bytes_same_symbol),
        cmocka_unit_test(test_intern__release_frees_and_recycles),
        cmocka_unit_test(test_intern__many_strings_and_churn),
        cmocka_unit_test(test_intern__byte_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
