/* store/postings.c - postings lists and sorted-id set algebra (see postings.h).
 *
 * Lists grow by half their size (from 4 ids) rather than doubling: the sum over
 * all lists is about ten ids per series, and a 1.5 factor keeps the slack near a
 * quarter instead of a half.
 */
#include "store/postings.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

static uint32_t *ids_mut(struct rg__postings *p)
{
    return p->cap > RG__POSTINGS_INLINE ? p->u.ids : p->u.inl;
}

int rg__postings_append(struct rg__postings *p, uint32_t id)
{
    uint32_t *ids = ids_mut(p);

    if (p->n && ids[p->n - 1] == id)
        return 0;
    if (p->n == RG__POSTINGS_INLINE && p->cap <= RG__POSTINGS_INLINE) {
        uint32_t *heap = malloc(4 * sizeof(*heap));

        if (!heap)
            return RG_ENOMEM;
        memcpy(heap, p->u.inl, sizeof(p->u.inl));
        p->u.ids = heap;
        p->cap = 4;
        ids = heap;
    } else if (p->cap > RG__POSTINGS_INLINE && p->n == p->cap) {
        size_t cap = (size_t)p->cap + p->cap / 2;

        if (cap > UINT32_MAX)
            return RG_ENOMEM;
        ids = realloc(p->u.ids, cap * sizeof(*ids));
        if (!ids)
            return RG_ENOMEM;
        p->u.ids = ids;
        p->cap = (uint32_t)cap;
    }
    ids[p->n++] = id;
    return 0;
}

void rg__postings_pop(struct rg__postings *p, uint32_t id)
{
    if (p->n && ids_mut(p)[p->n - 1] == id)
        p->n--;
}

static void shrink(struct rg__postings *p)
{
    uint32_t *ids;
    size_t cap;

    if (p->cap <= RG__POSTINGS_INLINE)
        return;
    if (p->n <= RG__POSTINGS_INLINE) {
        ids = p->u.ids;
        memcpy(p->u.inl, ids, p->n * sizeof(*ids));
        p->cap = 0;
        free(ids);
        return;
    }
    if ((size_t)p->n * 4 > p->cap)
        return;
    cap = (size_t)p->n * 2;
    ids = realloc(p->u.ids, cap * sizeof(*ids));
    /* A failed shrink keeps the larger block, which is still correct. */
    if (ids) {
        p->u.ids = ids;
        p->cap = (uint32_t)cap;
    }
}

void rg__postings_filter(struct rg__postings *p, int (*keep)(const void *ctx, uint32_t id),
                         const void *ctx)
{
    uint32_t *ids = ids_mut(p);
    uint32_t w = 0;

    for (uint32_t r = 0; r < p->n; r++)
        if (keep(ctx, ids[r]))
            ids[w++] = ids[r];
    p->n = w;
    shrink(p);
}

void rg__postings_remap(struct rg__postings *p, uint32_t (*map)(const void *ctx, uint32_t id),
                        const void *ctx)
{
    uint32_t *ids = ids_mut(p);

    for (uint32_t i = 0; i < p->n; i++)
        ids[i] = map(ctx, ids[i]);
}

void rg__postings_cleanup(struct rg__postings *p)
{
    if (!p)
        return;
    if (p->cap > RG__POSTINGS_INLINE)
        free(p->u.ids);
    memset(p, 0, sizeof(*p));
}

size_t rg__ids_intersect(const uint32_t *a, size_t na, const uint32_t *b, size_t nb,
                         uint32_t *out)
{
    size_t i = 0, j = 0, w = 0;

    while (i < na && j < nb) {
        if (a[i] < b[j]) {
            i++;
        } else if (a[i] > b[j]) {
            j++;
        } else {
            out[w++] = a[i];
            i++;
            j++;
        }
    }
    return w;
}

size_t rg__ids_subtract(const uint32_t *a, size_t na, const uint32_t *b, size_t nb,
                        uint32_t *out)
{
    size_t i = 0, j = 0, w = 0;

    while (i < na) {
        while (j < nb && b[j] < a[i])
            j++;
        if (j < nb && b[j] == a[i]) {
            i++;
            continue;
        }
        out[w++] = a[i++];
    }
    return w;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

size_t rg__ids_sort_unique(uint32_t *ids, size_t n)
{
    size_t w;

    if (n < 2)
        return n;
    if (n < 256) {
        qsort(ids, n, sizeof(*ids), cmp_u32);
    } else {
        uint32_t *tmp = malloc(n * sizeof(*tmp));
        uint32_t *src = ids, *dst = tmp;

        if (!tmp)
            return (size_t)-1;
        /* Four stable counting passes, least significant byte first; after an
         * even number of passes the result is back in @ids. */
        for (unsigned shift = 0; shift < 32; shift += 8) {
            size_t count[257] = { 0 };
            uint32_t *t;

            for (size_t i = 0; i < n; i++)
                count[((src[i] >> shift) & 0xff) + 1]++;
            for (size_t k = 1; k < 257; k++)
                count[k] += count[k - 1];
            for (size_t i = 0; i < n; i++)
                dst[count[(src[i] >> shift) & 0xff]++] = src[i];
            t = src;
            src = dst;
            dst = t;
        }
        free(tmp);
    }
    w = 1;
    for (size_t r = 1; r < n; r++)
        if (ids[r] != ids[w - 1])
            ids[w++] = ids[r];
    return w;
}
