/* util/hex.c - the value of a hexadecimal digit, by range comparison.
 *
 * Comparing against the three ASCII ranges needs no table and no locale, so the
 * answer is the same whatever the C library's ctype settings are.
 */
#include "util/hex.h"

int rg_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
