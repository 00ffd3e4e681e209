/* tests/store/test_intern.c - the string interning table used for label strings.
 *
 * Checks that equal bytes share one symbol and one copy, that references are
 * counted and the last release frees the string and recycles its id, that
 * lookups never create, and that ordering is byte-wise like Go's strings. Strings
 * on both sides of the slab limit keep their bytes, and releasing them all gives
 * back every slab and every malloc'd block.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
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

static void test_intern__slab_and_malloc_blocks(void **state)
{
    /* Block sizes are 9 + len: 9, 16, 17, 24, 255, 256 (the largest slab slot),
     * then 257 and more from malloc. */
    static const size_t lens[] = { 0, 7, 8, 15, 246, 247, 248, 1000, 5000 };
    struct rg__intern in;
    uint32_t ids[sizeof(lens) / sizeof(lens[0])][80];
    char *buf = malloc(5001);
    size_t n = sizeof(lens) / sizeof(lens[0]), base;
    (void)state;

    assert_non_null(buf);
    rg__intern_init(&in);
    base = rg__intern_bytes(&in);
    /* Eighty strings of every length, differing in their first bytes; enough to
     * fill more than one slab of the large slab classes. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < 80; j++) {
                uint32_t id;

                memset(buf, 'a' + (int)(i % 26), lens[i]);
                if (lens[i] >= 2) {
                    buf[0] = (char)('A' + j % 26);
                    buf[1] = (char)('A' + j / 26);
                } else if (j) {
                    continue;   /* only one string of length 0 */
                }
                assert_int_equal(rg__intern_get(&in, buf, lens[i], &id), 0);
                if (pass)
                    assert_int_equal(id, ids[i][j]);
                ids[i][j] = id;
            }
        }
    }
    assert_true(rg__intern_bytes(&in) > base);
    assert_true(in.big_bytes > 0);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < (lens[i] >= 2 ? 80u : 1u); j++) {
            const struct rg__sym *sym = rg__intern_sym(&in, ids[i][j]);

            assert_int_equal(sym->len, lens[i]);
            assert_int_equal(sym->refs, 2);
            assert_int_equal(sym->str[lens[i]], '\0');
            assert_int_equal((uintptr_t)sym % 8, 0);
            if (lens[i] >= 2) {
                assert_int_equal(sym->str[0], 'A' + j % 26);
                assert_int_equal(sym->str[lens[i] - 1], 'a' + (int)(i % 26));
            }
        }
    }
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < (lens[i] >= 2 ? 80u : 1u); j++)
                rg__intern_release(&in, ids[i][j]);
    assert_int_equal(in.live, 0);
    assert_int_equal(in.bytes, 0);
    assert_int_equal(in.big_bytes, 0);
    for (size_t k = 0; k < sizeof(in.slabs) / sizeof(in.slabs[0]); k++)
        assert_int_equal(in.slabs[k].live_slabs, 0);
    rg__intern_cleanup(&in);
    free(buf);
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
        cmocka_unit_test(test_intern__slab_and_malloc_blocks),
        cmocka_unit_test(test_intern__many_strings_and_churn),
        cmocka_unit_test(test_intern__byte_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
