/* tests/store/test_postings.c - postings lists, the id hash index and set algebra.
 *
 * Postings: inline storage for short lists, growth, filtering back to inline,
 * order-preserving remapping. The hash index: insert/find/remove churn against a
 * plain array, which exercises backward-shift deletion across wrapped clusters.
 * Set algebra: table-driven intersection and difference, and the radix sort
 * against qsort on random input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/htab.h"
#include "store/postings.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static int keep_even(const void *ctx, uint32_t id)
{
    (void)ctx;
    return id % 2 == 0;
}

static int keep_below(const void *ctx, uint32_t id)
{
    return id < *(const uint32_t *)ctx;
}

static uint32_t halve(const void *ctx, uint32_t id)
{
    (void)ctx;
    return id / 2;
}

static void test_postings__append_filter_remap(void **state)
{
    struct rg__postings p = { 0 };
    uint32_t limit = 3;
    (void)state;

    assert_int_equal(rg__postings_append(&p, 0), 0);
    assert_int_equal(rg__postings_append(&p, 0), 0);   /* no duplicate */
    assert_int_equal(rg__postings_append(&p, 2), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(rg__postings_bytes(&p), 0);       /* still inline */
    for (uint32_t id = 3; id < 1000; id++)
        assert_int_equal(rg__postings_append(&p, id), 0);
    assert_int_equal(p.n, 999);
    assert_true(rg__postings_bytes(&p) >= 999 * sizeof(uint32_t));
    rg__postings_pop(&p, 998);      /* not the last id: no-op */
    assert_int_equal(p.n, 999);
    rg__postings_pop(&p, 999);
    assert_int_equal(p.n, 998);
    rg__postings_filter(&p, keep_even, NULL);
    assert_int_equal(p.n, 500);     /* 0, 2, 4, ..., 998 */
    for (uint32_t i = 0; i < p.n; i++)
        assert_int_equal(rg__postings_ids(&p)[i], i * 2);
    rg__postings_remap(&p, halve, NULL);
    for (uint32_t i = 0; i < p.n; i++)
        assert_int_equal(rg__postings_ids(&p)[i], i);
    /* Shrinking to two ids moves them back inline. */
    rg__postings_filter(&p, keep_below, &limit);
    assert_int_equal(p.n, 3);
    limit = 2;
    rg__postings_filter(&p, keep_below, &limit);
    assert_int_equal(p.n, 2);
    assert_int_equal(rg__postings_bytes(&p), 0);
    assert_int_equal(rg__postings_ids(&p)[0], 0);
    assert_int_equal(rg__postings_ids(&p)[1], 1);
    assert_int_equal(rg__postings_append(&p, 5), 0);
    assert_int_equal(rg__postings_ids(&p)[2], 5);
    rg__postings_cleanup(&p);
    assert_int_equal(p.n, 0);
    rg__postings_cleanup(NULL);
}

static void test_postings__capacity_classes(void **state)
{
    static const struct { size_t n, cap; } cases[] = {
        /* 4 * cap + 8 is a glibc chunk size: a multiple of 16 up to 128 bytes,
         * then 5, 6, 7 or 8 times a power of two. */
        { 0, 2 }, { 1, 2 }, { 2, 2 }, { 3, 6 }, { 6, 6 }, { 7, 10 }, { 10, 10 },
        { 11, 14 }, { 29, 30 }, { 30, 30 }, { 31, 38 }, { 39, 46 }, { 62, 62 },
        { 63, 78 }, { 1000, 1022 }, { 1023, 1278 }, { 1537, 1790 },
        { (size_t)3 << 30, ((size_t)7 << 29) - 2 },
    };
    struct rg__postings p = { 0 };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(rg__postings_cap(cases[i].n), cases[i].cap);
    /* Growing one id at a time keeps every id readable across reallocations. */
    for (uint32_t id = 0; id < 5000; id++) {
        assert_int_equal(rg__postings_append(&p, id * 3), 0);
        assert_int_equal(rg__postings_bytes(&p),
                         p.n > 2 ? rg__postings_cap(p.n) * sizeof(uint32_t) : 0);
    }
    for (uint32_t id = 0; id < 5000; id++)
        assert_int_equal(rg__postings_ids(&p)[id], id * 3);
    rg__postings_cleanup(&p);
}

