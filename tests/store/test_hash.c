/* tests/store/test_hash.c - the byte hash behind the series and symbol indexes.
 *
 * The store trusts the hash only to spread keys (equality is always checked on the
 * bytes), so these tests look for structural weaknesses: strings that differ only
 * in length or in one byte, label boundaries shifted between name and value, and
 * the spread of the 32-bit folded value over table slots.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/hash.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

static void test_hash__short_strings_distinct(void **state)
{
    /* Every string of length 0..3 over a 40-symbol alphabet, plus runs of one byte
     * of lengths 0..64 (which share their gathered words across lengths). */
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789_-.\0";   /* 40th: NUL */
    size_t na = 40, n = 0;
    uint64_t *h = malloc((1 + 40 + 40 * 40 + 40 * 40 * 40 + 65) * sizeof(*h));
    char buf[65];
    (void)state;

    assert_non_null(h);
    h[n++] = rg__hash_bytes("", 0, 0);
    for (size_t a = 0; a < na; a++) {
        buf[0] = alpha[a];
        h[n++] = rg__hash_bytes(buf, 1, 0);
        for (size_t b = 0; b < na; b++) {
            buf[1] = alpha[b];
            h[n++] = rg__hash_bytes(buf, 2, 0);
            for (size_t c = 0; c < na; c++) {
                buf[2] = alpha[c];
                h[n++] = rg__hash_bytes(buf, 3, 0);
            }
        }
    }
    memset(buf, 'x', sizeof(buf));
    for (size_t len = 4; len <= 64; len++)
        h[n++] = rg__hash_bytes(buf, len, 0);
    qsort(h, n, sizeof(*h), cmp_u64);
    for (size_t i = 1; i < n; i++)
        assert_true(h[i] != h[i - 1]);
    free(h);
}

static void test_hash__one_byte_changes(void **state)
{
    static const size_t lens[] = { 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100 };
    unsigned char buf[100];
    (void)state;

    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        size_t len = lens[k];

        memset(buf, 'q', sizeof(buf));
        uint64_t base = rg__hash_bytes(buf, len, 0);

        for (size_t i = 0; i < len; i++) {
            buf[i] ^= 1;
            assert_true(rg__hash_bytes(buf, len, 0) != base);
            buf[i] ^= 1;
        }
        /* The seed matters too. */
        assert_true(rg__hash_bytes(buf, len, 1) != base);
    }
}

static void test_hash__label_boundaries(void **state)
{
    /* The same bytes split differently between strings hash differently. */
    static const char *const pairs[][4] = {
        { "ab", "c", "a", "bc" },
        { "job", "", "jo", "b" },
        { "", "x", "x", "" },
        { "instance", "host:9100", "instanc", "ehost:9100" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        uint64_t x = rg__hash_step(rg__hash_step(7, pairs[i][0], strlen(pairs[i][0])),
                                   pairs[i][1], strlen(pairs[i][1]));
        uint64_t y = rg__hash_step(rg__hash_step(7, pairs[i][2], strlen(pairs[i][2])),
                                   pairs[i][3], strlen(pairs[i][3]));

        assert_true(rg__hash_final(x) != rg__hash_final(y));
    }
}

static void test_hash__folded_spread(void **state)
{
    /* 64k sequential names into 256 buckets by the top byte (what the tables'
     * range reduction uses): every bucket near 256 entries. */
    static unsigned counts[256];
    char s[32];
    (void)state;

    memset(counts, 0, sizeof(counts));
    for (unsigned i = 0; i < 65536; i++) {
        int n = snprintf(s, sizeof(s), "series-%07u", i);

        counts[rg__hash_fold(rg__hash_bytes(s, (size_t)n, 0)) >> 24]++;
    }
    for (unsigned b = 0; b < 256; b++)
        assert_true(counts[b] > 180 && counts[b] < 340);
    memset(counts, 0, sizeof(counts));
    for (uint32_t k = 0; k < 65536; k++)
        counts[rg__hash_u32(k) >> 24]++;
    for (unsigned b = 0; b < 256; b++)
        assert_true(counts[b] > 180 && counts[b] < 340);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash__short_strings_distinct),
        cmocka_unit_test(test_hash__one_byte_changes),
        cmocka_unit_test(test_hash__label_boundaries),
        cmocka_unit_test(test_hash__folded_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
