/* tests/util/test_utf8.c - the strict UTF-8 rules: each table row is a byte string and
 * the sequence length Go's utf8.DecodeRune gives at its start (0 for an invalid one).
 * Further tables check the decoded code points and whole strings longer than the
 * eight-byte ASCII step, with the first non-ASCII byte at every offset of a word. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "util/utf8.h"

static const struct {
    const char *s;
    size_t n;
    size_t seq;                    /* rg_utf8_seq_len at the start */
    int valid;                     /* rg_utf8_valid of all n bytes */
} cases[] = {
    { "a", 1, 1, 1 },
    { "\x7f", 1, 1, 1 },
    { "\xc3\xa9", 2, 2, 1 },                   /* U+00E9 */
    { "\xe2\x82\xac", 3, 3, 1 },               /* U+20AC */
    { "\xf0\x9f\x98\x80", 4, 4, 1 },           /* U+1F600 */
    { "\xf4\x8f\xbf\xbf", 4, 4, 1 },           /* U+10FFFF, the last code point */
    { "\xc0\xaf", 2, 0, 0 },                   /* overlong '/' */
    { "\xe0\x80\xaf", 3, 0, 0 },               /* overlong, three bytes */
    { "\xf0\x80\x80\xaf", 4, 0, 0 },           /* overlong, four bytes */
    { "\xed\xa0\x80", 3, 0, 0 },               /* surrogate U+D800 */
    { "\xf4\x90\x80\x80", 4, 0, 0 },           /* beyond U+10FFFF */
    { "\xf5\x80\x80\x80", 4, 0, 0 },           /* lead byte never valid */
    { "\x80", 1, 0, 0 },                       /* lone continuation byte */
    { "\xc3", 1, 0, 0 },                       /* truncated */
    { "\xe2\x82", 2, 0, 0 },                   /* truncated */
    { "\xc3\x28", 2, 0, 0 },                   /* bad continuation byte */
    { "ok\xc3\xa9\xe2\x82\xac!", 8, 1, 1 },
    { "ok\xff", 3, 1, 0 },
};

static void test_utf8__table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(rg_utf8_seq_len(cases[i].s, cases[i].n), cases[i].seq);
        assert_int_equal(rg_utf8_valid(cases[i].s, cases[i].n), cases[i].valid);
    }
}

static void test_utf8__length_bounds_the_read(void **state)
{
    (void)state;
    /* A valid sequence cut by the length is invalid; the empty string is valid. */
    assert_int_equal(rg_utf8_seq_len("\xe2\x82\xac", 2), 0);
    assert_int_equal(rg_utf8_valid("\xe2\x82\xac", 2), 0);
    assert_int_equal(rg_utf8_valid("", 0), 1);
    /* A NUL byte is a valid one-byte sequence. */
    assert_int_equal(rg_utf8_valid("a\0b", 3), 1);
}

static const struct {
    const char *s;
    size_t n;
    uint32_t cp;
} points[] = {
    { "A", 1, 0x41 },
    { "\xc2\x80", 2, 0x80 },
    { "\xdf\xbf", 2, 0x7ff },
    { "\xe0\xa0\x80", 3, 0x800 },
    { "\xef\xbf\xbd", 3, 0xfffd },
    { "\xf0\x90\x80\x80", 4, 0x10000 },
    { "\xf4\x8f\xbf\xbf", 4, 0x10ffff },
};

static void test_utf8__decode_code_points(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        uint32_t cp = 0;
        assert_int_equal(rg_utf8_decode(points[i].s, points[i].n, &cp), points[i].n);
        assert_int_equal(cp, points[i].cp);
    }
    {
        uint32_t cp = 7;
        assert_int_equal(rg_utf8_decode("\xed\xa0\x80", 3, &cp), 0);
        assert_int_equal(cp, 7);
    }
}

static void test_utf8__long_strings(void **state)
{
    static const char *const inserts[] = { "\xc3\xa9", "\xf0\x9f\x98\x80", "\xff",
                                           "\xed\xa0\x80", "\xe2\x82" };
    static const int valid[] = { 1, 1, 0, 0, 0 };
    (void)state;
    /* Every offset in two eight-byte words, so the ASCII step meets the sequence at
     * each position, and a truncated sequence at the very end. */
    for (size_t k = 0; k < sizeof(inserts) / sizeof(inserts[0]); k++) {
        for (size_t at = 0; at <= 16; at++) {
            char s[40];
            size_t m = strlen(inserts[k]);
            memset(s, 'a', sizeof(s));
            memcpy(s + at, inserts[k], m);
            assert_int_equal(rg_utf8_valid(s, sizeof(s)), valid[k]);
            assert_int_equal(rg_utf8_valid(s, at + m), valid[k]);
        }
    }
    assert_int_equal(rg_utf8_valid("abcdefghijklmnopqrstuvwxyz0123456789", 36), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8__table),
        cmocka_unit_test(test_utf8__length_bounds_the_read),
        cmocka_unit_test(test_utf8__decode_code_points),
        cmocka_unit_test(test_utf8__long_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