static void test_ids__intersect_subtract(void **state)
{
    static const struct {
        uint32_t a[6]; size_t na; uint32_t b[6]; size_t nb;
        uint32_t and_[6]; size_t nand; uint32_t sub[6]; size_t nsub;
    } cases[] = {
        { { 1, 2, 3 }, 3, { 2, 3, 4 }, 3, { 2, 3 }, 2, { 1 }, 1 },
        { { 1, 2, 3 }, 3, { 0 }, 0, { 0 }, 0, { 1, 2, 3 }, 3 },
        { { 0 }, 0, { 1, 2 }, 2, { 0 }, 0, { 0 }, 0 },
        { { 1, 5, 9 }, 3, { 2, 6, 10 }, 3, { 0 }, 0, { 1, 5, 9 }, 3 },
        { { 1, 5, 9, 12 }, 4, { 0, 5, 12, 40 }, 4, { 5, 12 }, 2, { 1, 9 }, 2 },
        { { 7 }, 1, { 7 }, 1, { 7 }, 1, { 0 }, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t out[6];
        size_t n;

        n = rg__ids_intersect(cases[i].a, cases[i].na, cases[i].b, cases[i].nb, out);
        assert_int_equal(n, cases[i].nand);
        assert_memory_equal(out, cases[i].and_, n * sizeof(uint32_t));
        n = rg__ids_subtract(cases[i].a, cases[i].na, cases[i].b, cases[i].nb, out);
        assert_int_equal(n, cases[i].nsub);
        assert_memory_equal(out, cases[i].sub, n * sizeof(uint32_t));
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

static void test_ids__sort_unique_matches_qsort(void **state)
{
    static const size_t sizes[] = { 0, 1, 2, 100, 255, 256, 5000, 70000 };
    (void)state;

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k], want_n = 0, got_n;
        uint32_t *a = malloc((n + 1) * sizeof(*a)), *b = malloc((n + 1) * sizeof(*b));

        assert_non_null(a);
        assert_non_null(b);
        for (size_t i = 0; i < n; i++)
            a[i] = k % 2 ? rnd() : rnd() % 1000;   /* with and without duplicates */
        memcpy(b, a, n * sizeof(*a));
        qsort(b, n, sizeof(*b), cmp_u32);
        for (size_t i = 0; i < n; i++)
            if (!want_n || b[want_n - 1] != b[i])
                b[want_n++] = b[i];
        got_n = rg__ids_sort_unique(a, n);
        assert_int_equal(got_n, want_n);
        assert_memory_equal(a, b, want_n * sizeof(*a));
        free(a);
        free(b);
    }
}

/* The records behind the hash index: key values by id. */
static uint32_t keys[4096];

static int key_eq(const void *ctx, uint32_t id)
{
    return keys[id] == *(const uint32_t *)ctx;
}

static void test_htab__churn_against_array(void **state)
{
    struct rg__htab t = { 0 };
    static uint8_t present[4096];
    (void)state;

    memset(present, 0, sizeof(present));
    for (uint32_t i = 0; i < 4096; i++)
        keys[i] = i * 7919u;
    for (int op = 0; op < 200000; op++) {
        uint32_t id = rnd() % 4096;
        /* Few distinct hash values force long clusters with many displaced
         * entries, the hard case for backward-shift deletion; half of them
         * start near the end of the table, so clusters wrap around. */
        uint32_t hash = keys[id] % 61 - 30u;
        if (present[id]) {
            assert_int_equal(rg__htab_find(&t, hash, key_eq, &keys[id]), id);
            if (rnd() % 2) {
                rg__htab_remove(&t, hash, id);
                present[id] = 0;
                assert_int_equal(rg__htab_find(&t, hash, key_eq, &keys[id]), RG__HTAB_EMPTY);
            }
        } else {
            assert_int_equal(rg__htab_find(&t, hash, key_eq, &keys[id]), RG__HTAB_EMPTY);
            if (op < 150000) {
                assert_int_equal(rg__htab_reserve(&t, 1), 0);
                rg__htab_insert(&t, hash, id);
                present[id] = 1;
            }
        }
    }
    for (uint32_t id = 0; id < 4096; id++)
        assert_int_equal(rg__htab_find(&t, keys[id] % 61 - 30u, key_eq, &keys[id]),
                         present[id] ? id : RG__HTAB_EMPTY);
    assert_true(rg__htab_bytes(&t) >= t.n * sizeof(struct rg__htab_slot));
    rg__htab_cleanup(&t);
    rg__htab_cleanup(NULL);
}

static void test_htab__well_spread_hashes(void **state)
{
    struct rg__htab t = { 0 };
    (void)state;

    for (uint32_t i = 0; i < 4096; i++) {
        keys[i] = rnd();
        assert_int_equal(rg__htab_reserve(&t, 1), 0);
        rg__htab_insert(&t, keys[i], i);
    }
    assert_int_equal(t.n, 4096);
    /* The load stays between 0.64 and 0.8 (the table grows by a quarter). */
    assert_true(t.n * 5 <= t.cap * 4);
    assert_true(t.n * 100 >= t.cap * 64);
    for (uint32_t i = 0; i < 4096; i += 2)
        rg__htab_remove(&t, keys[i], i);
    for (uint32_t i = 0; i < 4096; i++)
        assert_int_equal(rg__htab_find(&t, keys[i], key_eq, &keys[i]),
                         i % 2 ? i : RG__HTAB_EMPTY);
    rg__htab_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postings__append_filter_remap),
        cmocka_unit_test(test_postings__capacity_classes),
        cmocka_unit_test(test_ids__intersect_subtract),
        cmocka_unit_test(test_ids__sort_unique_matches_qsort),
        cmocka_unit_test(test_htab__churn_against_array),
        cmocka_unit_test(test_htab__well_spread_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
