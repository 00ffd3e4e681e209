/* store/slab.c - fixed-size slot allocation from slabs (see slab.h).
 *
 * A slab holds as many slots as fit in RG__SLAB_BYTES (at least one), so it is at
 * most a slot short of full. Released slab indexes are chained through their
 * records and reused before the index range grows.
 */
#include "store/slab.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define NIL UINT32_MAX

struct rg__slab_rec {
    uint32_t used;         /* live slots; for a released slab, the next spare index */
    uint32_t free;         /* first free slot below bump, or NIL */
    uint32_t bump;         /* slots ever handed out; those above were never touched */
    uint32_t prev, next;   /* neighbours on the partial list, or NIL */
};

void rg__slab_init(struct rg__slab_class *c, size_t slot)
{
    slot = slot < 8 ? 8 : (slot + 7) & ~(size_t)7;
    c->slot = slot;
    c->per = slot <= RG__SLAB_BYTES ? (uint32_t)(RG__SLAB_BYTES / slot) : 1;
    c->slabs = NULL;
    c->recs = NULL;
    c->by_addr = NULL;
    c->nslabs = 0;
    c->cap = 0;
    c->partial = NIL;
    c->spare = NIL;
    c->live_slabs = 0;
}

void rg__slab_cleanup(struct rg__slab_class *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->nslabs; i++)
        free(c->slabs[i]);
    free(c->slabs);
    free(c->recs);
    free(c->by_addr);
    rg__slab_init(c, c->slot);
}

static void unlink_partial(struct rg__slab_class *c, uint32_t i)
{
    struct rg__slab_rec *r = &c->recs[i];

    if (r->prev != NIL)
        c->recs[r->prev].next = r->next;
    else
        c->partial = r->next;
    if (r->next != NIL)
        c->recs[r->next].prev = r->prev;
    r->prev = NIL;
    r->next = NIL;
}

static void link_partial(struct rg__slab_class *c, uint32_t i)
{
    struct rg__slab_rec *r = &c->recs[i];

    r->prev = NIL;
    r->next = c->partial;
    if (c->partial != NIL)
        c->recs[c->partial].prev = i;
    c->partial = i;
}

/* Number of live slabs whose block starts at or below @p. */
static size_t addr_pos(const struct rg__slab_class *c, const void *p)
{
    size_t lo = 0, hi = c->live_slabs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if ((uintptr_t)c->slabs[c->by_addr[mid]] <= (uintptr_t)p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Allocates a new empty slab and puts it on the partial list. */
static int add_slab(struct rg__slab_class *c)
{
    size_t bytes = c->slot * c->per;
    uint32_t i;
    size_t pos;
    char *block;

    if (c->spare == NIL) {
        /* Every handle of the new slab must fit in 32 bits. */
        if (((uint64_t)c->nslabs + 1) * c->per > UINT32_MAX)
            return RG_ENOMEM;
        if (c->nslabs == c->cap) {
            size_t cap = c->cap ? (size_t)c->cap * 2 : 8;
            char **slabs;
            struct rg__slab_rec *recs;
            uint32_t *by_addr;

            slabs = realloc(c->slabs, cap * sizeof(*slabs));
            if (!slabs)
                return RG_ENOMEM;
            c->slabs = slabs;
            recs = realloc(c->recs, cap * sizeof(*recs));
            if (!recs)
                return RG_ENOMEM;
            c->recs = recs;
            by_addr = realloc(c->by_addr, cap * sizeof(*by_addr));
            if (!by_addr)
                return RG_ENOMEM;
            c->by_addr = by_addr;
            c->cap = (uint32_t)cap;
        }
    }
    block = malloc(bytes);
    if (!block)
        return RG_ENOMEM;
    if (c->spare != NIL) {
        i = c->spare;
        c->spare = c->recs[i].used;
    } else {
        i = c->nslabs++;
    }
    c->slabs[i] = block;
    c->recs[i].used = 0;
    c->recs[i].free = NIL;
    c->recs[i].bump = 0;
    link_partial(c, i);
    pos = addr_pos(c, block);
    memmove(&c->by_addr[pos + 1], &c->by_addr[pos],
            (c->live_slabs - pos) * sizeof(*c->by_addr));
    c->by_addr[pos] = i;
    c->live_slabs++;
    return 0;
}

int rg__slab_alloc(struct rg__slab_class *c, uint32_t *h, void **p)
{
    struct rg__slab_rec *r;
    uint32_t i, slot;
    char *at;
    int err;

    if (c->partial == NIL) {
        err = add_slab(c);
        if (err)
            return err;
    }
    i = c->partial;
    r = &c->recs[i];
    if (r->free != NIL) {
        uint32_t next;

        slot = r->free;
        at = c->slabs[i] + (size_t)slot * c->slot;
        memcpy(&next, at, sizeof(next));
        r->free = next;
    } else {
        slot = r->bump++;
        at = c->slabs[i] + (size_t)slot * c->slot;
    }
    if (++r->used == c->per)
        unlink_partial(c, i);
    *h = i * c->per + slot;
    *p = at;
    return 0;
}

void rg__slab_free(struct rg__slab_class *c, uint32_t h)
{
    uint32_t i = h / c->per, slot = h % c->per;
    struct rg__slab_rec *r = &c->recs[i];

    if (r->used == c->per)
        link_partial(c, i);
    if (--r->used == 0) {
        size_t pos = addr_pos(c, c->slabs[i]) - 1;

        memmove(&c->by_addr[pos], &c->by_addr[pos + 1],
                (c->live_slabs - pos - 1) * sizeof(*c->by_addr));
        unlink_partial(c, i);
        free(c->slabs[i]);
        c->slabs[i] = NULL;
        c->live_slabs--;
        r->used = c->spare;
        c->spare = i;
        /* A class every ring has left gives its tables back as well. */
        if (!c->live_slabs)
            rg__slab_cleanup(c);
        return;
    }
    memcpy(c->slabs[i] + (size_t)slot * c->slot, &r->free, sizeof(r->free));
    r->free = slot;
}

void rg__slab_free_ptr(struct rg__slab_class *c, const void *p)
{
    uint32_t i = c->by_addr[addr_pos(c, p) - 1];
    size_t off = (size_t)((uintptr_t)p - (uintptr_t)c->slabs[i]);

    rg__slab_free(c, i * c->per + (uint32_t)(off / c->slot));
}

size_t rg__slab_table_bytes(const struct rg__slab_class *c)
{
    return (size_t)c->cap * (sizeof(*c->slabs) + sizeof(*c->recs) + sizeof(*c->by_addr));
}
