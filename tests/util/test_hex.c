/* tests/util/test_hex.c - hexadecimal digit values: each table row is an input and the
 * value rg_hex_digit gives, covering both cases, the characters just outside each
 * range, EOF and a signed byte above 0x7f. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/hex.h"

static const struct {
    int c;
    int want;
} cases[] = {
    { '0', 0 }, { '9', 9 }, { 'a', 10 }, { 'f', 15 }, { 'A', 10 }, { 'F', 15 },
    { '/', -1 }, { ':', -1 }, { '`', -1 }, { 'g', -1 }, { '@', -1 }, { 'G', -1 },
    { ' ', -1 }, { 0, -1 }, { -1, -1 }, { (char)0xe9, -1 }, { 0xe9, -1 },
};

static void test_hex__digit_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(rg_hex_digit(cases[i].c), cases[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex__digit_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
