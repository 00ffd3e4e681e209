/* tests/store/test_slab.c - the fixed-size slot allocator behind the sample rings.
 *
 * Slots of several sizes (small ones many to a slab, one of exactly a slab, one
 * larger than a slab) are checked for alignment, for not overlapping (each slot is
 * filled with a pattern of its own handle and re-checked after churn), for reuse of
 * freed slots, and for the release of every slab, and of the class's tables, once
 * the last slot is freed. A random alloc/free sequence, freeing by handle or by
 * address at random, is compared with a plain array of live handles.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/slab.h"

#define MAX_LIVE 6000

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Fills slot @p of @size bytes with a pattern derived from @h. */
static void fill(void *p, size_t size, uint32_t h)
{
    unsigned char *b = p;

    for (size_t i = 0; i < size; i++)
        b[i] = (unsigned char)(h * 31u + i);
}

static int intact(const void *p, size_t size, uint32_t h)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < size; i++)
        if (b[i] != (unsigned char)(h * 31u + i))
            return 0;
    return 1;
}

struct live {
    uint32_t h;
    void *p;
};

static const size_t slot_sizes[] = { 1, 48, 60, 240, 5000, RG__SLAB_BYTES, 40000 };

static void test_slab__geometry(void **state)
{
    static const struct {
        size_t ask, slot;
        uint32_t per;
    } cases[] = {
        { 1, 8, RG__SLAB_BYTES / 8 },
        { 60, 64, RG__SLAB_BYTES / 64 },
        { 240, 240, RG__SLAB_BYTES / 240 },
        { RG__SLAB_BYTES, RG__SLAB_BYTES, 1 },
        { 40000, 40000, 1 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rg__slab_class c;

        rg__slab_init(&c, cases[i].ask);
        assert_int_equal(c.slot, cases[i].slot);
        assert_int_equal(c.per, cases[i].per);
        assert_int_equal(rg__slab_bytes(&c), 0);
        rg__slab_cleanup(&c);
    }
}

static void test_slab__fill_free_release(void **state)
{
    (void)state;

    for (size_t k = 0; k < sizeof(slot_sizes) / sizeof(slot_sizes[0]); k++) {
        struct rg__slab_class c;
        struct live *l = calloc(MAX_LIVE, sizeof(*l));
        size_t n;

        assert_non_null(l);
        rg__slab_init(&c, slot_sizes[k]);
        /* Two and a half slabs, or 40 slots of the big sizes. */
        n = c.per > 1 ? c.per * 5 / 2 : 40;
        assert_true(n <= MAX_LIVE);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(rg__slab_alloc(&c, &l[i].h, &l[i].p), 0);
            assert_int_equal((uintptr_t)l[i].p % 8, 0);
            assert_ptr_equal(rg__slab_ptr(&c, l[i].h), l[i].p);
            fill(l[i].p, c.slot, l[i].h);
        }
        assert_int_equal(c.live_slabs, (n + c.per - 1) / c.per);
        assert_int_equal(rg__slab_bytes(&c), c.live_slabs * c.per * c.slot);
        for (size_t i = 0; i < n; i++)
            assert_true(intact(l[i].p, c.slot, l[i].h));
        /* A freed slot, or a released slab's index, is the next one handed out. */
        rg__slab_free(&c, l[1].h);
        {
            uint32_t h;
            void *p;

            assert_int_equal(rg__slab_alloc(&c, &h, &p), 0);
            assert_int_equal(h, l[1].h);
            /* A one-slot slab was released and allocated anew; others stayed. */
            if (c.per > 1)
                assert_ptr_equal(p, l[1].p);
            l[1].p = p;
        }
        for (size_t i = 0; i < n; i++)
            rg__slab_free(&c, l[i].h);
        assert_int_equal(c.live_slabs, 0);
        assert_int_equal(rg__slab_bytes(&c), 0);
        assert_null(c.slabs);
        assert_int_equal(rg__slab_table_bytes(&c), 0);
        rg__slab_cleanup(&c);
        free(l);
    }
}

static void test_slab__random_churn(void **state)
{
    (void)state;

    for (size_t k = 0; k < sizeof(slot_sizes) / sizeof(slot_sizes[0]); k++) {
        struct rg__slab_class c;
        struct live *l = calloc(MAX_LIVE, sizeof(*l));
        size_t n = 0, cap = slot_sizes[k] > 1000 ? 60 : MAX_LIVE;

        assert_non_null(l);
        rg__slab_init(&c, slot_sizes[k]);
        for (int step = 0; step < 20000; step++) {
            /* Grow while below half the cap, then drift around it. */
            int grow = n == 0 || (n < cap && rnd() % 100 < (n < cap / 2 ? 70 : 50));

            if (grow) {
                assert_int_equal(rg__slab_alloc(&c, &l[n].h, &l[n].p), 0);
                for (size_t j = 0; j < n; j++)
                    if (l[j].h == l[n].h)
                        fail_msg("handle %u handed out twice", (unsigned)l[n].h);
                fill(l[n].p, c.slot, l[n].h);
                n++;
            } else {
                size_t j = rnd() % n;

                assert_true(intact(l[j].p, c.slot, l[j].h));
                /* Freeing by handle and by address must be interchangeable. */
                if (rnd() & 1)
                    rg__slab_free(&c, l[j].h);
                else
                    rg__slab_free_ptr(&c, l[j].p);
                l[j] = l[--n];
            }
        }
        for (size_t j = 0; j < n; j++)
            assert_true(intact(l[j].p, c.slot, l[j].h));
        /* A slab is released with its last slot, so each holds a live one. */
        assert_true(c.live_slabs <= n);
        /* The address index lists exactly the live slabs, in address order. */
        for (size_t j = 0; j < c.live_slabs; j++) {
            assert_non_null(c.slabs[c.by_addr[j]]);
            if (j)
                assert_true((uintptr_t)c.slabs[c.by_addr[j - 1]] <
                            (uintptr_t)c.slabs[c.by_addr[j]]);
        }
        rg__slab_cleanup(&c);
        assert_int_equal(c.live_slabs, 0);
        free(l);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slab__geometry),
        cmocka_unit_test(test_slab__fill_free_release),
        cmocka_unit_test(test_slab__random_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
