/* store/postings.c - postings lists and sorted-id set algebra (see postings.h).
 *
 * A heap list of capacity c takes 4c bytes, and glibc serves a request of b bytes
 * from a chunk of b + 8 rounded up to 16. Capacities are therefore chosen so that
 * 4c + 8 is a chunk size: every 16 bytes up to 128 (6, 10, 14, ... 30 ids), then
 * four steps per doubling (160, 192, 224, 256, 320, ... bytes), so a list never has
 * more than a quarter of slack and the heap rounds nothing away. Because the
 * capacity is a function of the count, a list is full exactly when its count
 * equals its capacity, and filtering reallocates to the capacity of the new count.
 */
#include "store/postings.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

size_t rg__postings_cap(size_t n)
{
    size_t bytes, k;

    if (n <= RG__POSTINGS_INLINE)
        return RG__POSTINGS_INLINE;
    bytes = 4 * n + 8;
    if (bytes <= 128)
        return (((bytes + 15) & ~(size_t)15) - 8) / 4;
    /* 2^(k+2) < bytes <= 2^(k+3): round up to a multiple of 2^k, which leaves
     * a mantissa of 5, 6, 7 or 8. */
    k = (size_t)(63 - __builtin_clzll((unsigned long long)(bytes - 1))) - 2;
    return ((((bytes - 1) >> k) + 1) << k) / 4 - 2;
}

/* True when a heap list of @n ids has no room left. */
static int is_full(uint32_t n)
{
    return n > RG__POSTINGS_INLINE && rg__postings_cap(n) == n;
}

static uint32_t *ids_mut(struct rg__postings *p)
{
    return p->n > RG__POSTINGS_INLINE ? p->u.ids : p->u.inl;
}

int rg__postings_append(struct rg__postings *p, uint32_t id)
{
    uint32_t *ids = ids_mut(p);

    if (p->n && ids[p->n - 1] == id)
        return 0;
    if (p->n == RG__POSTINGS_INLINE) {
        uint32_t *heap = malloc(rg__postings_cap(RG__POSTINGS_INLINE + 1) * sizeof(*heap));

        if (!heap)
            return RG_ENOMEM;
        memcpy(heap, p->u.inl, sizeof(p->u.inl));
        p->u.ids = heap;
        ids = heap;
    } else if (is_full(p->n)) {
        size_t cap = rg__postings_cap((size_t)p->n + 1);

        if (p->n == UINT32_MAX)
            return RG_ENOMEM;
        ids = realloc(p->u.ids, cap * sizeof(*ids));
        if (!ids)
            return RG_ENOMEM;
        p->u.ids = ids;
    }
    ids[p->n++] = id;
    return 0;
}

/* Moves a list that shrank from @old to p->n ids into the storage p->n implies. */
static void resize_down(struct rg__postings *p, uint32_t old)
{
    uint32_t *ids;
    size_t cap;

    if (old <= RG__POSTINGS_INLINE)
        return;
    ids = p->u.ids;
    if (p->n <= RG__POSTINGS_INLINE) {
        memcpy(p->u.inl, ids, p->n * sizeof(*ids));
        free(ids);
        return;
    }
    cap = rg__postings_cap(p->n);
    if (cap == rg__postings_cap(old))
        return;
    ids = realloc(ids, cap * sizeof(*ids));
    /* A failed shrink keeps the larger block, which still holds cap ids. */
    if (ids)
        p->u.ids = ids;
}

void rg__postings_pop(struct rg__postings *p, uint32_t id)
{
    if (p->n && ids_mut(p)[p->n - 1] == id) {
        p->n--;
        resize_down(p, p->n + 1);
    }
}

void rg__postings_filter(struct rg__postings *p, int (*keep)(const void *ctx, uint32_t id),
                         const void *ctx)
{
    uint32_t *ids = ids_mut(p);
    uint32_t w = 0, old = p->n;

    for (uint32_t r = 0; r < old; r++)
        if (keep(ctx, ids[r]))
            ids[w++] = ids[r];
    p->n = w;
    resize_down(p, old);
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
    if (p->n > RG__POSTINGS_INLINE)
        free(p->u.ids);
    p->n = 0;
    memset(&p->u, 0, sizeof(p->u));
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
